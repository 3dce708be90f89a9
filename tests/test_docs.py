"""The Sphinx docs build cleanly (warnings are errors), and the README's links into docs/ resolve.

The build runs ``sphinx-build -W --keep-going`` in a subprocess, as CI would on its own: a
broken cross-reference, a docstring that is not valid reST, or an example file that moved
fails this test. Sphinx is in the ``test`` extra, so the test runs wherever the suite does;
without Sphinx it skips, naming it.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
#: The build takes a few seconds; this bounds a hung one.
BUILD_TIMEOUT = 300


@pytest.mark.skipif(importlib.util.find_spec("sphinx") is None, reason="sphinx is not installed")
def test_docs_build_without_warnings(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "sphinx",
        "-W",
        "--keep-going",
        "-q",
        "-b",
        "html",
        "-d",
        str(tmp_path / "doctrees"),
        str(DOCS),
        str(tmp_path / "html"),
    ]
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False
    )
    assert result.returncode == 0, f"sphinx-build failed:\n{result.stdout}\n{result.stderr}"
    for page in ("index", "tutorial", "reference/api", "reference/sansio", "topics/rfc-support"):
        assert (tmp_path / "html" / f"{page}.html").is_file(), page


def test_readme_links_into_docs_resolve() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\((docs/[^)#]+)\)", readme)
    assert targets, "the README links the docs"
    missing = [target for target in targets if not (ROOT / target).exists()]
    assert not missing, f"README links to missing files: {missing}"
