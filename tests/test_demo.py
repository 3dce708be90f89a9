"""The built-in demo that ``trio-ws serve`` runs with no ROOT: the page and its echo endpoint."""

from __future__ import annotations

import functools
import pathlib

import trio

import trio_ws
from trio_ws.cli import build_app, make_parser
from trio_ws.demo import DEMO_ECHO_PATH
from trio_ws.testing import request


async def test_demo_page_points_at_its_echo_endpoint() -> None:
    app = build_app(make_parser().parse_args(["serve"]))
    with trio.fail_after(5):
        response = await request(app, "GET", "/")
    assert response.status == 200
    assert response.header("content-type") == "text/html; charset=utf-8"
    assert DEMO_ECHO_PATH.encode() in response.body
    assert b"new WebSocket(" in response.body


async def test_demo_echo_keeps_text_and_binary() -> None:
    app = build_app(make_parser().parse_args(["serve"]))
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(functools.partial(trio_ws.serve, app, "127.0.0.1", 0))
            async with trio_ws.connect(f"ws://127.0.0.1:{server.port}{DEMO_ECHO_PATH}") as ws:
                await ws.send("hello")
                assert await ws.receive() == "hello"
                await ws.send(b"\x00\xff")
                assert await ws.receive() == b"\x00\xff"
            await server.aclose()


async def test_root_without_echo_flag_has_no_websocket(tmp_path: pathlib.Path) -> None:
    app = build_app(make_parser().parse_args(["serve", str(tmp_path)]))
    with trio.fail_after(5):
        response = await request(app, "GET", DEMO_ECHO_PATH)
    assert response.status == 404
