"""Who reads the socket: the task in ``receive()`` first, the watcher otherwise.

On plain TCP ``receive()`` reads and parses the socket itself when nothing is
queued; the watcher (``_run``) takes over when no ``receive()`` comes back within
``WATCH_DELAY`` or when input is needed now (``ping()``, closing), and hands the
socket back once it has delivered to a waiting receiver.  These tests drive that
hand-over over real loopback sockets, plus the send path's non-blocking write
and its lock.  (``_ws_core`` module docstring, "Who reads".)
"""

from __future__ import annotations

import math
import os
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from trio_ws import ConnectionClosedError, ConnectionClosedOK, WebSocket
from trio_ws._direct_io import OPS_PER_YIELD
from trio_ws._send_lock import SendLock
from trio_ws._ws_core import WATCH_DELAY, WebSocketCore
from trio_ws.sansio.connection import Role
from trio_ws.sansio.events import Event, Fragment
from trio_ws.websocket import WebSocketConfig

from .ws_support import DEADLINE, wait_for


async def tcp_streams() -> tuple[trio.SocketStream, trio.SocketStream]:
    """Both ends of one loopback TCP connection."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    try:
        port = listeners[0].socket.getsockname()[1]
        client = await trio.open_tcp_stream("127.0.0.1", port)
        server = await listeners[0].accept()
    finally:
        await listeners[0].aclose()
    return client, server


@asynccontextmanager
async def tcp_pair(
    *,
    client_config: WebSocketConfig | None = None,
    server_config: WebSocketConfig | None = None,
    how: str | None = None,
) -> AsyncIterator[tuple[WebSocket, WebSocket]]:
    """A client and a server WebSocket over loopback TCP (no handshake), both running;
    ``how`` they start: "spawn" or "run" (default: the ``start`` fixture's)."""
    client_stream, server_stream = await tcp_streams()
    ccfg = client_config or WebSocketConfig(ping_interval=None, compression=False)
    scfg = server_config or WebSocketConfig(ping_interval=None, compression=False)
    client = WebSocket(
        client_stream, ccfg.make_protocol(Role.CLIENT, lambda: b"\x01\x02\x03\x04"), config=ccfg
    )
    server = WebSocket(server_stream, scfg.make_protocol(Role.SERVER), config=scfg)
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            if (how or STARTS["how"]) == "spawn":  # as the server and connect() do: watchers on demand
                client._spawn(nursery)
                server._spawn(nursery)
            else:  # a watcher task for the whole connection
                await nursery.start(client._run)
                await nursery.start(server._run)
            try:
                yield client, server
            finally:
                client._abort()  # (lazy: starts the watcher that closes the socket)
                server._abort()
                nursery.cancel_scope.cancel()


#: How tcp_pair starts its connections (the ``start`` fixture runs every test both ways).
STARTS = {"how": "run"}


@pytest.fixture(autouse=True, params=["run", "spawn"])
def start(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(STARTS, "how", request.param)
    return str(request.param)


@pytest.fixture
def watcher_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records, per side, every read whose events the watcher (not a receiver) took."""
    seen: list[str] = []
    take = WebSocketCore._take_events

    def counting(self: WebSocketCore, events: list[Event | str | bytes], *, keep_first: bool) -> object:
        if not keep_first and events:
            seen.append("client" if self._is_client else "server")
        return take(self, events, keep_first=keep_first)

    monkeypatch.setattr(WebSocketCore, "_take_events", counting)
    return seen


async def test_receive_reads_the_socket_itself(watcher_reads: list[str]) -> None:
    async with tcp_pair() as (client, server):
        for i in range(200):
            await client.send(f"m{i}")
            assert await server.receive() == f"m{i}"
            await server.send(f"r{i}")
            assert await client.receive() == f"r{i}"
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.receive)
            await trio.testing.wait_all_tasks_blocked()
            assert server._rx_reading  # parked in receive(), waiting for readability
            nursery.cancel_scope.cancel()
    assert watcher_reads == []  # every message was read by the task that received it


async def test_the_watcher_takes_over_when_nobody_receives() -> None:
    config = WebSocketConfig(ping_interval=None, compression=False, max_queue=3)
    async with tcp_pair(server_config=config) as (client, server):
        # The server never calls receive(): its watcher answers the Ping ...
        with trio.fail_after(WATCH_DELAY + 2):
            await client.ping(b"are you there")
        # ... and fills the channel, then stops reading: backpressure.
        for i in range(10):
            await client.send(f"queued {i}")
        await wait_for(lambda: server.statistics().reader_blocked)
        before = server.statistics()
        await trio.sleep(WATCH_DELAY * 2)
        after = server.statistics()
        assert after.bytes_received == before.bytes_received  # nobody reads any more
        assert after.messages_queued >= 3  # a full channel, plus the rest of the last read
        assert [await server.receive() for _ in range(10)] == [f"queued {i}" for i in range(10)]


async def test_a_receive_that_waits_on_the_watcher_gets_the_socket_back(start: str) -> None:
    async with tcp_pair() as (client, server):
        await trio.sleep(WATCH_DELAY * 1.5)  # nobody receives: the watcher reads now
        await wait_for(lambda: server._reading and not server._rx_reading)
        got: list[str | bytes] = []

        async def receive_one() -> None:
            got.append(await server.receive())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive_one)
            await wait_for(lambda: server._rx_waiting)
            await client.send("via the watcher")
        assert got == ["via the watcher"]
        assert not server._rx_waiting
        if start == "spawn":  # the watcher on demand ends; the timer service keeps its next moment
            await wait_for(lambda: not server._watching)
            assert server._timer_key is not None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive_one)
            await wait_for(lambda: server._rx_reading)  # the receiver reads again itself
            await client.send("via the receiver")
        assert got == ["via the watcher", "via the receiver"]


async def test_partial_frames_keep_the_watcher_reading_for_a_waiting_receive() -> None:
    async with tcp_pair() as (client, server):
        await trio.sleep(WATCH_DELAY * 1.5)
        await wait_for(lambda: server._reading and not server._rx_reading)
        frame = client._protocol.send_binary(b"x" * 1000)
        async with trio.open_nursery() as nursery:
            result: list[str | bytes] = []

            async def receive_one() -> None:
                result.append(await server.receive())

            nursery.start_soon(receive_one)
            await wait_for(lambda: server._rx_waiting)
            for i in range(0, len(frame), 100):  # ten reads, one message at the end
                await client._stream.send_all(frame[i : i + 100])
                await trio.sleep(0.01)
        assert result == [b"x" * 1000]


async def test_one_read_with_more_messages_than_the_queue_fills_the_backlog() -> None:
    config = WebSocketConfig(ping_interval=None, compression=False, max_queue=2)
    async with tcp_pair(server_config=config) as (client, server):
        burst = b"".join(client._protocol.send_text(f"b{i}") for i in range(10))
        await client._stream.send_all(burst)  # one write: one read on the other side
        await trio.sleep(0.05)
        assert await server.receive() == "b0"
        stats = server.statistics()
        assert (stats.messages_queued, stats.reader_blocked) == (9, True)
        assert len(server._backlog or ()) == 7
        assert [await server.receive() for _ in range(9)] == [f"b{i}" for i in range(1, 10)]
        assert server.statistics().messages_queued == 0
        await client.send("after the burst")
        assert await server.receive() == "after the burst"


async def test_the_receiver_sees_fragments_and_pongs_it_reads() -> None:
    config = WebSocketConfig(ping_interval=None, compression=False, fragments=True)
    async with tcp_pair(server_config=config) as (client, server):
        async with client.send_stream(binary=True) as out:
            await out.send(b"one")
            await out.send(b"two")
        pieces: list[Fragment] = []
        while not pieces or not pieces[-1].final:
            pieces.append(await server.receive_fragment())
        assert b"".join(p.data for p in pieces) == b"onetwo"  # type: ignore[misc]

        async def keep_receiving() -> None:
            await client.serve_messages(reject)  # returns at the clean close

        async def reject(message: str | bytes) -> None:
            raise AssertionError(message)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(keep_receiving)
            await wait_for(lambda: client._rx_reading)
            with trio.fail_after(2):
                await client.ping(b"p")  # its Pong is read by the receiving task
            await server.aclose()


async def test_async_for_joins_fragments_it_reads() -> None:
    config = WebSocketConfig(ping_interval=None, compression=False, fragments=True)
    async with tcp_pair(server_config=config) as (client, server):
        await client.send_fragments(["to", "ge", "ther"])
        await client.send("whole")
        await client.aclose()
        assert [message async for message in server] == ["together", "whole"]


async def test_a_server_closing_at_shutdown_still_receives_what_the_peer_sends() -> None:
    async with tcp_pair() as (client, server):
        server._initiate_close(1001, "going away")  # what the shutdown hook does
        await client.send("last words")
        assert await server.receive() == "last words"
        with pytest.raises(ConnectionClosedOK):
            await client.receive()  # the client saw the 1001 and answered it
        assert client.close_code == 1001


async def test_keepalive_failure_wakes_a_receive_waiting_for_data() -> None:
    config = WebSocketConfig(ping_interval=0.05, ping_timeout=0.1, compression=False, close_timeout=1.0)
    peer, stream = await tcp_streams()  # the peer never answers a Ping
    server = WebSocket(stream, config.make_protocol(Role.SERVER), config=config)
    with trio.fail_after(DEADLINE):
        async with peer, trio.open_nursery() as nursery:
            await nursery.start(server._run)
            with pytest.raises(ConnectionClosedError) as info:
                await server.receive()
            assert info.value.sent_code == 1011


async def test_aclose_from_another_task_ends_a_waiting_receive() -> None:
    async with tcp_pair() as (client, server):

        async def client_echo() -> None:
            async for message in client:
                await client.send(message)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(client_echo)
            outcome: list[BaseException] = []

            async def receive_until_closed() -> None:
                try:
                    await server.receive()
                except ConnectionClosedOK as exc:
                    outcome.append(exc)

            nursery.start_soon(receive_until_closed)
            await wait_for(lambda: server._rx_reading)
            await server.aclose(1000, "bye")
        assert len(outcome) == 1
        assert server.close_code == 1000


async def test_a_peer_that_vanishes_ends_a_waiting_receive_with_1006() -> None:
    peer, stream = await tcp_streams()
    config = WebSocketConfig(ping_interval=None, compression=False)
    server = WebSocket(stream, config.make_protocol(Role.SERVER), config=config)
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            await nursery.start(server._run)

            async def vanish() -> None:
                await wait_for(lambda: server._rx_reading)
                peer.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                await peer.aclose()  # RST: no Close, no FIN

            nursery.start_soon(vanish)
            with pytest.raises(ConnectionClosedError):
                await server.receive()
    assert server.close_code == 1006


async def test_send_writes_what_the_kernel_takes_then_waits_for_the_rest() -> None:
    size = 16 * 1024 * 1024  # far more than the socket buffers hold
    config = WebSocketConfig(ping_interval=None, compression=False, max_message_size=None)
    async with tcp_pair(client_config=config, server_config=config) as (client, server):
        payload = bytes(range(256)) * (size // 256)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.send, payload)
            assert await client.receive() == payload
        assert server.statistics().bytes_sent == client.statistics().bytes_received


@pytest.mark.parametrize("fill", [True, False])
async def test_a_header_and_body_write_resumes_exactly_where_the_kernel_stopped(fill: bool) -> None:
    peer, stream = await tcp_streams()
    config = WebSocketConfig(ping_interval=None, compression=False)
    ws = WebSocket(stream, config.make_protocol(Role.SERVER), config=config)
    filler = b""
    if fill:  # a full send buffer: the write takes nothing, not even all of the header
        while True:
            try:
                filler += b"f" * os.write(stream.socket.fileno(), b"f" * 65536)
            except BlockingIOError:
                break
    header, body = b"H" * 10, bytes(range(256)) * 4096  # 1 MiB behind a 10-byte "header"
    received = bytearray()

    async def drain() -> None:
        while len(received) < len(filler) + len(header) + len(body):
            received.extend(await peer.receive_some(1 << 20))

    with trio.fail_after(DEADLINE):
        async with peer, stream, trio.open_nursery() as nursery:
            nursery.start_soon(drain)
            await ws._write(header, body)
    assert received == filler + header + body
    assert ws.statistics().bytes_sent == len(header) + len(body)


async def test_send_to_a_reset_connection_raises_connection_closed() -> None:
    async with tcp_pair() as (client, server):
        sock = client._stream.socket  # type: ignore[attr-defined]
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client._abort()  # the client goes away with an RST
        await wait_for(lambda: client.closed)

        async def send_until_it_fails() -> None:
            while True:
                await server.send(b"into the void" * 1000)
                await trio.sleep(0.001)

        with pytest.raises(ConnectionClosedError), trio.fail_after(DEADLINE):
            await send_until_it_fails()


async def test_a_send_only_loop_still_yields_to_other_tasks() -> None:
    async with tcp_pair() as (client, server):
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await trio.sleep(0)

        async def drain() -> None:
            for _ in range(OPS_PER_YIELD * 8):
                await client.receive()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ticker)
            nursery.start_soon(drain)
            await trio.sleep(0.01)
            before = ticks
            for i in range(OPS_PER_YIELD * 8):
                await server.send(f"{i}")  # the socket takes each at once
            assert ticks > before  # a yield every OPS_PER_YIELD sends
            nursery.cancel_scope.cancel()


# -- SendLock ---------------------------------------------------------------------------


async def test_send_lock_hands_over_in_fifo_order() -> None:
    lock = SendLock()
    order: list[int] = []

    async def take(i: int) -> None:
        async with lock:
            order.append(i)
            await trio.sleep(0.01)

    async with trio.open_nursery() as nursery:
        await lock.acquire()
        for i in range(3):
            nursery.start_soon(take, i)
            await trio.testing.wait_all_tasks_blocked()
        lock.release()  # straight to the first waiter: still locked
        assert lock.locked()
    assert order == [0, 1, 2]
    assert not lock.locked()


async def test_send_lock_survives_a_waiter_cancelled_just_before_release() -> None:
    lock = SendLock()
    lock.acquire_nowait()
    async with trio.open_nursery() as nursery:
        scope = trio.CancelScope()

        async def waiter() -> None:
            with scope:
                await lock.acquire()

        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        scope.cancel()  # the waiter is unparked but has not run yet ...
        lock.release()  # ... so nobody takes the lock over: it is free
    assert not lock.locked()
    await lock.acquire()
    assert lock.locked()
    lock.release()


def test_the_watch_delay_is_short_but_not_a_busy_loop() -> None:
    assert 0 < WATCH_DELAY <= 1
    assert not math.isinf(WATCH_DELAY)
