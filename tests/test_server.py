"""serve() and Server: listeners, addresses, keep-alive, pipelining, statistics."""

from __future__ import annotations

import errno
import functools
import os
import socket

import pytest
import trio

import trio_ws
from trio_ws import App, Server, ServerConfig
from trio_ws.server import open_listeners

from .conftest import (
    DEADLINE,
    H11Client,
    close_listeners,
    connect,
    get_ok,
    parse_responses,
    raw_exchange,
    read_until_eof,
    running,
    status_of,
)


def _has_ipv6() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(not _has_ipv6(), reason="needs IPv6 on the loopback interface (::1)")


async def test_serve_returns_server_with_bound_port(app: App) -> None:
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(functools.partial(trio_ws.serve, app, "127.0.0.1", 0))
            assert isinstance(server, Server)
            host, port = server.addresses[0]
            assert host == "127.0.0.1"
            assert port != 0
            assert server.port == port
            assert server.urls == [f"http://127.0.0.1:{port}/"]
            assert len(server.sockets) == 1
            await get_ok(port)
            nursery.cancel_scope.cancel()


@needs_ipv6
async def test_serve_ipv6(app: App) -> None:
    with trio.fail_after(DEADLINE):
        async with running(app, "::1") as server:
            assert server.addresses[0][0] == "::1"
            assert server.urls == [f"http://[::1]:{server.port}/"]
            await get_ok(server.port, "::1")


async def test_serve_several_hosts(app: App) -> None:
    hosts = ["127.0.0.1", "::1"] if _has_ipv6() else ["127.0.0.1", "localhost"]
    with trio.fail_after(DEADLINE):
        async with running(app, hosts) as server:
            assert len(server.addresses) >= 2
            for host, port in server.addresses:
                await get_ok(port, host)


async def test_serve_all_interfaces(app: App) -> None:
    with trio.fail_after(DEADLINE):
        async with running(app, None) as server:
            assert server.addresses
            await get_ok(server.port, "127.0.0.1" if server.addresses[0][0] in ("0.0.0.0", "::") else "::1")


async def test_serve_caller_made_listeners(app: App) -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    with trio.fail_after(DEADLINE):
        async with running(app, listeners=listeners) as server:
            assert server.listeners == listeners
            await get_ok(server.port)


async def test_open_listeners_list_of_hosts() -> None:
    listeners = await open_listeners(["127.0.0.1"], 0, backlog=8)
    try:
        assert len(listeners) == 1
    finally:
        for listener in listeners:
            await listener.aclose()


async def test_aclose_stops_serve_and_closes_listeners(app: App) -> None:
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(functools.partial(trio_ws.serve, app, "127.0.0.1", 0))
            port = server.port
            await server.aclose()
            await server.aclose()  # idempotent
        with pytest.raises(OSError, match=r"refused|connect"):
            await trio.open_tcp_stream("127.0.0.1", port)


async def test_keep_alive_several_requests_one_connection(app: App) -> None:
    with trio.fail_after(DEADLINE):
        async with running(app) as server:
            client = await H11Client.connect(server.port)
            for _ in range(5):
                response = await client.request("GET", "/")
                assert response.status == 200
                assert response.header("connection") is None
            response = await client.request("POST", "/echo", body=b"abc")
            assert response.body == b"abc"
            assert server.statistics() == {"connections": 1, "accepted": 1}
            await client.aclose()


async def test_pipelined_requests_answered_in_order(app: App) -> None:
    data = (
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    with trio.fail_after(DEADLINE):
        async with running(app) as server:
            raw = await raw_exchange(server.port, data)
    responses = parse_responses(raw, ["GET", "POST", "GET", "GET"])
    assert [r.status for r in responses] == [200, 200, 200, 404]
    assert [r.body for r in responses[:3]] == [b"hello", b"abc", b"one,two,three"]
    assert responses[3].header("connection") == "close"


async def test_accept_capacity_errors_are_retried(app: App, caplog: pytest.LogCaptureFixture) -> None:
    """EMFILE from accept() is logged and retried, not fatal."""

    class FlakyListener(trio.abc.Listener[trio.abc.Stream]):
        def __init__(self, inner: trio.SocketListener) -> None:
            self.inner = inner
            self.failures = 2

        async def accept(self) -> trio.abc.Stream:
            if self.failures:
                self.failures -= 1
                await trio.lowlevel.checkpoint()
                raise OSError(errno.EMFILE, "Too many open files")
            return await self.inner.accept()

        async def aclose(self) -> None:
            await self.inner.aclose()

    inner = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    flaky = FlakyListener(inner)
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(functools.partial(trio_ws.serve, app, listeners=[flaky]))
            assert server.sockets == []  # not a SocketListener
            await get_ok(inner.socket.getsockname()[1])
            nursery.cancel_scope.cancel()
    assert flaky.failures == 0
    assert any("accept() failed" in r.getMessage() for r in caplog.records)


async def test_accept_other_errors_propagate(app: App) -> None:
    class BrokenListener(trio.abc.Listener[trio.abc.Stream]):
        async def accept(self) -> trio.abc.Stream:
            await trio.lowlevel.checkpoint()
            raise OSError(errno.EINVAL, "listener is broken")

        async def aclose(self) -> None:
            await trio.lowlevel.checkpoint()

    with (
        trio.fail_after(DEADLINE),
        pytest.RaisesGroup(pytest.RaisesExc(OSError, match="broken"), flatten_subgroups=True),
    ):
        async with trio.open_nursery() as nursery:
            await nursery.start(functools.partial(trio_ws.serve, App(), listeners=[BrokenListener()]))


async def test_max_connections_third_client_waits(app: App, gate: object) -> None:
    """With ``max_connections=2`` a third client *connects* at the TCP level (the
    kernel completes the handshake and queues it in the listen backlog) but is not
    accepted, so it gets no response until one of the first two connections ends.
    """
    config = ServerConfig(max_connections=2)
    with trio.fail_after(DEADLINE):
        async with running(app, config=config) as server:
            first = await H11Client.connect(server.port)
            second = await H11Client.connect(server.port)
            assert (await first.request("GET", "/")).status == 200
            assert (await second.request("GET", "/")).status == 200
            third = await H11Client.connect(server.port)  # TCP connect succeeds
            await third.send_request("GET", "/")
            with trio.move_on_after(0.3) as waited:
                await third.read_response()
            assert waited.cancelled_caught, "third client was served while two connections were open"
            assert server.statistics()["connections"] == 2
            await first.aclose()
            assert (await third.read_response()).status == 200
            await second.aclose()
            await third.aclose()


async def test_max_connections_shared_fairly_across_listeners(app: App) -> None:
    """Two listeners, ``max_connections=2``: two clients on the *same* listener must both be served."""
    listeners = [
        *await trio.open_tcp_listeners(0, host="127.0.0.1"),
        *await trio.open_tcp_listeners(0, host="127.0.0.1"),
    ]
    port = listeners[0].socket.getsockname()[1]
    with trio.fail_after(DEADLINE):
        async with running(app, config=ServerConfig(max_connections=2), listeners=listeners):
            first = await H11Client.connect(port)
            second = await H11Client.connect(port)
            try:
                assert (await first.request("GET", "/")).status == 200
                await second.send_request("GET", "/")
                with trio.fail_after(1):
                    assert (await second.read_response()).status == 200
            finally:
                await first.aclose()
                await second.aclose()


async def test_statistics_count_connections(app: App) -> None:
    with trio.fail_after(DEADLINE):
        async with running(app) as server:
            assert server.statistics() == {"connections": 0, "accepted": 0}
            for _ in range(3):
                await get_ok(server.port)
            with trio.fail_after(DEADLINE):
                while server.statistics()["connections"]:
                    await trio.sleep(0.01)
            assert server.statistics()["accepted"] == 3


async def test_peer_address_unavailable_is_tolerated() -> None:
    from trio_ws.server import _peer_address

    a, b = trio.socket.socketpair()
    with a, b:
        stream = trio.SocketStream(a)
        assert _peer_address(stream) is None  # AF_UNIX: not a (host, port) tuple
    left, right = trio.socket.socket(), trio.socket.socket()
    with left, right:
        assert _peer_address(trio.SocketStream(left)) is None  # not connected: getpeername fails


async def test_access_log_line(app: App, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="trio_ws.access")
    with trio.fail_after(DEADLINE):
        async with running(app) as server:
            await get_ok(server.port)
            client = await H11Client.connect(server.port)
            await client.request("GET", "/stream")
            await client.aclose()
    lines = [r.getMessage() for r in caplog.records if r.name == "trio_ws.access"]
    assert len(lines) == 2
    assert '"GET / HTTP/1.1" 200 5 ' in lines[0]
    assert lines[0].startswith("127.0.0.1:")
    assert '"GET /stream HTTP/1.1" 200 - ' in lines[1]


async def test_connection_close_from_client_is_honoured(app: App) -> None:
    with trio.fail_after(DEADLINE):
        async with running(app) as server:
            client = await H11Client.connect(server.port)
            response = await client.request("GET", "/", [("connection", "close")])
            assert response.header("connection") == "close"
            assert await client.at_eof()
            await client.aclose()


async def test_eof_between_requests_ends_quietly(app: App, caplog: pytest.LogCaptureFixture) -> None:
    with trio.fail_after(DEADLINE):
        async with running(app) as server:
            stream = await connect(server.port)
            await stream.send_eof()
            assert await read_until_eof(stream) == b""
            await stream.aclose()
            await get_ok(server.port)
    assert not [r for r in caplog.records if r.name in ("trio_ws.http", "trio_ws.server")]


async def test_cancelled_serve_closes_every_listener() -> None:
    listeners = [
        *await trio.open_tcp_listeners(0, host="127.0.0.1"),
        *await trio.open_tcp_listeners(0, host="127.0.0.1"),
    ]
    try:
        with trio.fail_after(DEADLINE):
            async with trio.open_nursery() as nursery:
                await nursery.start(functools.partial(trio_ws.serve, App(), listeners=listeners))
                nursery.cancel_scope.cancel()
        assert [listener.socket.fileno() for listener in listeners] == [-1, -1]
    finally:
        close_listeners(listeners)


# -- accepting on TCP listeners (Server._accept_tcp) ----------------------------------


def flaky_accept(monkeypatch: pytest.MonkeyPatch, errnos: list[int]) -> list[int]:
    """Make the next ``len(errnos)`` stdlib accept() calls fail with these errnos."""
    real = socket.socket.accept
    pending = list(errnos)

    def accept(self: socket.socket) -> tuple[socket.socket, object]:
        if pending:
            code = pending.pop(0)
            raise OSError(code, os.strerror(code))
        return real(self)

    monkeypatch.setattr(socket.socket, "accept", accept)
    return pending


@pytest.mark.parametrize(
    "errnos", [[errno.EMFILE, errno.ENFILE], [errno.ECONNABORTED, errno.EPERM]], ids=["capacity", "skipped"]
)
async def test_tcp_accept_errors_are_retried_or_skipped(
    app: App, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, errnos: list[int]
) -> None:
    """Running out of descriptors pauses and retries (logged); a connection aborted
    before it was accepted is skipped, as trio's SocketListener skips it."""
    with trio.fail_after(DEADLINE):
        async with running(app) as server:
            pending = flaky_accept(monkeypatch, errnos)
            await get_ok(server.port)
    assert pending == []
    logged = any("accept() failed" in r.getMessage() for r in caplog.records)
    assert logged is (errnos[0] == errno.EMFILE)


async def test_tcp_accept_other_errors_propagate(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    flaky_accept(monkeypatch, [errno.EINVAL])
    with (
        trio.fail_after(DEADLINE),
        pytest.RaisesGroup(pytest.RaisesExc(OSError, match="Invalid argument"), flatten_subgroups=True),
    ):
        async with running(app) as server:
            stream = await connect(server.port)
            await trio.sleep_forever()  # the accept loop's error ends the server
    await stream.aclose()


async def test_tcp_accepts_a_burst_and_yields_now_and_then(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """Clients queued in the backlog are accepted in a row, with a yield every few."""
    monkeypatch.setattr(trio_ws.server, "ACCEPTS_PER_YIELD", 2)
    with trio.fail_after(DEADLINE):
        async with running(app) as server:
            clients = []
            for _ in range(5):  # blocking connects: all queued before the server runs again
                client = socket.create_connection(("127.0.0.1", server.port))
                client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                clients.append(trio.SocketStream(trio.socket.from_stdlib_socket(client)))
            for stream in clients:
                assert status_of(await read_until_eof(stream)) == 200
                await stream.aclose()
    assert server.statistics()["accepted"] == 5
