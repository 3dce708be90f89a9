"""THE regression suite: no deadlock when both peers push, and bounded memory.

* Two peers pipelining 100 messages of 1 MiB *both ways at once*, each with a
  separate sender and receiver task, must finish: our client against our
  server, and the ``websockets`` library's client against our server.  Pings
  fly during the transfer, so auto-Pong replies are scheduled while both
  writers are blocked on full TCP windows.
* A consumer that never calls ``receive()`` stops the reader: the server's
  buffered bytes stay bounded while the peer tries to send 50 MiB, and
  ``aclose()`` still finishes within its deadline.
* Ping/Pong still work while the message channel is full.
"""

from __future__ import annotations

import asyncio
from typing import Unpack

import pytest
import trio

from trio_ws import App, ConnectionClosed, WebSocket
from trio_ws._ws_core import MAX_READ_SIZE, _PingWaiter
from trio_ws.websocket import WebSocketConfig, WebSocketOptions

from .ws_support import serving, wait_for, ws_pair

MIB = 1024 * 1024
COUNT = 100
BIG = 2 * MIB  # max_message_size for 1 MiB messages


async def pump(ws: WebSocket, count: int, size: int, *, tag: bytes) -> int:
    """Send ``count`` messages of ``size`` bytes while receiving ``count`` in another task."""
    received = 0

    async def sender() -> None:
        for i in range(count):
            await ws.send(tag + i.to_bytes(4, "big") + bytes(size - len(tag) - 4))

    async def receiver() -> None:
        nonlocal received
        for _ in range(count):
            message = await ws.receive()
            assert len(message) == size
            received += 1

    async def pinger() -> None:
        while True:  # explicit pings in the middle of the traffic
            await ws.ping(b"mid-transfer")
            await trio.sleep(0.05)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(pinger)
        async with trio.open_nursery() as transfer:
            transfer.start_soon(sender)
            transfer.start_soon(receiver)
        nursery.cancel_scope.cancel()
    return received


def pushing_app(results: list[int]) -> App:
    app = App()

    @app.websocket("/push", ping_interval=0.05, ping_timeout=30, max_message_size=BIG)
    async def push(ws: WebSocket) -> None:
        results.append(await pump(ws, COUNT, MIB, tag=b"S"))

    return app


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["tcp", "lockstep"])
async def test_our_client_and_server_push_100_mib_both_ways(transport: str) -> None:
    results: list[int] = []
    with trio.fail_after(60):
        async with (
            serving(pushing_app(results), transport) as h,
            h.connect("/push", ping_interval=0.05, ping_timeout=30, max_message_size=BIG) as ws,
        ):
            assert await pump(ws, COUNT, MIB, tag=b"C") == COUNT
            await wait_for(lambda: bool(results), timeout=30)
    assert results == [COUNT]


@pytest.mark.slow
async def test_websockets_client_pushes_100_mib_both_ways_with_our_server() -> None:
    from websockets.asyncio.client import connect

    async def client(url: str) -> int:
        received = 0
        async with connect(url, max_size=2 * MIB, ping_interval=0.05, ping_timeout=30) as ws:

            async def sender() -> None:
                for i in range(COUNT):
                    await ws.send(b"W" + i.to_bytes(4, "big") + bytes(MIB - 5))

            async def receiver() -> None:
                nonlocal received
                for _ in range(COUNT):
                    assert len(await ws.recv()) == MIB
                    received += 1

            await asyncio.gather(sender(), receiver())
        return received

    results: list[int] = []
    with trio.fail_after(60):
        async with serving(pushing_app(results), "tcp") as h:
            got = await trio.to_thread.run_sync(asyncio.run, client(h.url("/push")), abandon_on_cancel=True)
            await wait_for(lambda: bool(results), timeout=30)
    assert got == COUNT
    assert results == [COUNT]


@pytest.mark.parametrize("transport", ["memory", "lockstep"])
async def test_in_memory_pair_pushes_both_ways_with_keepalive(transport: str) -> None:
    cfg = WebSocketConfig(ping_interval=0.01, ping_timeout=30, max_message_size=2 * MIB)
    with trio.fail_after(60):
        async with ws_pair(transport, client_config=cfg, server_config=cfg) as (client, server):
            counts: list[int] = []
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_record, counts, client, b"C")
                nursery.start_soon(_record, counts, server, b"S")
            assert counts == [20, 20]


async def _record(counts: list[int], ws: WebSocket, tag: bytes) -> None:
    counts.append(await pump(ws, 20, MIB, tag=tag))


def holding_app(held: list[WebSocket], release: trio.Event, **options: Unpack[WebSocketOptions]) -> App:
    app = App()

    @app.websocket("/hold", **options)
    async def hold(ws: WebSocket) -> None:
        held.append(ws)  # never receives: a slow consumer
        await release.wait()

    return app


@pytest.mark.slow
async def test_slow_consumer_stops_the_reader_and_aclose_still_finishes() -> None:
    held: list[WebSocket] = []
    release = trio.Event()
    sent = 0
    max_queue = 4
    app = holding_app(held, release, max_queue=max_queue, close_timeout=5.0, max_message_size=BIG)
    with trio.fail_after(60):
        # compression=False: zeros would deflate ~1000:1 and never fill the TCP window.
        async with (
            serving(app, "tcp") as h,
            h.connect("/hold", max_message_size=BIG, compression=False) as ws,
        ):
            await wait_for(lambda: bool(held))
            server_ws = held[0]

            async def flood() -> None:
                nonlocal sent
                try:
                    for _ in range(50):
                        await ws.send(bytes(MIB))
                        sent += 1
                except ConnectionClosed:
                    pass

            async with trio.open_nursery() as nursery:
                nursery.start_soon(flood)
                await wait_for(lambda: server_ws.statistics().reader_blocked)
                before = server_ws.statistics()
                await trio.sleep(0.5)
                after = server_ws.statistics()
                # The reader stopped: nothing more was read, and what is held is bounded.
                assert after.bytes_received == before.bytes_received
                # max_queue messages in the channel + what the last read completed beyond
                # it (the backlog; a read of at most MAX_READ_SIZE completes at most two
                # 1 MiB messages) + the partial message of that read.
                assert max_queue <= after.messages_queued <= max_queue + 2
                assert after.bytes_queued <= (max_queue + 2) * MIB
                # One read: receive_size, grown up to MAX_READ_SIZE while reads fill it.
                assert after.bytes_buffered <= MAX_READ_SIZE
                assert after.bytes_received <= (max_queue + 2) * MIB + MAX_READ_SIZE
                assert sent < 50  # the flood is stuck on the TCP window
                started = trio.current_time()
                await server_ws.aclose()
                assert trio.current_time() - started < 5.0
                assert server_ws.closed
            assert server_ws.sent_close_code == 1000
            release.set()


async def test_ping_is_answered_while_the_channel_is_full() -> None:
    held: list[WebSocket] = []
    release = trio.Event()
    app = holding_app(held, release, max_queue=4)
    with trio.fail_after(20):
        async with serving(app, "tcp") as h, h.connect("/hold") as ws:
            await wait_for(lambda: bool(held))
            server_ws = held[0]
            for i in range(4):
                await ws.send(f"m{i}")
            await wait_for(lambda: server_ws.statistics().messages_queued == 4)
            assert await ws.ping(b"full") >= 0  # the server's reader still answers
            assert await server_ws.ping(b"from the full side") >= 0
            # One more message: now the reader waits for room; a Ping in the same
            # write is still answered, since replies are scheduled before delivery.
            waiter = ws._pings[b"same read"] = _PingWaiter()
            async with ws._frame_lock:
                proto = ws._protocol
                await ws._stream.send_all(proto.send_text("m4") + proto.send_ping(b"same read"))
            await waiter.event.wait()
            assert waiter.answered
            assert server_ws.statistics().reader_blocked
            assert await server_ws.receive() == "m0"
            release.set()
