"""The server's TLS handshake deadline (``ServerConfig.tls_handshake_timeout``).

A client that connects and then sends nothing, or half a ClientHello, holds
its connection slot only until the deadline: the server closes it and logs
one line. Meanwhile other clients are served; with ``max_connections=1`` the
next client waits for exactly that deadline, and no longer.
"""

from __future__ import annotations

import logging
import ssl

import pytest
import trio

import trio_ws
from trio_ws import App, Request, Response, ServerConfig

from .conftest import DEADLINE, H11Client, close_listeners, connect, read_until_eof
from .tls_support import HOST, assert_no_tracebacks, make_client_context, tls_connect, tls_server

TIMEOUT = 0.5


def hello_app() -> App:
    app = App()

    @app.route("/")
    async def root(request: Request) -> Response:
        return Response.text("hello")

    return app


def client_hello() -> bytes:
    """The first flight of a real TLS client: one ClientHello record."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = make_client_context().wrap_bio(incoming, outgoing, server_hostname=HOST)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    data = outgoing.read()
    assert data[0] == 0x16  # a handshake record
    return data


async def stall(port: int, how: str) -> trio.SocketStream:
    stream = await connect(port)
    if how == "half-hello":
        hello = client_hello()
        await stream.send_all(hello[: len(hello) // 2])
    return stream


async def get(port: int) -> bytes:
    tls = await tls_connect(port)
    try:
        return (await H11Client(tls).request("GET", "/")).body
    finally:
        await tls.aclose()


def timed_out(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "trio_ws.server" and "TLS handshake" in r.getMessage()]


@pytest.mark.parametrize("how", ["silent", "half-hello"])
async def test_stalled_handshake_is_dropped_at_the_deadline(
    how: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    config = ServerConfig(tls_handshake_timeout=TIMEOUT)
    async with tls_server(hello_app(), config=config) as server:
        started = trio.current_time()
        stalled = await stall(server.port, how)
        # others are served while the stalled client waits out its deadline
        assert await get(server.port) == b"hello"
        assert trio.current_time() - started < TIMEOUT
        assert server.statistics()["connections"] >= 1
        assert await read_until_eof(stalled) == b""
        elapsed = trio.current_time() - started
        assert TIMEOUT * 0.8 <= elapsed < TIMEOUT + 2
        with trio.fail_after(DEADLINE):
            while server.statistics()["connections"]:
                await trio.sleep(0.01)
    records = timed_out(caplog)
    assert [r.getMessage().split(": ", 1)[1] for r in records] == ["TLS handshake timed out"]
    assert records[0].exc_info is None
    assert_no_tracebacks(caplog)


async def test_a_stalled_handshake_holds_its_slot_only_until_the_deadline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = ServerConfig(tls_handshake_timeout=TIMEOUT, max_connections=1)
    async with tls_server(hello_app(), config=config) as server:
        started = trio.current_time()
        stalled = await stall(server.port, "silent")
        with trio.fail_after(DEADLINE):
            while not server.statistics()["connections"]:
                await trio.sleep(0.01)
        # the only slot is taken: this client waits in the backlog for the deadline
        assert await get(server.port) == b"hello"
        assert TIMEOUT * 0.8 <= trio.current_time() - started < TIMEOUT + 2
        assert await read_until_eof(stalled) == b""
    assert_no_tracebacks(caplog)


async def test_header_deadline_starts_after_the_handshake(caplog: pytest.LogCaptureFixture) -> None:
    """A client that finishes TLS and then sends nothing meets header_timeout next (no fresh slowloris)."""
    config = ServerConfig(tls_handshake_timeout=TIMEOUT, header_timeout=TIMEOUT)
    async with tls_server(hello_app(), config=config) as server:
        tls = await tls_connect(server.port)
        started = trio.current_time()
        data = await read_until_eof(tls)
        assert trio.current_time() - started < TIMEOUT + 2
        assert data == b"" or data.startswith(b"HTTP/1.1 408")
        await tls.aclose()
    assert_no_tracebacks(caplog)


async def test_client_handshake_is_bounded_by_the_callers_scope() -> None:
    """connect() has no timeout argument: a cancel scope bounds a server that never answers TLS."""
    listeners = await trio.open_tcp_listeners(0, host=HOST)
    port = listeners[0].socket.getsockname()[1]
    accepted: list[trio.SocketStream] = []

    async def accept_and_ignore() -> None:
        accepted.append(await listeners[0].accept())

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(accept_and_ignore)
            with trio.move_on_after(TIMEOUT) as scope:
                async with trio_ws.connect(f"wss://{HOST}:{port}/", ssl_context=make_client_context()):
                    pass  # pragma: no cover
            assert scope.cancelled_caught
            with trio.fail_after(DEADLINE):
                while not accepted:
                    await trio.sleep(0.01)
            # the ClientHello arrived, then EOF: our client closed its socket on the way out
            assert (await read_until_eof(accepted[0]))[:1] == b"\x16"
    finally:
        for stream in accepted:
            await stream.aclose()
        close_listeners(listeners)
