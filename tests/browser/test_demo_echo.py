"""The demo site in Chromium: its pages load cleanly, and the browser's own WebSocket echoes through ``/ws``.

The echo round trips run a small script in the page (``new WebSocket`` to the demo's echo endpoint, one
message out, one back) and compare what came back by type, length and SHA-256; one test drives the echo
console's UI by its documented ids (see the comment at the top of ``trio_ws/demo_site/echo.html``).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import pytest

from .conftest import Pages, Server, evaluate, wait_for_text

if TYPE_CHECKING:
    from playwright.sync_api import Page

#: The unicode test string: emoji (astral, with a skin-tone modifier and a ZWJ sequence) and CJK.
UNICODE = "héllo 👋🏽 👩‍💻 你好 世界 こんにちは 한국어 🎉"
#: A big message: 4 MiB.
BIG = 4 << 20
#: The repeated unit of the big text message (ASCII, 2-, 3- and 4-byte UTF-8 sequences).
TEXT_UNIT = "trio_ws ✓ é 你好 🎉 "

#: Open a WebSocket to arg.url, send one message (arg.kind: "text" sends arg.text; "binary"/"big-binary"
#: /"big-text" generate arg.size bytes), wait for one message back; report what was sent and received.
ECHO_ONCE = """
    const hexOf = async (bytes) => Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)),
        (b) => b.toString(16).padStart(2, "0")).join("");
    const bytesOf = (data) =>
        typeof data === "string" ? new TextEncoder().encode(data) : new Uint8Array(data);
    let payload;
    if (arg.kind === "text") {
        payload = arg.text;
    } else if (arg.kind === "big-text") {
        const unit = arg.text;
        payload = unit.repeat(Math.floor(arg.size / new TextEncoder().encode(unit).length));
    } else {
        const view = new Uint8Array(arg.size);
        for (let i = 0; i < view.length; i++) view[i] = ((i & 255) + (i >> 8)) & 255;
        payload = view.buffer;  // an ArrayBuffer, as the brief of the test says
    }
    const ws = new WebSocket(arg.url);
    ws.binaryType = "arraybuffer";
    await new Promise((resolve, reject) => {
        ws.onopen = resolve;
        ws.onerror = () => reject(new Error("WebSocket error before open"));
    });
    const reply = new Promise((resolve, reject) => {
        ws.onmessage = (event) => resolve(event.data);
        ws.onclose = (event) => reject(new Error("closed " + event.code + " " + event.reason));
    });
    ws.send(payload);
    const data = await reply;
    const closed = new Promise((resolve) => { ws.onclose = (event) => resolve(event.code); });
    ws.close(1000);
    const sent = bytesOf(payload), received = bytesOf(data);
    return {
        type: typeof data === "string" ? "string"
            : data instanceof ArrayBuffer ? "ArrayBuffer" : String(data),
        text: typeof data === "string" && data.length <= 4096 ? data : null,
        sentBytes: sent.length,
        receivedBytes: received.length,
        sentSha256: await hexOf(sent),
        receivedSha256: await hexOf(received),
        closeCode: await closed,
    };
"""


def pattern(size: int) -> bytes:
    """The bytes ECHO_ONCE generates for "binary": byte i is (i % 256 + i // 256) % 256."""
    blocks = [bytes((j + k) & 255 for j in range(256)) for k in range(256)]
    whole = b"".join(blocks[k & 255] for k in range(size // 256))
    return whole + blocks[(size // 256) & 255][: size % 256]


def echo_once(page: Page, server: Server, kind: str, *, text: str = "", size: int = 0) -> dict[str, Any]:
    result: dict[str, Any] = evaluate(
        page, ECHO_ONCE, {"url": server.ws_url + "/ws", "kind": kind, "text": text, "size": size}
    )
    return result


# -- the pages load ---------------------------------------------------------------------------


def test_start_page_loads_without_errors(demo_server: Server, pages: Pages) -> None:
    page = pages.new()
    page.goto(demo_server.url + "/")
    assert page.title() == "trio_ws demo"
    assert page.locator("#status").inner_text() == "trio_ws is running"
    # index.js filled in the endpoints from config.json.
    page.wait_for_selector('#endpoint-echo[data-available="true"]')
    assert page.locator("#endpoint-echo").inner_text() == demo_server.ws_url + "/ws"
    page.wait_for_load_state("networkidle")
    assert pages.errors() == []


@pytest.mark.parametrize(
    ("name", "title"),
    [("echo.html", "Echo console"), ("chat.html", "Chat"), ("media.html", "Media")],
)
def test_demo_pages_load_without_errors(demo_server: Server, pages: Pages, name: str, title: str) -> None:
    page = pages.new()
    response = page.goto(f"{demo_server.url}/{name}")
    assert response is not None
    assert response.status == 200
    assert title in page.title()
    assert "trio_ws demo" in page.title()
    # Every page's navigation links resolve (relative links: the site works under any prefix).
    for link in ("nav-index", "nav-echo", "nav-chat", "nav-media"):
        href = page.locator(f"#{link}").get_attribute("href")
        assert href is not None
        assert page.request.get(f"{demo_server.url}/{href}").status == 200
    page.wait_for_load_state("networkidle")
    assert pages.errors() == []


# -- echo through the browser's WebSocket -----------------------------------------------------


@pytest.mark.parametrize("text", ["hello", UNICODE, ""], ids=["ascii", "unicode", "empty"])
def test_echo_text(demo_server: Server, page: Page, text: str) -> None:
    page.goto(demo_server.url + "/")
    result = echo_once(page, demo_server, "text", text=text)
    assert result["type"] == "string"
    assert result["text"] == text
    assert result["receivedBytes"] == result["sentBytes"] == len(text.encode())
    assert result["receivedSha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert result["closeCode"] == 1000


@pytest.mark.parametrize("size", [1, 125, 126, 65535, 65536, 200_000])
def test_echo_binary_array_buffer(demo_server: Server, page: Page, size: int) -> None:
    """Sizes on both sides of the 7-bit / 16-bit / 64-bit payload-length boundaries."""
    page.goto(demo_server.url + "/")
    result = echo_once(page, demo_server, "binary", size=size)
    assert result["type"] == "ArrayBuffer"
    assert result["receivedBytes"] == result["sentBytes"] == size
    assert result["receivedSha256"] == result["sentSha256"] == hashlib.sha256(pattern(size)).hexdigest()


def test_echo_big_binary(demo_server: Server, page: Page) -> None:
    page.goto(demo_server.url + "/")
    result = echo_once(page, demo_server, "big-binary", size=BIG)
    assert result["type"] == "ArrayBuffer"
    assert result["receivedBytes"] == result["sentBytes"] == BIG
    assert result["receivedSha256"] == result["sentSha256"] == hashlib.sha256(pattern(BIG)).hexdigest()


def test_echo_big_text(demo_server: Server, page: Page) -> None:
    page.goto(demo_server.url + "/")
    result = echo_once(page, demo_server, "big-text", text=TEXT_UNIT, size=BIG)
    expected = (TEXT_UNIT * (BIG // len(TEXT_UNIT.encode()))).encode()
    assert len(expected) > BIG - 64
    assert result["type"] == "string"
    assert result["receivedBytes"] == result["sentBytes"] == len(expected)
    assert result["receivedSha256"] == result["sentSha256"] == hashlib.sha256(expected).hexdigest()


# -- the echo console's UI ---------------------------------------------------------------------


def test_echo_console_ui(demo_server: Server, pages: Pages) -> None:
    page = pages.new()
    page.goto(demo_server.url + "/echo.html")
    page.wait_for_selector('#echo-state[data-state="open"]')
    assert page.locator("#echo-url").inner_text() == demo_server.ws_url + "/ws"

    # Typed text, unicode included.
    page.fill("#echo-text", UNICODE)
    page.click("#echo-send")
    reply = page.locator('#echo-log .line[data-dir="in"]').first
    reply.wait_for()
    assert reply.get_attribute("data-ok") == "true"
    assert reply.get_attribute("data-kind") == "text"
    assert reply.get_attribute("data-bytes") == str(len(UNICODE.encode()))
    assert UNICODE in reply.inner_text()
    assert page.locator("#echo-sent").inner_text() == "1"
    assert page.locator("#echo-received").inner_text() == "1"
    assert float(page.locator("#echo-rtt").inner_text()) >= 0

    # Ten generated binary messages of 64 KiB each, all echoed intact and in order.
    page.select_option("#echo-kind", "binary")
    page.select_option("#echo-size", "65536")
    page.select_option("#echo-repeat", "10")
    page.click("#echo-send")
    wait_for_text(page, "echo-received", "11")
    replies = page.locator('#echo-log .line[data-dir="in"][data-kind="binary"]')
    assert replies.count() == 10
    for i in range(10):
        assert replies.nth(i).get_attribute("data-ok") == "true"
        assert replies.nth(i).get_attribute("data-bytes") == "65536"

    # The Close button: a clean 1000, and Reconnect comes back.
    page.click("#echo-close")
    page.wait_for_selector('#echo-state[data-state="closed"]')
    assert page.locator("#echo-state").inner_text().startswith("closed 1000")
    assert page.locator("#echo-send").is_disabled()
    page.click("#echo-connect")
    page.wait_for_selector('#echo-state[data-state="open"]')
    assert pages.errors() == []
