"""Sphinx configuration of the trio_ws documentation.

Build: ``sphinx-build -W --keep-going -b html docs docs/_build/html`` (``tests/test_docs.py``
does exactly this). Only Sphinx itself is needed: the theme is the bundled alabaster (h11's
choice), and nothing is fetched from the network (no intersphinx), so the build works offline.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # document the checkout, installed or not

import trio_ws  # noqa: E402

project = "trio_ws"
author = "trio_ws developers"
copyright = "trio_ws developers"
release = version = trio_ws.__version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.viewcode"]

exclude_patterns = ["_build"]
default_role = "py:obj"
# highlight_language stays "default": Python, falling back to plain text without a warning for
# the box-drawing diagrams the docstrings are full of.
pygments_style = "sphinx"

# autodoc: the docstrings are reST already (no napoleon); signatures keep their annotations,
# and members come in source order, which is the order the modules explain them in.
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autodoc_default_options = {"members": True}
add_module_names = False

html_theme = "alabaster"
html_title = f"trio_ws {release}"
html_theme_options = {
    "description": "trio-native HTTP/1.1 and WebSocket server and client",
    "page_width": "1100px",
    "sidebar_width": "240px",
    "show_related": True,
}
html_sidebars = {"**": ["about.html", "navigation.html", "relations.html", "searchbox.html"]}


# Module docstrings carry their own section titles ("Theory of operation" underlined with
# dashes). A section title cannot sit inside an autodoc directive, so those lines become
# rubrics: the text stays, the structure of the page stays the page's own.
_UNDERLINE = re.compile(r"^([-=~^])\1{2,}\s*$")


def _titles_to_rubrics(
    app: Sphinx, what: str, name: str, obj: object, options: Any, lines: list[str]
) -> None:
    i = 0
    while i + 1 < len(lines):
        title, underline = lines[i], lines[i + 1]
        if (
            title.strip()
            and not title.startswith(" ")
            and _UNDERLINE.match(underline)
            and len(underline.strip()) >= len(title.strip())
        ):
            lines[i : i + 2] = [f".. rubric:: {title.strip()}", ""]
        i += 1


class CommandHelp(SphinxDirective):
    """``.. trio-ws-help:: [serve]``: the command line's ``--help`` text, from the parser itself."""

    optional_arguments = 1

    def run(self) -> list[nodes.Node]:
        from trio_ws.cli import make_parser

        os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal width; pin it
        parser = make_parser()
        if self.arguments:
            commands = next(
                action for action in parser._actions if isinstance(action, argparse._SubParsersAction)
            )
            parser = commands.choices[self.arguments[0]]
        text = parser.format_help()
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return [block]


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("autodoc-process-docstring", _titles_to_rubrics)
    app.add_directive("trio-ws-help", CommandHelp)
    return {"parallel_read_safe": True}
