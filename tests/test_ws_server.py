"""Server-side WebSocket endpoints: the upgrade, accept/reject, handler outcomes, shutdown.

Each test runs over real loopback TCP and over in-memory streams (``transport``)
where it can; raw peers send hand-built bytes, our client covers the rest.
"""

from __future__ import annotations

import functools
import logging
import socket
import struct

import pytest
import trio

import trio_ws
from trio_ws import (
    App,
    ConnectionClosedError,
    ConnectionClosedOK,
    HandshakeRejected,
    LocalProtocolError,
    Request,
    Response,
    WebSocket,
    WebSocketRequest,
)
from trio_ws.sansio.handshake import accept_key

from .ws_support import (
    TRANSPORTS,
    client_frame,
    close_payload,
    raw_upgrade,
    serving,
    upgrade_request,
    wait_for,
)


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_app(events: list[object] | None = None) -> App:
    app = App()
    log = events if events is not None else []

    @app.route("/")
    async def index(request: Request) -> Response:
        return Response.text("http still works")

    @app.websocket("/echo", subprotocols=["chat.v2", "chat.v1"])
    async def echo(ws: WebSocket) -> None:
        log.append(("subprotocol", ws.subprotocol))
        async for message in ws:
            await ws.send(message)

    @app.websocket("/gate", accept=False)
    async def gate(req: WebSocketRequest) -> None:
        log.append(("request", req.path, req.query, req.client, req.subprotocols))
        if req.query == "deny":
            await req.reject(401, headers=[("WWW-Authenticate", "Token")], body=b"no token")
            return
        if req.query == "ignore":
            return
        ws = await req.accept(subprotocol="p1" if "p1" in req.subprotocols else None, headers=[("X-Hi", "1")])
        assert ws.request is req.request
        await ws.send(f"hi {req.path}")

    @app.websocket("/boom")
    async def boom(ws: WebSocket) -> None:
        await ws.receive()
        raise RuntimeError("handler exploded")

    @app.websocket("/boom-early", accept=False)
    async def boom_early(req: WebSocketRequest) -> None:
        raise RuntimeError("exploded before accepting")

    @app.websocket("/closer")
    async def closer(ws: WebSocket) -> None:
        await ws.aclose(4002, "done with you")

    @app.websocket("/wait")
    async def wait(ws: WebSocket) -> None:
        try:
            await ws.receive()
        except ConnectionClosedOK as exc:
            log.append(("closed", exc.code, exc.sent_code))
            raise

    return app


async def test_echo_and_http_on_the_same_app(transport: str) -> None:
    events: list[object] = []
    async with serving(make_app(events), transport) as h, h.connect("/echo") as ws:
        messages: list[str | bytes] = ["hello", b"\x00\x01", "", b"", "x" * 200_000, bytes(900_000)]
        for message in messages:
            await ws.send(message)
            assert await ws.receive() == message
        assert ws.subprotocol is None
    assert ("subprotocol", None) in events


@pytest.mark.parametrize(
    ("offered", "chosen"), [(["chat.v1"], "chat.v1"), (["chat.v1", "chat.v2"], "chat.v2"), (["x"], None)]
)
async def test_subprotocol_negotiation(transport: str, offered: list[str], chosen: str | None) -> None:
    async with serving(make_app(), transport) as h, h.connect("/echo", subprotocols=offered) as ws:
        assert ws.subprotocol == chosen
        assert ("Sec-WebSocket-Protocol".lower() in {k.lower() for k, _ in ws.response_headers}) == bool(
            chosen
        )


async def test_request_attributes_and_accept_headers(transport: str) -> None:
    events: list[object] = []
    async with serving(make_app(events), transport) as h, h.connect("/gate?yes", subprotocols=["p1"]) as ws:
        assert await ws.receive() == "hi /gate"
        assert ws.subprotocol == "p1"
        assert ("X-Hi", "1") in ws.response_headers or ("x-hi", "1") in ws.response_headers
    first = events[0]
    assert isinstance(first, tuple)
    assert (first[0], first[1], first[2], first[4]) == ("request", "/gate", "yes", ["p1"])
    assert (first[3] is None) == (transport == "memory")


async def test_reject_with_status_headers_body(transport: str) -> None:
    async with serving(make_app(), transport) as h:
        with pytest.raises(HandshakeRejected) as info:
            async with h.connect("/gate?deny"):
                pass  # pragma: no cover
        assert info.value.status == 401
        assert ("www-authenticate", "Token") in info.value.headers
        assert info.value.body == b"no token"
        # A handler that neither accepts nor rejects: 403.
        with pytest.raises(HandshakeRejected) as info:
            async with h.connect("/gate?ignore"):
                pass  # pragma: no cover
        assert info.value.status == 403


@pytest.mark.parametrize(
    ("request_bytes", "status", "header"),
    [
        (upgrade_request("/echo", version="8"), 426, b"sec-websocket-version: 13"),
        (upgrade_request("/echo", key="short"), 400, None),
        (b"GET /echo HTTP/1.1\r\nHost: t\r\n\r\n", 426, b"upgrade: websocket"),
    ],
)
async def test_invalid_handshakes_are_refused_before_the_handler(
    transport: str, request_bytes: bytes, status: int, header: bytes | None
) -> None:
    events: list[object] = []
    async with serving(make_app(events), transport) as h:
        stream = await h.dial()
        head, _ = await raw_upgrade(stream, request_bytes)
        assert head.startswith(b"HTTP/1.1 %d " % status), head
        if header is not None:
            assert header in head.lower()
        await stream.aclose()
    assert events == []


async def test_trailing_data_after_the_head_is_fed_to_the_protocol(transport: str) -> None:
    async with serving(make_app(), transport) as h:
        stream = await h.dial()
        key = "dGhlIHNhbXBsZSBub25jZQ=="
        # The handshake and the first two frames in a single write.
        data = upgrade_request("/echo", key=key) + client_frame(0x1, b"early") + client_frame(0x2, b"bird")
        head, frames = await raw_upgrade(stream, data)
        assert head.startswith(b"HTTP/1.1 101 ")
        assert accept_key(key).encode() in head
        assert await frames.next() == (0x1, b"early")
        assert await frames.next() == (0x2, b"bird")
        await stream.send_all(client_frame(0x8, close_payload(1000)))
        assert await frames.next() == (0x8, close_payload(1000))
        assert await frames.at_eof()  # the server drops TCP first (§7.1.1)
        await stream.aclose()


async def test_handler_raise_closes_1011_and_the_server_keeps_serving(
    transport: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with serving(make_app(), transport) as h:
        async with h.connect("/boom") as ws:
            await ws.send("trigger")
            with pytest.raises(ConnectionClosedError) as info:
                await ws.receive()
            assert (info.value.code, info.value.reason) == (1011, "internal error")
        with pytest.raises(HandshakeRejected) as rejected:
            async with h.connect("/boom-early"):
                pass  # pragma: no cover
        assert rejected.value.status == 500
        async with h.connect("/echo") as ws:
            await ws.send("still serving")
            assert await ws.receive() == "still serving"
    raised = [r for r in caplog.records if r.levelno == logging.ERROR and r.exc_info]
    assert len(raised) == 2
    assert "handler exploded" in str(raised[0].exc_info[1])  # type: ignore[index]


async def test_handler_closing_with_a_code(transport: str) -> None:
    async with serving(make_app(), transport) as h, h.connect("/closer") as ws:
        with pytest.raises(ConnectionClosedError) as info:
            await ws.receive()
        assert (info.value.code, info.value.reason) == (4002, "done with you")
        assert ws.sent_close_code == 4002  # our echo


async def test_handler_return_closes_1000(transport: str) -> None:
    async with serving(make_app(), transport) as h, h.connect("/gate") as ws:
        assert await ws.receive() == "hi /gate"
        with pytest.raises(ConnectionClosedOK) as info:
            await ws.receive()
        assert info.value.code == 1000


async def test_client_close_code_reaches_the_handler(transport: str) -> None:
    events: list[object] = []
    async with serving(make_app(events), transport) as h:
        async with h.connect("/wait") as ws:
            await ws.aclose(1001)
        await wait_for(lambda: bool(events))
    assert events == [("closed", 1001, 1001)]


async def test_server_shutdown_closes_1001(transport: str) -> None:
    events: list[object] = []
    async with serving(make_app(events), transport) as h, h.connect("/wait") as ws:
        with trio.fail_after(10):
            await h.server.aclose()
        with pytest.raises(ConnectionClosedOK) as info:
            await ws.receive()
        assert (info.value.code, info.value.reason) == (1001, "server shutting down")
    assert events == [("closed", 1001, 1001)]


@pytest.mark.parametrize("how", ["fin", "rst"])
async def test_abrupt_tcp_drop_reaches_the_handler_as_1006(how: str) -> None:
    seen: list[int | None] = []
    causes: list[BaseException | None] = []
    app = App()

    @app.websocket("/drop")
    async def drop(ws: WebSocket) -> None:
        try:
            await ws.receive()
        except ConnectionClosedError as exc:
            seen.append(ws.close_code)
            causes.append(exc.__cause__)
            raise

    async with serving(app, "tcp") as h:
        stream = await h.dial()
        head, _ = await raw_upgrade(stream, upgrade_request("/drop"))
        assert head.startswith(b"HTTP/1.1 101 ")
        if how == "rst":
            assert isinstance(stream, trio.SocketStream)
            stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await stream.aclose()
        await wait_for(lambda: bool(seen))
    assert seen == [1006]
    if how == "rst":  # the reset is the cause users see
        assert isinstance(causes[0], trio.BrokenResourceError)


async def test_accept_and_reject_misuse(transport: str) -> None:
    outcomes: list[str] = []
    app = App()

    @app.websocket("/twice", accept=False)
    async def twice(req: WebSocketRequest) -> None:
        with pytest.raises(ValueError, match="status"):
            await req.reject(101)
        ws = await req.accept()
        for again in (req.accept(), req.reject()):
            try:
                await again
            except LocalProtocolError:
                outcomes.append("refused")
        assert req.websocket is ws
        assert "twice" in repr(req)
        assert req.headers
        assert req.offer.version == 13

    async with serving(app, transport) as h, h.connect("/twice") as ws:
        with pytest.raises(ConnectionClosedOK):
            await ws.receive()
    assert outcomes == ["refused", "refused"]


async def test_accepting_an_unoffered_subprotocol_is_a_500(transport: str) -> None:
    app = App()

    @app.websocket("/bad", accept=False)
    async def bad(req: WebSocketRequest) -> None:
        await req.accept(subprotocol="never-offered")

    async with serving(app, transport) as h:
        with pytest.raises(HandshakeRejected) as info:
            async with h.connect("/bad"):
                pass  # pragma: no cover
    assert info.value.status == 500


async def test_post_to_a_websocket_route_is_405(transport: str) -> None:
    async with serving(make_app(), transport) as h:
        stream = await h.dial()
        head, _ = await raw_upgrade(stream, b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 405 ")
        await stream.aclose()


async def test_peer_gone_before_the_101_is_quiet(caplog: pytest.LogCaptureFixture) -> None:
    outcome: list[str] = []
    gone = trio.Event()
    app = App()

    @app.websocket("/late", accept=False)
    async def late(req: WebSocketRequest) -> None:
        await gone.wait()
        try:
            await req.accept()
        except ConnectionClosedError:
            outcome.append("closed")
            raise

    async with serving(app, "lockstep") as h:  # a send to a closed peer fails at once
        stream = await h.dial()
        await stream.send_all(upgrade_request("/late"))
        await trio.sleep(0.05)
        await stream.aclose()
        gone.set()
        await wait_for(lambda: bool(outcome))
        await wait_for(lambda: h.server.statistics()["connections"] == 0)
    assert outcome == ["closed"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_keepalive_timeout_over_tcp_with_a_peer_that_never_pongs() -> None:
    closes: list[int | None] = []
    app = App()

    @app.websocket("/ka", ping_interval=0.2, ping_timeout=0.3)
    async def ka(ws: WebSocket) -> None:
        try:
            await ws.receive()
        except ConnectionClosedError as exc:
            closes.append(exc.sent_code)
            raise

    async with serving(app, "tcp") as h:
        stream = await h.dial()
        head, frames = await raw_upgrade(stream, upgrade_request("/ka"))
        assert head.startswith(b"HTTP/1.1 101 ")
        assert (await frames.next())[0] == 0x9  # a Ping we never answer
        opcode, payload = await frames.next()
        assert (opcode, payload[:2]) == (0x8, b"\x03\xf3")  # Close 1011
        assert await frames.at_eof()
        await stream.aclose()
        await wait_for(lambda: bool(closes))
    assert closes == [1011]


async def test_message_too_big_is_drained_so_the_peer_sees_1009_not_a_reset() -> None:
    """Failing with 1009 while the peer still sends: the server drains before closing TCP.

    A raw peer declares a 100 MB frame and pushes megabytes of it, as a browser
    does; the server fails at the frame header. Without the drain it would close
    with those bytes unread, the kernel would answer with RST, and the peer would
    lose our Close (a browser reports 1006 instead of 1009).
    """
    app = trio_ws.App()

    @app.websocket("/", max_message_size=1024, compression=False)
    async def handler(ws: trio_ws.WebSocket) -> None:
        await ws.receive()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(functools.partial(trio_ws.serve, app, "127.0.0.1", 0))
            stream = await trio.open_tcp_stream("127.0.0.1", server.port)
            head, frames = await raw_upgrade(stream, upgrade_request())
            assert head.startswith(b"HTTP/1.1 101")
            mask = b"\x01\x02\x03\x04"
            header = struct.pack("!BBQ", 0x82, 0x80 | 127, 100_000_000) + mask
            await stream.send_all(header + bytes(256 * 1024))
            opcode, payload = await frames.next()
            assert (opcode, struct.unpack("!H", payload[:2])[0]) == (0x8, 1009)
            # Like a browser, the peer is still sending the rest of its message: the
            # server must still be reading, or these writes fail with a reset.
            for _ in range(16):
                await stream.send_all(bytes(256 * 1024))
                await trio.sleep(0.01)
            await stream.aclose()
            await server.aclose()
