"""On plain TCP the watcher is a task only while it is needed (``_ws_core``, "Who reads").

``ws._spawn(nursery)`` (the server's and ``connect()``'s way) starts no task: the
handler's ``receive()`` reads, and the run's timer service (``trio_ws._timers``)
starts the watcher in the connection's nursery when nobody has received for
``WATCH_DELAY``, when the keepalive is due, or at once when input is needed now;
the watcher ends again when a receiver has the socket back.  An idle
connection therefore costs no task.
"""

from __future__ import annotations

import socket
import struct

import pytest
import trio
import trio.testing

from trio_ws import App, ConnectionClosedError, ConnectionClosedOK, WebSocket
from trio_ws._ws_core import WATCH_DELAY, WebSocketCore
from trio_ws.sansio.connection import Role
from trio_ws.websocket import WebSocketConfig

from .test_ws_perf_paths import ws_task_names
from .test_ws_readers import tcp_pair, tcp_streams
from .ws_support import RawFrames, raw_upgrade, serving, upgrade_request, wait_for

QUIET = WebSocketConfig(ping_interval=None, compression=False)


async def test_a_receiving_connection_has_no_task_of_its_own() -> None:
    async with tcp_pair(how="spawn") as (client, server):
        got: list[str | bytes] = []

        async def receive_two() -> None:
            got.append(await server.receive())
            got.append(await server.receive())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive_two)
            await trio.testing.wait_all_tasks_blocked()
            assert ws_task_names() == []  # the receiver waits for readability itself
            await client.send("one")
            await wait_for(lambda: len(got) == 1)
            await trio.sleep(WATCH_DELAY * 2)  # the receiver holds the socket: no watcher starts
            assert not server._watching  # (the client's watcher runs)
            assert server._rx_reading
            await client.send("two")
        assert got == ["one", "two"]


async def test_input_wanted_now_while_a_receiver_reads_waits_for_it_to_leave() -> None:
    async with tcp_pair(how="spawn") as (client, server):
        got: list[str | bytes] = []

        async def receive_one() -> None:
            got.append(await server.receive())

        async def ping() -> None:
            await server.ping(b"p")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive_one)
            await wait_for(lambda: server._rx_reading)
            nursery.start_soon(ping)  # the Pong must be read: the receiver reads it
            await trio.testing.wait_all_tasks_blocked()
            assert not server._watching  # a watcher started, saw the receiver and ended
            await client.send("x")
        assert got == ["x"]


async def test_lazy_keepalive_pings_and_fails_1011_without_a_pong() -> None:
    config = WebSocketConfig(ping_interval=0.2, ping_timeout=0.3, compression=False)
    client_stream, server_stream = await tcp_streams()
    server = WebSocket(server_stream, config.make_protocol(Role.SERVER), config=config)
    raw = RawFrames(client_stream)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server._spawn(nursery)
            assert ws_task_names() == []
            assert await raw.next() == (0x9, server._keepalive_waiter and next(iter(server._pings)))
            # never answered: 1011 after ping_timeout
            opcode, payload = await raw.next()
            assert opcode == 0x8
            assert int.from_bytes(payload[:2], "big") == 1011
        assert server.closed
    await client_stream.aclose()


async def test_lazy_keepalive_keeps_an_answering_connection_open() -> None:
    config = WebSocketConfig(ping_interval=0.1, ping_timeout=0.5, compression=False)
    async with tcp_pair(how="spawn", server_config=config) as (client, server):

        async def receive() -> None:
            await client.receive()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive)  # the client reads (and answers) the Pings
            await trio.sleep(1.0)
            nursery.cancel_scope.cancel()
        assert server.statistics().bytes_received >= 5 * 6  # several masked Pongs, 4-byte payload
        await server.send("still open")
        assert await client.receive() == "still open"


async def test_a_closed_nursery_closes_the_connection_instead_of_watching() -> None:
    client_stream, server_stream = await tcp_streams()
    server = WebSocket(server_stream, QUIET.make_protocol(Role.SERVER), config=QUIET)
    async with trio.open_nursery() as gone:
        pass
    server._spawn(gone)
    server._watch_now()  # a watcher is wanted, and cannot start
    assert server.closed
    assert isinstance(server._cause, RuntimeError)
    assert await client_stream.receive_some(10) == b""  # the socket was closed
    await client_stream.aclose()


async def test_an_idle_server_connection_is_closed_by_a_handler_that_returns() -> None:
    app = App()

    @app.websocket("/once")
    async def once(ws: WebSocket) -> None:
        await ws.send(await ws.receive())

    async with serving(app, "tcp") as h:
        stream = await h.dial()
        head, raw = await raw_upgrade(stream, upgrade_request("/once"))
        assert head.startswith(b"HTTP/1.1 101 ")
        await stream.send_all(b"\x81\x82\x00\x00\x00\x00hi")
        assert await raw.next() == (0x1, b"hi")
        opcode, payload = await raw.next()  # the handler returned: Close 1000
        assert opcode == 0x8
        assert payload[:2] == b"\x03\xe8"
        await stream.send_all(b"\x88\x82\x00\x00\x00\x00\x03\xe8")
        assert await stream.receive_some(10) == b""  # the server drops TCP first
        await stream.aclose()


async def test_a_vanished_peer_ends_a_lazy_connection_with_1006() -> None:
    async with tcp_pair(how="spawn") as (client, server):
        errors: list[BaseException] = []

        async def receive() -> None:
            try:
                await server.receive()
            except ConnectionClosedError as exc:
                errors.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive)
            await wait_for(lambda: server._rx_reading)
            linger = struct.pack("ii", 1, 0)  # close with RST
            stream = client._stream
            assert isinstance(stream, trio.SocketStream)
            stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            stream.socket.close()
        assert server.close_code == 1006
        assert len(errors) == 1
        await wait_for(lambda: server.closed)


async def test_a_server_receiving_the_close_closes_without_a_task(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[str] = []
    watch_and_close = WebSocketCore._watch_and_close

    async def recording(self: WebSocketCore) -> None:
        started.append("client" if self._is_client else "server")
        await watch_and_close(self)

    monkeypatch.setattr(WebSocketCore, "_watch_and_close", recording)
    async with tcp_pair(how="spawn") as (client, server):
        errors: list[ConnectionClosedOK] = []

        async def receive() -> None:
            with pytest.raises(ConnectionClosedOK) as info:
                await server.receive()
            errors.append(info.value)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive)
            await wait_for(lambda: server._rx_reading)
            await client.aclose(1000, "bye")
        assert server.closed  # the echo went out and the socket closed in receive() itself
        assert (errors[0].code, errors[0].reason) == (1000, "bye")
        assert client.close_code == 1000
    assert "server" not in started
