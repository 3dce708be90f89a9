"""permessage-deflate (RFC 7692) with Chromium, which offers it on every WebSocket.

The browser's offer and the server's answer are read from the DevTools protocol (the handshake as the
network stack saw it); ``WebSocket.extensions`` is what the page sees. Messages that compress well and
messages that do not both come back intact through the compressed connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .conftest import Server, evaluate, run_server

if TYPE_CHECKING:
    from playwright.sync_api import Page

#: Open a WebSocket, echo a compressible text (arg.size bytes of a repeated sentence) and an
#: incompressible binary message (arg.size random bytes), compare each with what was sent.
COMPRESSED_ECHO = """
    const ws = new WebSocket(arg.url);
    ws.binaryType = "arraybuffer";
    await new Promise((resolve, reject) => {
        ws.onopen = resolve;
        ws.onerror = () => reject(new Error("WebSocket error before open"));
    });
    const roundTrip = (message) => new Promise((resolve, reject) => {
        ws.onmessage = (event) => resolve(event.data);
        ws.onclose = (event) => reject(new Error("closed " + event.code + " " + event.reason));
        ws.send(message);
    });
    const text = "The quick brown fox jumps over the lazy dog. ".repeat(arg.size / 64 + 1).slice(0, arg.size);
    const random = new Uint8Array(arg.size);
    for (let i = 0; i < random.length; i += 65536) crypto.getRandomValues(random.subarray(i, i + 65536));
    const textBack = await roundTrip(text);
    const binaryBack = new Uint8Array(await roundTrip(random.buffer));
    const sameBytes = binaryBack.length === random.length && binaryBack.every((b, i) => b === random[i]);
    const extensions = ws.extensions;
    ws.close(1000);
    return {extensions, textOk: textBack === text, binaryOk: sameBytes};
"""


@dataclass
class Handshake:
    """The WebSocket handshake as Chromium's network stack saw it (header names lower-cased)."""

    request: dict[str, str]
    response: dict[str, str]


def lowered(headers: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def compressed_echo(page: Page, url: str, size: int) -> tuple[Handshake, dict[str, Any]]:
    """Run COMPRESSED_ECHO against ``url``; its handshake (from the DevTools protocol) and result."""
    cdp = page.context.new_cdp_session(page)
    seen: dict[str, dict[str, str]] = {}

    def on_request(event: dict[str, Any]) -> None:
        seen.setdefault("request", event["request"]["headers"])

    def on_response(event: dict[str, Any]) -> None:
        seen.setdefault("response", event["response"]["headers"])

    cdp.on("Network.webSocketWillSendHandshakeRequest", on_request)
    cdp.on("Network.webSocketHandshakeResponseReceived", on_response)
    cdp.send("Network.enable")
    try:
        result: dict[str, Any] = evaluate(page, COMPRESSED_ECHO, {"url": url, "size": size})
    finally:
        cdp.detach()
    request, response = (lowered(seen.get(key, {})) for key in ("request", "response"))
    return Handshake(request, response), result


def test_browser_negotiates_permessage_deflate(demo_server: Server, page: Page) -> None:
    page.goto(demo_server.url + "/")
    handshake, result = compressed_echo(page, demo_server.ws_url + "/ws", 1 << 20)
    # Chromium offers permessage-deflate; the server accepts it; the page sees what was accepted.
    assert "permessage-deflate" in handshake.request.get("sec-websocket-extensions", ""), handshake
    accepted = handshake.response.get("sec-websocket-extensions", "")
    assert accepted.split(";")[0].strip() == "permessage-deflate", handshake
    assert result == {"extensions": accepted, "textOk": True, "binaryOk": True}


def test_no_compression_flag(page: Page, tmp_path: Path) -> None:
    """``--no-compression``: the browser still offers permessage-deflate, the server declines it."""
    with run_server("--no-compression", log_dir=tmp_path) as server:
        page.goto(server.url + "/")
        handshake, result = compressed_echo(page, server.ws_url + "/ws", 65536)
    assert "permessage-deflate" in handshake.request.get("sec-websocket-extensions", ""), handshake
    assert "sec-websocket-extensions" not in handshake.response, handshake
    assert result == {"extensions": "", "textOk": True, "binaryOk": True}
