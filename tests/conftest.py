"""Shared helpers for the server tests: a test app, running servers, oracle clients.

The clients here are deliberately *not* ours: ``h11.Connection(h11.CLIENT)``
frames and parses everything, raw sockets send exactly the bytes a test
wants, and the oracle tests add ``http.client`` and ``curl``.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import struct
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager

import h11
import pytest
import trio

import trio_ws
from trio_ws import App, HTTPError, Request, Response, Server, ServerConfig
from trio_ws.testing import SimpleResponse

#: Every network wait in a test is bounded by this (seconds).
DEADLINE = 10.0
RECEIVE_SIZE = 65536

#: Loggers whose records a clean server run may produce.
SERVER_LOGGERS = ("trio_ws.http", "trio_ws.server")


# -- the app under test -------------------------------------------------------------


class Gate:
    """Lets a test hold a handler mid-request and release it."""

    def __init__(self) -> None:
        self.entered = trio.Event()
        self.release = trio.Event()


def make_app(gate: Gate | None = None) -> App:
    """An app with one route per behaviour the tests need."""
    app = App()
    gate = gate or Gate()

    @app.route("/")
    async def root(request: Request) -> Response:
        return Response.text("hello")

    @app.route("/echo", methods=["POST", "PUT"])
    async def echo(request: Request) -> Response:
        body = await request.body()
        return Response(200, body, content_type="application/octet-stream")

    @app.route("/count", methods=["POST"])
    async def count(request: Request) -> Response:
        total = 0
        async for chunk in request.stream():
            total += len(chunk)
        return Response.text(str(total))

    @app.route("/noread", methods=["POST", "PUT"])
    async def noread(request: Request) -> Response:
        return Response.text("not read")

    @app.route("/stream")
    async def stream(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            for piece in (b"one,", b"", b"two,", b"three"):
                yield piece

        return Response(200, chunks(), content_type="text/plain")

    @app.route("/big")
    async def big(request: Request) -> Response:
        return Response(200, b"x" * (8 * 1024 * 1024))

    @app.route("/slow")
    async def slow(request: Request) -> Response:
        gate.entered.set()
        await gate.release.wait()
        return Response.text("slow done")

    @app.route("/forever")
    async def forever(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first"
            gate.entered.set()
            await trio.sleep_forever()
            yield b"never"  # pragma: no cover

        return Response(200, chunks())

    @app.route("/boom")
    async def boom(request: Request) -> Response:
        raise RuntimeError("handler exploded")

    @app.route("/teapot")
    async def teapot(request: Request) -> Response:
        raise HTTPError(418, "short and stout")

    @app.route("/empty")
    async def empty(request: Request) -> Response:
        return Response(204)

    return app


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def app(gate: Gate) -> App:
    return make_app(gate)


# -- running servers ----------------------------------------------------------------


@asynccontextmanager
async def running(
    app: trio_ws.request.Handler,
    host: str | list[str] | None = "127.0.0.1",
    *,
    config: ServerConfig | None = None,
    listeners: list[trio.SocketListener] | None = None,
) -> AsyncIterator[Server]:
    """Serve ``app`` on port 0 for the ``async with`` block; cancelled on exit.

    Cancelling ``serve`` closes only the first listener (BUG, see
    ``test_server.py::test_cancelled_serve_closes_every_listener``), so the
    sockets are closed here too, to keep ResourceWarnings out of other tests.
    """
    server: Server | None = None
    try:
        async with trio.open_nursery() as nursery:
            start = functools.partial(trio_ws.serve, app, host, 0, config=config, listeners=listeners)
            server = await nursery.start(start)
            try:
                yield server
            finally:
                nursery.cancel_scope.cancel()
    finally:
        close_listeners(server.listeners if server else listeners or [])


def close_listeners(listeners: Iterable[trio.abc.Listener[trio.abc.Stream]]) -> None:
    for listener in listeners:
        if isinstance(listener, trio.SocketListener):
            listener.socket.close()


# -- clients -------------------------------------------------------------------------


class H11Client:
    """An ``h11`` client over a trio stream: the independent framing oracle."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT)
        self.interim: list[h11.InformationalResponse] = []

    @classmethod
    async def connect(cls, port: int, host: str = "127.0.0.1") -> H11Client:
        return cls(await connect(port, host))

    async def send(self, *events: h11.Event) -> None:
        data = b"".join(self.h11.send(event) or b"" for event in events)
        await self.stream.send_all(data)

    async def send_request(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes | None = None,
        *,
        http_version: str = "1.1",
    ) -> None:
        header_list = [("host", "test"), *headers]
        if body is not None and not any(
            n.lower() in ("content-length", "transfer-encoding") for n, _ in header_list
        ):
            header_list.append(("content-length", str(len(body))))
        request = h11.Request(method=method, target=target, headers=header_list, http_version=http_version)
        events: list[h11.Event] = [request]
        if body:
            events.append(h11.Data(data=body))
        if body is not None or not any(n.lower() == "transfer-encoding" for n, _ in header_list):
            events.append(h11.EndOfMessage())
        await self.send(*events)

    async def next_event(self) -> object:
        """The next h11 event (or ``h11.PAUSED``), reading as needed."""
        with trio.fail_after(DEADLINE):
            while True:
                event = self.h11.next_event()
                if event is not h11.NEED_DATA:
                    return event
                self.h11.receive_data(bytes(await self.stream.receive_some(RECEIVE_SIZE)))

    async def read_head(self) -> h11.Response:
        while True:
            event = await self.next_event()
            if isinstance(event, h11.InformationalResponse):
                self.interim.append(event)
                continue
            assert isinstance(event, h11.Response), event
            return event

    async def read_response(self) -> SimpleResponse:
        head = await self.read_head()
        chunks: list[bytes] = []
        while True:
            event = await self.next_event()
            if isinstance(event, h11.EndOfMessage):
                return SimpleResponse(head.status_code, list(head.headers), b"".join(chunks))
            assert isinstance(event, h11.Data), event
            chunks.append(bytes(event.data))

    async def read_rest(self) -> bytes:
        """The rest of the current response body (raises if the server cuts it short)."""
        chunks: list[bytes] = []
        while True:
            event = await self.next_event()
            if isinstance(event, h11.EndOfMessage):
                return b"".join(chunks)
            assert isinstance(event, h11.Data), event
            chunks.append(bytes(event.data))

    async def request(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes | None = None,
        *,
        http_version: str = "1.1",
    ) -> SimpleResponse:
        """One exchange; then prepare the next cycle when the connection stays open."""
        await self.send_request(method, target, headers, body, http_version=http_version)
        response = await self.read_response()
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
        return response

    async def at_eof(self) -> bool:
        """True when the server closed (EOF or reset) within the deadline."""
        return await at_eof(self.stream)

    async def aclose(self) -> None:
        await self.stream.aclose()


async def at_eof(stream: trio.abc.ReceiveStream, timeout: float = DEADLINE) -> bool:
    """Read until EOF; True on EOF/reset, False if data arrived instead."""
    with trio.fail_after(timeout):
        try:
            data = await stream.receive_some(RECEIVE_SIZE)
        except trio.BrokenResourceError:
            return True
    return data == b""


async def read_until_eof(stream: trio.abc.ReceiveStream, timeout: float = DEADLINE) -> bytes:
    """Everything the server sends until it closes (a reset ends it too)."""
    out = bytearray()
    with trio.fail_after(timeout):
        while True:
            try:
                data = await stream.receive_some(RECEIVE_SIZE)
            except trio.BrokenResourceError:
                break
            if not data:
                break
            out += data
    return bytes(out)


#: Client sockets opened by the current test; closed by ``_close_client_sockets``.
_open_sockets: list[trio.SocketStream] = []


async def connect(port: int, host: str = "127.0.0.1") -> trio.SocketStream:
    """A TCP connection that is closed at the end of the test even if the test fails."""
    stream = await trio.open_tcp_stream(host, port)
    _open_sockets.append(stream)
    return stream


@pytest.fixture(autouse=True)
def _close_client_sockets() -> Iterator[None]:
    yield
    while _open_sockets:
        sock = _open_sockets.pop().socket
        if sock.fileno() == -1:
            continue
        # Outside trio.run, trio's close() cannot notify the run loop: close the fd.
        os.close(sock.detach())


async def raw_exchange(port: int, data: bytes, *, half_close: bool = False, host: str = "127.0.0.1") -> bytes:
    """Send raw ``data`` on a fresh connection and return all bytes until the server closes."""
    stream = await connect(port, host)
    try:
        await stream.send_all(data)
        if half_close:
            await stream.send_eof()
        return await read_until_eof(stream)
    finally:
        await stream.aclose()


def parse_responses(data: bytes, methods: Iterable[str] = ("GET",)) -> list[SimpleResponse]:
    """Parse raw server output into responses with an h11 client (one per request method)."""
    results: list[SimpleResponse] = []
    client = h11.Connection(h11.CLIENT)
    client.receive_data(data)
    client.receive_data(b"")
    for method in methods:
        client.send(h11.Request(method=method, target="/", headers=[("host", "x")]))
        client.send(h11.EndOfMessage())
        head: h11.Response | None = None
        chunks: list[bytes] = []
        while True:
            event = client.next_event()
            if isinstance(event, h11.Response):
                head = event
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.InformationalResponse):
                continue
            else:
                raise AssertionError(f"unexpected {event!r} after {len(results)} response(s)")
        assert head is not None
        results.append(SimpleResponse(head.status_code, list(head.headers), b"".join(chunks)))
        if client.our_state is h11.DONE and client.their_state is h11.DONE:
            client.start_next_cycle()
    return results


def status_of(data: bytes | bytearray) -> int:
    """The status code of the first response in raw server output."""
    assert data.startswith(b"HTTP/1.1 "), data[:80]
    return int(data[9:12])


async def get_ok(port: int, host: str = "127.0.0.1") -> None:
    """A fresh connection still gets ``200`` for ``GET /``."""
    client = await H11Client.connect(port, host)
    try:
        response = await client.request("GET", "/")
        assert response.status == 200
        assert response.body == b"hello"
    finally:
        await client.aclose()


def set_linger_zero(stream: trio.SocketStream) -> None:
    """Make ``close()`` send RST instead of FIN (SO_LINGER with a zero timeout)."""
    stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def server_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name in SERVER_LOGGERS]


def assert_no_errors(caplog: pytest.LogCaptureFixture) -> None:
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not errors, [r.getMessage() for r in errors]


@asynccontextmanager
async def open_client(port: int, host: str = "127.0.0.1") -> AsyncIterator[H11Client]:
    """An :class:`H11Client` that is closed however the block ends."""
    client = await H11Client.connect(port, host)
    try:
        yield client
    finally:
        await client.stream.aclose()


def closes(response: SimpleResponse) -> bool:
    """The response announces ``Connection: close`` (RFC 9112 §9.6)."""
    value = response.header("connection") or ""
    return "close" in [token.strip().lower() for token in value.split(",")]
