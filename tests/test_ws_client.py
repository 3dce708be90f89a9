"""The client: ``trio_ws.connect()`` against raw servers (hand-written responses) and ours."""

from __future__ import annotations

import functools
import ssl
from collections.abc import Callable

import pytest
import trio
import trio.testing

import trio_ws
from trio_ws import (
    App,
    ConnectionClosedOK,
    HandshakeRejected,
    InvalidHandshake,
    NegotiationError,
    WebSocket,
)
from trio_ws.client import MAX_REJECT_BODY, _MaskPool, _parse_url
from trio_ws.sansio.handshake import accept_key
from trio_ws.ws_endpoint import echo_handler

from .ws_support import DEADLINE, RawFrames, close_payload, frame, serving


async def read_head(stream: trio.abc.Stream) -> tuple[str, dict[str, str]]:
    """The request line and headers (lower-case names) of the client's upgrade."""
    buf = b""
    with trio.fail_after(DEADLINE):
        while b"\r\n\r\n" not in buf:
            buf += await stream.receive_some(65536)
    line, *lines = buf.split(b"\r\n\r\n")[0].decode().split("\r\n")
    headers = {}
    for header in lines:
        name, _, value = header.partition(":")
        headers[name.strip().lower()] = value.strip()
    return line, headers


def accepting(extra: str = "") -> Callable[[dict[str, str]], bytes]:
    def respond(headers: dict[str, str]) -> bytes:
        return (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept_key(headers['sec-websocket-key'])}\r\n{extra}\r\n"
        ).encode()

    return respond


async def with_raw_server(
    respond: Callable[[dict[str, str]], bytes],
    body: Callable[[trio_ws.WebSocket], object] | None = None,
    **kwargs: object,
) -> tuple[str, dict[str, str]]:
    """Connect over a memory stream to a raw server that answers with ``respond(headers)``."""
    client_end, server_end = trio.testing.memory_stream_pair()
    seen: list[tuple[str, dict[str, str]]] = []

    async def server() -> None:
        line, headers = await read_head(server_end)
        seen.append((line, headers))
        await server_end.send_all(respond(headers))

    error: Exception | None = None
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server)
        try:
            async with trio_ws.connect(
                "ws://raw.test/path?q=1",
                stream=client_end,
                **kwargs,  # type: ignore[arg-type]
            ) as ws:
                if body is not None:
                    await body(ws)  # type: ignore[misc]
                await server_end.aclose()  # no close handshake from this raw server
        except Exception as exc:  # re-raised outside the nursery: no ExceptionGroup
            error = exc
        finally:
            await server_end.aclose()
    if error is not None:
        raise error
    return seen[0]


async def test_rejection_carries_status_headers_and_body() -> None:
    response = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\nX-Why: no\r\n\r\nnope!"
    with pytest.raises(HandshakeRejected) as info:
        await with_raw_server(lambda _: response)
    assert info.value.status == 403
    assert ("x-why", "no") in info.value.headers
    assert info.value.body == b"nope!"


async def test_rejection_body_is_capped() -> None:
    size = MAX_REJECT_BODY + 5000
    response = b"HTTP/1.1 400 Bad\r\nContent-Length: %d\r\n\r\n" % size + bytes(size)
    with pytest.raises(HandshakeRejected) as info:
        await with_raw_server(lambda _: response)
    assert len(info.value.body) == MAX_REJECT_BODY


async def test_rejection_cut_short_keeps_what_arrived() -> None:
    client_end, server_end = trio.testing.memory_stream_pair()

    async def server() -> None:
        await read_head(server_end)
        await server_end.send_all(b"HTTP/1.1 503 Busy\r\nContent-Length: 100\r\n\r\npartial")
        await server_end.aclose()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(server)
        with pytest.raises(HandshakeRejected) as info:
            async with trio_ws.connect("ws://raw.test/", stream=client_end):
                pass  # pragma: no cover
    assert (info.value.status, info.value.body) == (503, b"partial")


async def test_request_head_and_informational_responses() -> None:
    def respond(headers: dict[str, str]) -> bytes:
        return b"HTTP/1.1 100 Continue\r\n\r\n" + accepting("Sec-WebSocket-Protocol: b\r\n")(headers)

    async def body(ws: WebSocket) -> None:
        assert ws.subprotocol == "b"
        assert ("sec-websocket-protocol", "b") in ws.response_headers

    line, headers = await with_raw_server(
        respond, body, subprotocols=["a", "b"], headers=[("Origin", "https://x.test")]
    )
    assert line == "GET /path?q=1 HTTP/1.1"
    assert headers["host"] == "raw.test"
    assert headers["upgrade"].lower() == "websocket"
    assert headers["sec-websocket-version"] == "13"
    assert headers["sec-websocket-protocol"] == "a, b"
    assert headers["origin"] == "https://x.test"


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ("Sec-WebSocket-Protocol: other\r\n", NegotiationError),
        ("Sec-WebSocket-Extensions: permessage-deflate\r\n", NegotiationError),
    ],
)
async def test_bad_negotiation(extra: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        # compression=False: the server accepts an extension we did not offer.
        await with_raw_server(accepting(extra), subprotocols=["chat"], compression=False)


async def test_wrong_accept_key() -> None:
    response = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n"
    )
    with pytest.raises(InvalidHandshake, match="Accept"):
        await with_raw_server(lambda _: response)


@pytest.mark.parametrize("response", [b"", b"NOT HTTP AT ALL\r\n\r\n", b"HTTP/1.1 101 Switching"])
async def test_broken_responses(response: bytes) -> None:
    client_end, server_end = trio.testing.memory_stream_pair()

    async def server() -> None:
        await read_head(server_end)
        await server_end.send_all(response)
        await server_end.aclose()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(server)
        with pytest.raises(InvalidHandshake):
            async with trio_ws.connect("ws://raw.test/", stream=client_end):
                pass  # pragma: no cover


async def test_frames_in_the_same_write_as_the_101() -> None:
    def respond(headers: dict[str, str]) -> bytes:
        return accepting()(headers) + frame(0x1, b"early") + frame(0x8, close_payload(1000, "bye"))

    async def body(ws: WebSocket) -> None:
        assert await ws.receive() == "early"
        with pytest.raises(ConnectionClosedOK):
            await ws.receive()
        assert (ws.close_code, ws.close_reason) == (1000, "bye")

    await with_raw_server(respond, body)


async def test_client_waits_briefly_for_the_servers_eof(autojump_clock: trio.testing.MockClock) -> None:
    client_end, server_end = trio.testing.memory_stream_pair()

    async def server() -> None:
        _, headers = await read_head(server_end)
        await server_end.send_all(accepting()(headers))
        frames = RawFrames(server_end)
        opcode, _ = await frames.next()
        assert opcode == 0x8
        await server_end.send_all(frame(0x8, close_payload(1000)))
        # ... and never closes TCP.

    async with trio.open_nursery() as nursery:
        nursery.start_soon(server)
        async with trio_ws.connect("ws://raw.test/", stream=client_end, close_timeout=30) as ws:
            started = trio.current_time()
        elapsed = trio.current_time() - started
        assert 1.9 <= elapsed <= 2.5  # CLIENT_EOF_WAIT
        assert ws.closed
        assert ws.close_code == 1000


async def test_body_exception_propagates_unwrapped_and_closes() -> None:
    seen: list[int | None] = []
    app = App()

    @app.websocket("/ws")
    async def handler(ws: WebSocket) -> None:
        try:
            await ws.receive()
        finally:
            seen.append(ws.close_code)

    async with serving(app, "tcp") as h:
        with pytest.raises(KeyError):
            async with trio_ws.connect(h.url("/ws")):
                raise KeyError("not an ExceptionGroup")
        with trio.move_on_after(0.2) as scope:
            async with trio_ws.connect(h.url("/ws")):
                await trio.sleep_forever()
        assert scope.cancelled_caught
        with trio.fail_after(DEADLINE):
            while len(seen) < 2:
                await trio.sleep(0.01)
    assert seen[0] == 1000


async def test_connection_refused_is_oserror() -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    for listener in listeners:
        await listener.aclose()
    with pytest.raises(OSError, match="onnect"):
        async with trio_ws.connect(f"ws://127.0.0.1:{port}/"):
            pass  # pragma: no cover


async def test_wss_with_an_ssl_context() -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    app = App()
    app.websocket("/ws")(echo_handler)
    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            functools.partial(trio_ws.serve, ssl_context=server_ctx), app, "127.0.0.1", 0
        )
        url = f"wss://localhost:{server.port}/ws"
        async with trio_ws.connect(url, ssl_context=client_ctx) as ws:
            await ws.send("secure hello")
            assert await ws.receive() == "secure hello"
        with pytest.raises(trio_ws.HandshakeError, match="certificate verify failed"):  # CA not trusted
            async with trio_ws.connect(url):
                pass  # pragma: no cover
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("url", "parsed"),
    [
        ("ws://example.com", (False, "example.com", 80, "example.com", "/")),
        ("ws://example.com:8080/a/b?c=d", (False, "example.com", 8080, "example.com:8080", "/a/b?c=d")),
        ("wss://example.com/x", (True, "example.com", 443, "example.com", "/x")),
        ("WSS://example.com:443", (True, "example.com", 443, "example.com", "/")),
        ("ws://[::1]:9000/", (False, "::1", 9000, "[::1]:9000", "/")),
    ],
)
def test_parse_url(url: str, parsed: tuple[bool, str, int, str, str]) -> None:
    assert _parse_url(url) == parsed


@pytest.mark.parametrize("url", ["http://example.com/", "ws:///nohost", "ws://user:pw@example.com/"])
def test_bad_urls(url: str) -> None:
    with pytest.raises(ValueError, match=r"URL|host|credentials"):
        _parse_url(url)


def test_mask_pool_gives_fresh_keys() -> None:
    pool = _MaskPool()
    keys = [pool() for _ in range(3000)]  # crosses a refill
    assert all(len(k) == 4 for k in keys)
    assert len(set(keys)) > 2900
