"""How Chromium sees a WebSocket end: ``CloseEvent.code``, ``reason`` and ``wasClean``.

Client-initiated: the code the page passed to ``close()`` comes back (the server echoes it, RFC 6455
§5.5.1); ``close()`` with no code sends a Close without a status, and the browser then reports 1005
("no status received", §7.4.1). Server-initiated: SIGTERM makes ``trio-ws serve`` go away with 1001
through a complete closing handshake; a message over ``--max-message-size`` gets 1009.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .conftest import Server, evaluate, run_server

if TYPE_CHECKING:
    from playwright.sync_api import Page

#: Open a WebSocket to arg.url and keep it in window.testSocket; resolve once open.
OPEN = """
    const ws = new WebSocket(arg.url);
    window.testSocket = ws;
    window.testClosed = new Promise((resolve) => {
        ws.onclose = (e) => resolve({code: e.code, reason: e.reason, wasClean: e.wasClean});
    });
    await new Promise((resolve, reject) => {
        ws.onopen = resolve;
        ws.onerror = () => reject(new Error("WebSocket error before open"));
    });
"""
#: The CloseEvent of window.testSocket, as {code, reason, wasClean}.
CLOSED = "return await window.testClosed;"
#: Send arg.size random bytes on window.testSocket (random: permessage-deflate cannot shrink them).
SEND_RANDOM = """
    const data = new Uint8Array(arg.size);
    for (let i = 0; i < data.length; i += 65536) crypto.getRandomValues(data.subarray(i, i + 65536));
    window.testSocket.send(data);
"""


def open_socket(page: Page, server: Server) -> None:
    page.goto(server.url + "/")
    evaluate(page, OPEN, {"url": server.ws_url + "/ws"})


@pytest.mark.parametrize(
    ("call", "code", "reason"),
    [
        ("ws.close(4000, 'bye')", 4000, "bye"),
        ("ws.close(1000)", 1000, ""),
        ("ws.close(3999, 'ünïcödé reason ✓')", 3999, "ünïcödé reason ✓"),
        ("ws.close()", 1005, ""),
    ],
)
def test_client_close(demo_server: Server, page: Page, call: str, code: int, reason: str) -> None:
    open_socket(page, demo_server)
    closed: dict[str, Any] = evaluate(page, f"const ws = window.testSocket; {call};" + CLOSED)
    assert closed == {"code": code, "reason": reason, "wasClean": True}


def test_server_shutdown_closes_with_1001(demo_server: Server, page: Page) -> None:
    """SIGTERM: the server sends Close 1001 and completes the handshake; the browser sees a clean close."""
    open_socket(page, demo_server)
    assert demo_server.terminate() == 0
    closed: dict[str, Any] = evaluate(page, CLOSED)
    assert closed == {"code": 1001, "reason": "server shutting down", "wasClean": True}


def test_message_too_big_closes_with_1009(page: Page, tmp_path: Path) -> None:
    with run_server("--max-message-size", "1024", log_dir=tmp_path) as server:
        open_socket(page, server)
        closed: dict[str, Any] = evaluate(page, SEND_RANDOM + CLOSED, {"size": 2048})
    # The server drains what is still in flight before closing TCP, so the
    # kernel sends no RST and the browser sees our Close: 1009, cleanly.
    assert closed["code"] == 1009
    assert "exceeds max_message_size" in closed["reason"]
    assert closed["wasClean"] is True


def test_message_far_too_big_still_gets_1009(page: Page, tmp_path: Path) -> None:
    """3 MB against a 1 KiB limit: the browser is still sending when the server gives up on it."""
    with run_server("--max-message-size", "1024", log_dir=tmp_path) as server:
        open_socket(page, server)
        closed: dict[str, Any] = evaluate(page, SEND_RANDOM + CLOSED, {"size": 3_000_000})
    assert closed["code"] == 1009
    assert "exceeds max_message_size" in closed["reason"]
