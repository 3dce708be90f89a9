"""The sans-I/O wall: nothing under ``trio_ws/sansio/`` may import I/O, clocks or randomness.

The check is static (``ast``), so it sees imports inside functions and behind
``if`` branches too, and it covers whatever modules exist when it runs: other
sansio modules are added without touching this file. It also checks
``trio_ws/exceptions.py``, the one package module sansio code may import, and
refuses relative or absolute imports that leave ``trio_ws.sansio`` for anything
else, since that module could pull trio in transitively. ``importlib`` and
``__import__`` are refused because a dynamic import would get past the check.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "trio_ws"
SANSIO = PACKAGE / "sansio"

FORBIDDEN = frozenset(
    {
        "trio",
        "socket",
        "ssl",
        "os",
        "time",
        "random",
        "secrets",
        "asyncio",
        "select",
        "selectors",
        "threading",
        "importlib",
    }
)
# Package modules a sansio module may import besides its sansio siblings:
# the exception hierarchy (checked below) and the compiled speedups behind
# masking.py's fast path (C code with no I/O; it cannot be walked with ast).
ALLOWED_PACKAGE_MODULES = frozenset({"trio_ws.exceptions", "trio_ws._speedups"})


def _resolve_relative(module: str | None, level: int, package: str) -> str:
    """Absolute name of ``from <level dots><module> import ...`` inside ``package``."""
    parts = package.split(".")
    base = parts[: len(parts) - (level - 1)] if level > 1 else parts
    return ".".join(base + ([module] if module else []))


def _imported(tree: ast.AST, package: str) -> list[tuple[str, list[str]]]:
    """Each import statement as (absolute module, names imported from it)."""
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            relative = node.level > 0
            module = _resolve_relative(node.module, node.level, package) if relative else node.module or ""
            found.append((module, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "__import__":
            found.append(("__import__", []))
    return found


def violations(source: str, package: str = "trio_ws.sansio") -> list[str]:
    """Every forbidden import in ``source``, a module living in ``package``."""
    problems: list[str] = []
    for module, names in _imported(ast.parse(source), package):
        top = module.split(".")[0]
        if module == "__import__":
            problems.append("dynamic __import__()")
        elif top in FORBIDDEN:
            problems.append(f"imports {module}")
        elif top == "trio_ws":
            # `from trio_ws import sansio` / `from .. import exceptions` name modules.
            targets = [f"{module}.{n}" for n in names] if module == "trio_ws" else [module]
            for target in targets:
                inside = target == "trio_ws.sansio" or target.startswith("trio_ws.sansio.")
                if not inside and target not in ALLOWED_PACKAGE_MODULES:
                    problems.append(f"imports {target}, outside the sans-I/O wall")
    return problems


def _modules() -> list[Path]:
    return [*sorted(SANSIO.glob("*.py")), PACKAGE / "exceptions.py"]


def test_there_is_something_to_check() -> None:
    names = {path.name for path in SANSIO.glob("*.py")}
    assert {"headers.py", "handshake.py"} <= names


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_is_pure(path: Path) -> None:
    package = "trio_ws.sansio" if path.parent == SANSIO else "trio_ws"
    assert violations(path.read_text(encoding="utf-8"), package) == []


# The checker itself, on synthetic sources: it must catch every spelling.
@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import trio", ["imports trio"]),
        ("import trio.lowlevel", ["imports trio.lowlevel"]),
        ("import os.path", ["imports os.path"]),
        ("from os import path", ["imports os"]),
        ("from time import monotonic", ["imports time"]),
        ("import random as r", ["imports random"]),
        ("import json, secrets", ["imports secrets"]),
        ("def f():\n    import socket\n", ["imports socket"]),
        ("if False:\n    import ssl\n", ["imports ssl"]),
        ("try:\n    import asyncio\nexcept ImportError:\n    pass\n", ["imports asyncio"]),
        (
            "import select, selectors, threading",
            ["imports select", "imports selectors", "imports threading"],
        ),
        ("import importlib", ["imports importlib"]),
        ("from importlib import import_module", ["imports importlib"]),
        ("m = __import__('trio')", ["dynamic __import__()"]),
        ("from .. import _http", ["imports trio_ws._http, outside the sans-I/O wall"]),
        ("from ..server import serve", ["imports trio_ws.server, outside the sans-I/O wall"]),
        (
            "from trio_ws.websocket import X",
            ["imports trio_ws.websocket, outside the sans-I/O wall"],
        ),
        ("import trio_ws.client", ["imports trio_ws.client, outside the sans-I/O wall"]),
    ],
)
def test_checker_catches(source: str, expected: list[str]) -> None:
    assert violations(source) == expected


@pytest.mark.parametrize(
    "source",
    [
        "import base64, binascii, hashlib, re, zlib",
        "from dataclasses import dataclass",
        "import h11",
        "from collections.abc import Sequence",
        "from ..exceptions import InvalidHandshake",
        "from .. import exceptions",
        "from trio_ws.exceptions import NegotiationError",
        "from . import headers",
        "from .headers import split_list",
        "from trio_ws.sansio.frames import Opcode",
        "from trio_ws import sansio",
        "from trio_ws._speedups import apply_mask",
        "import timeit",  # a prefix of a forbidden name is not that name
        "x = 'import os'",
    ],
)
def test_checker_allows(source: str) -> None:
    assert violations(source) == []


def test_resolve_relative_from_package_root() -> None:
    assert _resolve_relative("exceptions", 1, "trio_ws") == "trio_ws.exceptions"
    assert _resolve_relative(None, 1, "trio_ws.sansio") == "trio_ws.sansio"
