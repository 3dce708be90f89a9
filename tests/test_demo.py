"""The built-in demo site (``trio-ws serve`` with no ROOT, or ROOT with ``--demo``).

Checks what a browser test cannot see cheaply: every page and asset is served
with the right type and a same-origin-only policy, the pages make no external
request, the ids each page documents exist, and the endpoints the pages talk
to (echo, chat, ranges) behave.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import re
import shutil
import subprocess
import tomllib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

import trio_ws
from trio_ws.cli import build_app, make_parser
from trio_ws.demo import DEMO_CHAT_PATH, DEMO_CSP, DEMO_ECHO_PATH, DEMO_PREFIX, DEMO_SITE, DemoSite
from trio_ws.request import Handler
from trio_ws.testing import SimpleResponse, request

DEADLINE = 10.0
PAGES = ["index.html", "echo.html", "chat.html", "media.html"]
REPO = Path(__file__).resolve().parent.parent


def demo_app(*argv: str) -> trio_ws.App:
    return build_app(make_parser().parse_args(["serve", *argv]))


async def get(app: Handler, path: str, headers: list[tuple[str, str]] | None = None) -> SimpleResponse:
    with trio.fail_after(DEADLINE):
        return await request(app, "GET", path, headers=headers or [])


@asynccontextmanager
async def running(app: trio_ws.App) -> AsyncIterator[int]:
    async with trio.open_nursery() as nursery:
        server = await nursery.start(functools.partial(trio_ws.serve, app, "127.0.0.1", 0))
        try:
            yield server.port
        finally:
            with trio.move_on_after(DEADLINE):
                await server.aclose()


# -- the files ------------------------------------------------------------------------


async def test_start_page() -> None:
    response = await get(demo_app(), "/")
    assert response.status == 200
    assert response.header("content-type") == "text/html; charset=utf-8"
    assert b"trio_ws is running" in response.body
    assert response.header("content-security-policy") == DEMO_CSP
    assert response.header("x-content-type-options") == "nosniff"


@pytest.mark.parametrize(
    ("name", "content_type"),
    [(page, "text/html") for page in PAGES]
    + [("app.css", "text/css")]
    + [(f"{stem}.js", "text/javascript") for stem in ("app", "index", "echo", "chat", "media")],
)
async def test_every_file_is_served(name: str, content_type: str) -> None:
    response = await get(demo_app(), f"/{name}")
    assert response.status == 200
    assert response.header("content-type") == f"{content_type}; charset=utf-8"
    assert response.body == (DEMO_SITE / name).read_bytes()
    assert response.header("content-security-policy") == DEMO_CSP


def test_no_external_requests_and_no_inline_code() -> None:
    """Same origin only (the CSP forbids the rest): no absolute http(s) URLs, no inline script or style."""
    for path in sorted(DEMO_SITE.iterdir()):
        text = path.read_text()
        assert not re.search(r"https?://", text), path.name
        assert not re.search(r"""(?:src|href)=["']//""", text), path.name
        if path.suffix == ".html":
            assert not re.search(r"<script(?![^>]*\bsrc=)", text), f"inline script in {path.name}"
            assert "<style" not in text, path.name
            assert "style=" not in text, path.name
            assert not re.search(r"\son[a-z]+=", text), f"inline handler in {path.name}"


def documented_ids(html: str) -> list[str]:
    header = html[html.index("<!--") : html.index("-->")]
    return re.findall(r"#([a-z][a-z0-9-]*)", header)


@pytest.mark.parametrize("page", PAGES)
def test_documented_ids_exist(page: str) -> None:
    html = (DEMO_SITE / page).read_text()
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "duplicate ids"
    documented = documented_ids(html)
    assert documented, "the page documents its ids at the top"
    assert set(documented) <= set(ids)
    script = DEMO_SITE / page.replace(".html", ".js")
    used = set(re.findall(r"""\$\("([a-z0-9-]+)"\)""", script.read_text()))
    used |= set(re.findall(r"""getElementById\("([a-z0-9-]+)"\)""", script.read_text()))
    assert used <= set(ids), f"{script.name} looks up ids the page lacks: {used - set(ids)}"


def test_pages_link_each_other_relatively() -> None:
    """Relative links only, so the site works at / and under /_demo/."""
    for page in PAGES:
        html = (DEMO_SITE / page).read_text()
        for target in re.findall(r'(?:href|src)="([^"]+)"', html):
            if target == "data:,":  # the empty icon
                continue
            assert not target.startswith("/"), f"{page}: {target}"
            assert (DEMO_SITE / target).is_file(), f"{page}: {target}"


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node (Debian package nodejs)")
def test_scripts_parse() -> None:
    for script in sorted(DEMO_SITE.glob("*.js")):
        result = subprocess.run(["node", "--check", str(script)], capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr


def test_package_data_ships_every_file() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["trio_ws"]
    for path in DEMO_SITE.iterdir():
        relative = path.relative_to(DEMO_SITE.parent).as_posix()
        assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns), relative


# -- config.json ------------------------------------------------------------------------


async def test_config_without_root() -> None:
    response = await get(demo_app(), "/config.json")
    assert response.status == 200
    assert response.header("content-type") == "application/json"
    assert response.header("cache-control") == "no-store"
    assert json.loads(response.body) == {
        "echo": DEMO_ECHO_PATH,
        "chat": DEMO_CHAT_PATH,
        "root": False,
        "max_message_size": 1 << 20,
    }
    head = await request(demo_app(), "HEAD", "/config.json")
    assert (head.status, head.body) == (200, b"")


async def test_config_follows_the_flags() -> None:
    app = demo_app("--echo", "/e", "--chat", "/c", "--max-message-size", "5000")
    config = json.loads((await get(app, "/config.json")).body)
    assert (config["echo"], config["chat"], config["max_message_size"]) == ("/e", "/c", 5000)
    assert (await get(app, DEMO_ECHO_PATH)).status == 404


async def test_root_alone_has_no_demo_and_no_websockets(tmp_path: Path) -> None:
    app = demo_app(str(tmp_path))
    for path in (DEMO_ECHO_PATH, DEMO_CHAT_PATH, f"{DEMO_PREFIX}/", f"{DEMO_PREFIX}/config.json"):
        assert (await get(app, path)).status == 404, path


async def test_root_with_demo_serves_pages_under_the_prefix(tmp_path: Path) -> None:
    (tmp_path / "clip.mp4").write_bytes(bytes(range(256)) * 40)
    app = demo_app(str(tmp_path), "--demo", "--chat", "/room")
    assert json.loads((await get(app, f"{DEMO_PREFIX}/config.json")).body) == {
        "echo": None,
        "chat": "/room",
        "root": True,
        "max_message_size": 1 << 20,
    }
    page = await get(app, f"{DEMO_PREFIX}/media.html")
    assert page.status == 200
    assert b'id="media-video"' in page.body
    redirect = await get(app, DEMO_PREFIX)
    assert (redirect.status, redirect.header("location")) == (301, f"{DEMO_PREFIX}/")
    # What the media page's prober asks: a range of a file in ROOT.
    probe = await get(app, "/clip.mp4?x=1", headers=[("range", "bytes=256-511")])
    assert probe.status == 206
    assert probe.header("content-range") == "bytes 256-511/10240"
    assert probe.header("content-type") == "video/mp4"
    assert probe.body == bytes(range(256))


async def test_range_probe_on_a_demo_file() -> None:
    """With no ROOT the prober's default target is the demo's own stylesheet."""
    response = await get(demo_app(), "/app.css", headers=[("range", "bytes=0-9")])
    size = (DEMO_SITE / "app.css").stat().st_size
    assert response.status == 206
    assert response.header("content-range") == f"bytes 0-9/{size}"
    assert response.body == (DEMO_SITE / "app.css").read_bytes()[:10]


async def test_demo_site_handler_alone() -> None:
    site = DemoSite(echo_path=None, chat_path=None)
    assert json.loads((await get(site, "/config.json")).body)["echo"] is None
    assert (await get(site, "/missing.html")).status == 404
    assert "DemoSite" in repr(site)


# -- the endpoints --------------------------------------------------------------------


async def test_demo_echo_keeps_text_and_binary() -> None:
    app = demo_app()
    with trio.fail_after(DEADLINE):
        async with running(app) as port, trio_ws.connect(f"ws://127.0.0.1:{port}{DEMO_ECHO_PATH}") as ws:
            await ws.send("hello")
            assert await ws.receive() == "hello"
            await ws.send(b"\x00\xff")
            assert await ws.receive() == b"\x00\xff"
            big = "x" * (1 << 20)  # the echo page's largest size
            await ws.send(big)
            assert await ws.receive() == big


async def test_demo_chat_broadcasts_between_clients() -> None:
    """What two chat tabs do: JSON text in, the same text out to both."""
    message = json.dumps({"name": "ann", "text": "hi all", "from": "tab1"})
    with trio.fail_after(DEADLINE):
        async with running(demo_app("--max-queue", "4")) as port:
            url = f"ws://127.0.0.1:{port}{DEMO_CHAT_PATH}"
            async with trio_ws.connect(url) as tab1, trio_ws.connect(url) as tab2:
                # Each tab is a member once its own message comes back.
                await tab2.send("tab2 here")
                assert await tab2.receive() == "tab2 here"
                await tab1.send("tab1 here")
                while await tab1.receive() != "tab1 here":
                    pass
                assert await tab2.receive() == "tab1 here"
                await tab1.send(message)
                assert await tab1.receive() == message
                assert await tab2.receive() == message


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--echo", "ws"], "--echo takes a path starting with '/'"),
        (["--chat", "chat"], "--chat takes a path starting with '/'"),
        (["--echo", "/x", "--chat", "/x"], "--echo and --chat need different paths"),
        (["--max-queue", "0"], "--max-queue must be at least 1"),
    ],
)
def test_serve_usage_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    from trio_ws.cli import main

    with pytest.raises(SystemExit) as info:
        main(["serve", *argv])
    assert info.value.code == 2
    assert message in capsys.readouterr().err
