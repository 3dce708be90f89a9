"""TLS with Chromium: an ``https://`` page talks to a ``wss://`` endpoint with permessage-deflate negotiated.

The server is ``python -m trio_ws serve --port 0 --certfile CERT --keyfile KEY`` (CERT for 127.0.0.1 and
localhost, issued by a throwaway trustme CA written to the test's ``tmp_path``).

How the browser trusts it, without weakening anything outside this module: Debian's Chromium has no
``certutil`` to put the CA into an NSS database, so each test launches its *own* Chromium with
``--ignore-certificate-errors-spki-list=<base64 SHA-256 of the server certificate's SPKI>`` (an exception
for that one key only) and opens its pages in a context with ``ignore_https_errors=True``. Either alone
is enough for the page and its ``wss://`` (checked: :func:`test_spki_pin_alone_covers_wss` runs without
``ignore_https_errors``); the session's ordinary browser still refuses the certificate
(:func:`test_session_browser_does_not_trust_the_test_ca`), so the test really is on an untrusted TLS server.

Here ``pages``/``page`` are this module's: pages of that TLS-trusting browser (screenshots on failure
work as in the rest of the directory, which finds the ``pages`` fixture by name).
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .conftest import (
    ACTION_TIMEOUT_MS,
    CHROMIUM,
    CHROMIUM_ARGS,
    Pages,
    Server,
    evaluate,
    run_server,
    wait_for_text,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright

#: The compressible text message: this sentence repeated to TEXT_SIZE bytes (ASCII: bytes = characters).
SENTENCE = "The quick brown fox jumps over the lazy dog. "
TEXT_SIZE = 1 << 20
BINARY_SIZE = 256 << 10

#: On the page: open ``new WebSocket("wss://" + location.host + arg.path)``, echo a compressible text
#: (arg.textSize bytes of arg.sentence repeated) and an incompressible binary (arg.binarySize random
#: bytes); report the negotiated extensions and, per message, the lengths and SHA-256 of sent and received.
WSS_ECHO = """
    const hexOf = async (bytes) => Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)),
        (b) => b.toString(16).padStart(2, "0")).join("");
    const bytesOf = (data) =>
        typeof data === "string" ? new TextEncoder().encode(data) : new Uint8Array(data);
    const url = "wss://" + location.host + arg.path;
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    await new Promise((resolve, reject) => {
        ws.onopen = resolve;
        ws.onerror = () => reject(new Error("WebSocket error before open: " + url));
    });
    const roundTrip = (message) => new Promise((resolve, reject) => {
        ws.onmessage = (event) => resolve(event.data);
        ws.onclose = (event) => reject(new Error("closed " + event.code + " " + event.reason));
        ws.send(message);
    });
    const report = async (sent, received) => ({
        type: typeof received === "string" ? "string"
            : received instanceof ArrayBuffer ? "ArrayBuffer" : String(received),
        sentBytes: bytesOf(sent).length,
        receivedBytes: bytesOf(received).length,
        sentSha256: await hexOf(bytesOf(sent)),
        receivedSha256: await hexOf(bytesOf(received)),
    });
    const results = {url, protocol: location.protocol, extensions: ws.extensions};
    if (arg.textSize) {
        const times = Math.ceil(arg.textSize / arg.sentence.length);
        const text = arg.sentence.repeat(times).slice(0, arg.textSize);
        results.text = await report(text, await roundTrip(text));
    }
    if (arg.binarySize) {
        const random = new Uint8Array(arg.binarySize);
        for (let i = 0; i < random.length; i += 65536) crypto.getRandomValues(random.subarray(i, i + 65536));
        results.binary = await report(random.buffer, await roundTrip(random.buffer));
    }
    const closed = new Promise((resolve) => { ws.onclose = (event) => resolve(event.code); });
    ws.close(1000);
    results.closeCode = await closed;
    return results;
"""

#: Fetch arg.path with ``Range: bytes=arg.range``; status, the range headers and the body's bytes.
FETCH_RANGE = """
    const response = await fetch(arg.path, {headers: {Range: "bytes=" + arg.range}, cache: "no-store"});
    return {
        status: response.status,
        contentRange: response.headers.get("Content-Range"),
        contentLength: response.headers.get("Content-Length"),
        body: Array.from(new Uint8Array(await response.arrayBuffer())),
    };
"""


# -- certificates, the trusting browser, the server --------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    """A server certificate chain and key (PEM files) and the certificate's SPKI pin."""

    cert: Path
    key: Path
    #: base64 of the SHA-256 of the leaf certificate's DER SubjectPublicKeyInfo (Chromium's pin format).
    spki_sha256: str

    def serve_args(self) -> tuple[str, ...]:
        return ("--certfile", str(self.cert), "--keyfile", str(self.key))


@pytest.fixture
def tls_files(tmp_path: Path) -> TlsFiles:
    """A throwaway CA and a certificate from it for 127.0.0.1 and localhost, written to ``tmp_path``."""
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(key))
    public_key = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes()).public_key()
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return TlsFiles(cert, key, base64.b64encode(hashlib.sha256(spki).digest()).decode())


@pytest.fixture
def tls_browser(playwright: Playwright, tls_files: TlsFiles) -> Iterator[Browser]:
    """A Chromium of its own that accepts exactly the test server's key (an SPKI pin), nothing more."""
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=[*CHROMIUM_ARGS, f"--ignore-certificate-errors-spki-list={tls_files.spki_sha256}"],
        timeout=ACTION_TIMEOUT_MS * 3,
    )
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def pages(tls_browser: Browser) -> Iterator[Pages]:
    """Overrides the directory's ``pages``: a fresh context of :func:`tls_browser`, ignoring HTTPS errors."""
    context = tls_browser.new_context(ignore_https_errors=True)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    try:
        yield Pages(context)
    finally:
        context.close()


@pytest.fixture
def tls_demo(tmp_path: Path, tls_files: TlsFiles) -> Iterator[Server]:
    """``trio-ws serve --certfile ... --keyfile ...``: the demo over https://, its echo at wss://.../ws."""
    with run_server("--max-message-size", str(8 << 20), *tls_files.serve_args(), log_dir=tmp_path) as server:
        assert server.url.startswith("https://127.0.0.1:"), server.url
        yield server


# -- helpers ---------------------------------------------------------------------------------


@dataclass
class WssHandshake:
    """The WebSocket as Chromium's network stack saw it (DevTools protocol; header names lower-cased)."""

    url: str
    request: dict[str, str]
    response: dict[str, str]


def open_https(page: Page, url: str) -> None:
    """Load ``url`` and check that the page really came over TLS."""
    response = page.goto(url)
    assert response is not None
    assert response.status == 200
    details = response.security_details()
    assert details is not None, "no TLS security details: not loaded over https?"
    assert details.get("protocol") in {"TLS 1.2", "TLS 1.3"}, details
    assert page.url.startswith("https://127.0.0.1:"), page.url
    assert page.evaluate("() => location.protocol") == "https:"


def wss_echo(page: Page, arg: dict[str, Any]) -> tuple[WssHandshake, dict[str, Any]]:
    """Run WSS_ECHO in ``page``; the handshake (from the DevTools protocol) and the script's result."""
    cdp = page.context.new_cdp_session(page)
    seen: dict[str, Any] = {}
    cdp.on("Network.webSocketCreated", lambda event: seen.setdefault("url", event["url"]))
    cdp.on(
        "Network.webSocketWillSendHandshakeRequest",
        lambda event: seen.setdefault("request", event["request"]["headers"]),
    )
    cdp.on(
        "Network.webSocketHandshakeResponseReceived",
        lambda event: seen.setdefault("response", event["response"]["headers"]),
    )
    cdp.send("Network.enable")
    try:
        result: dict[str, Any] = evaluate(page, WSS_ECHO, arg)
    finally:
        cdp.detach()
    request, response = (
        {k.lower(): v for k, v in seen.get(key, {}).items()} for key in ("request", "response")
    )
    return WssHandshake(seen.get("url", ""), request, response), result


def assert_permessage_deflate(handshake: WssHandshake, result: dict[str, Any], ws_url: str) -> None:
    """Chromium offered permessage-deflate over wss://, the server accepted it, the page sees it."""
    assert ws_url.startswith("wss://")
    assert handshake.url == result["url"] == ws_url, (handshake, result["url"])
    assert result["protocol"] == "https:"
    assert "permessage-deflate" in handshake.request.get("sec-websocket-extensions", ""), handshake
    accepted = handshake.response.get("sec-websocket-extensions", "")
    assert accepted.split(";")[0].strip() == "permessage-deflate", handshake
    assert result["extensions"] == accepted
    assert result["closeCode"] == 1000


# -- the tests -------------------------------------------------------------------------------


def test_https_page_wss_echo_with_permessage_deflate(tls_demo: Server, pages: Pages) -> None:
    """The acceptance test: https:// demo page → wss:// echo with compression; 1 MiB + 256 KiB intact."""
    page = pages.new()
    open_https(page, tls_demo.url + "/")
    handshake, result = wss_echo(
        page, {"path": "/ws", "sentence": SENTENCE, "textSize": TEXT_SIZE, "binarySize": BINARY_SIZE}
    )
    assert_permessage_deflate(handshake, result, tls_demo.ws_url + "/ws")

    text = (SENTENCE * (TEXT_SIZE // len(SENTENCE) + 1))[:TEXT_SIZE].encode()
    assert result["text"] == {
        "type": "string",
        "sentBytes": TEXT_SIZE,
        "receivedBytes": TEXT_SIZE,
        "sentSha256": hashlib.sha256(text).hexdigest(),
        "receivedSha256": hashlib.sha256(text).hexdigest(),
    }
    binary = result["binary"]
    assert binary["type"] == "ArrayBuffer"
    assert binary["receivedBytes"] == binary["sentBytes"] == BINARY_SIZE
    assert binary["receivedSha256"] == binary["sentSha256"]
    assert pages.errors() == []


def test_echo_console_over_wss(tls_demo: Server, pages: Pages) -> None:
    """The demo's echo console UI (ids documented in echo.html), loaded over https://, uses wss://."""
    page = pages.new()
    open_https(page, tls_demo.url + "/echo.html")
    page.wait_for_selector('#echo-state[data-state="open"]')
    assert page.locator("#echo-url").inner_text() == tls_demo.ws_url + "/ws"
    assert tls_demo.ws_url.startswith("wss://")

    page.fill("#echo-text", "hello over wss ✓")
    page.click("#echo-send")
    reply = page.locator('#echo-log .line[data-dir="in"]').first
    reply.wait_for()
    assert reply.get_attribute("data-ok") == "true"
    assert reply.get_attribute("data-bytes") == str(len("hello over wss ✓".encode()))

    # A generated 1 MiB text (compressible) and a 64 KiB binary, both checked by the console itself.
    page.select_option("#echo-size", "1048576")
    page.click("#echo-send")
    wait_for_text(page, "echo-received", "2")
    page.select_option("#echo-kind", "binary")
    page.select_option("#echo-size", "65536")
    page.click("#echo-send")
    wait_for_text(page, "echo-received", "3")
    replies = page.locator('#echo-log .line[data-dir="in"]')
    assert [replies.nth(i).get_attribute("data-ok") for i in range(3)] == ["true"] * 3
    assert replies.nth(1).get_attribute("data-bytes") == str(1 << 20)
    assert replies.nth(2).get_attribute("data-kind") == "binary"

    page.click("#echo-close")
    page.wait_for_selector('#echo-state[data-state="closed"]')
    assert page.locator("#echo-state").inner_text().startswith("closed 1000")
    assert pages.errors() == []


def test_static_range_request_over_https(tmp_path: Path, tls_files: TlsFiles, pages: Pages) -> None:
    """``serve ROOT --certfile --keyfile --echo /ws``: a Range fetch over https → 206 and the right bytes."""
    root = tmp_path / "root"
    root.mkdir()
    # No favicon request (a 404 would be a console error): the same trick as the demo pages.
    index = '<!doctype html><link rel="icon" href="data:,"><title>tls root</title><p>static over https</p>\n'
    (root / "index.html").write_text(index)
    data = os.urandom(4096)
    (root / "data.bin").write_bytes(data)
    args = (str(root), *tls_files.serve_args(), "--echo", "/ws")
    with run_server(*args, log_dir=tmp_path) as server:
        page = pages.new()
        open_https(page, server.url + "/index.html")
        fetched = evaluate(page, FETCH_RANGE, {"path": "data.bin", "range": "64-95"})
        assert fetched == {
            "status": 206,
            "contentRange": f"bytes 64-95/{len(data)}",
            "contentLength": "32",
            "body": list(data[64:96]),
        }
        # The same origin's wss:// echo negotiates compression too.
        handshake, result = wss_echo(page, {"path": "/ws", "sentence": SENTENCE, "textSize": 65536})
        assert_permessage_deflate(handshake, result, server.ws_url + "/ws")
        assert result["text"]["receivedSha256"] == result["text"]["sentSha256"]
    assert pages.errors() == []


def test_spki_pin_alone_covers_wss(tls_demo: Server, tls_browser: Browser) -> None:
    """Without ``ignore_https_errors``, the SPKI pin alone lets the page and its wss:// through."""
    context = tls_browser.new_context()
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    try:
        page = context.new_page()
        open_https(page, tls_demo.url + "/")
        handshake, result = wss_echo(page, {"path": "/ws", "sentence": SENTENCE, "textSize": 4096})
        assert_permessage_deflate(handshake, result, tls_demo.ws_url + "/ws")
    finally:
        context.close()


def test_session_browser_does_not_trust_the_test_ca(tls_demo: Server, browser: Browser) -> None:
    """Control: the directory's ordinary browser (no pin, no ignore) refuses the throwaway CA's cert."""
    from playwright.sync_api import Error

    context = browser.new_context()
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    try:
        page = context.new_page()
        with pytest.raises(Error, match="ERR_CERT_AUTHORITY_INVALID"):
            page.goto(tls_demo.url + "/")
    finally:
        context.close()
