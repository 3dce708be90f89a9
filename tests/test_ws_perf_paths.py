"""The WebSocket's fast paths keep trio's guarantees.

``send()`` takes free locks without a scheduler round, ``receive()`` takes a
queued message without one, the reader ``os.read``s plain TCP after waiting for
readability, and a connection runs one task (``_run``; a flusher only while control bytes wait),
shutdown being a synchronous hook.  These tests pin what must not change with
that: cancellation, fairness, statistics, errors, the 1001 at shutdown.
"""

from __future__ import annotations

import socket
import struct

import pytest
import trio
import trio.testing

from trio_ws import App, ConnectionClosedError, ConnectionClosedOK, WebSocket
from trio_ws._ws_core import RECEIVES_PER_YIELD
from trio_ws.sansio.connection import Role
from trio_ws.websocket import WebSocketConfig

from .ws_support import TRANSPORTS, RawFrames, raw_upgrade, serving, upgrade_request, wait_for, ws_pair


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def ws_task_names() -> list[str]:
    """Names of every running task of a WebSocket (``WebSocketCore`` methods)."""
    names: list[str] = []

    def walk(task: trio.lowlevel.Task) -> None:
        if "WebSocketCore." in task.name:
            names.append(task.name.rpartition(".")[2])
        for nursery in task.child_nurseries:
            for child in nursery.child_tasks:
                walk(child)

    root = trio.lowlevel.current_root_task()
    assert root is not None
    walk(root)
    return sorted(names)


# -- send ------------------------------------------------------------------------------


async def test_send_in_a_cancelled_scope_raises_cancelled_and_sends_nothing() -> None:
    async with ws_pair() as (client, server):
        with trio.CancelScope() as scope:
            scope.cancel()
            await client.send("never")
        assert scope.cancelled_caught
        assert not client._message_lock.locked()
        assert not client._frame_lock.locked()
        await client.send("after")  # the connection is intact and nothing went out
        assert await server.receive() == "after"
        assert client.statistics().bytes_sent == server.statistics().bytes_received


async def test_contended_send_still_waits_for_the_locks_and_keeps_order() -> None:
    async with ws_pair("lockstep") as (client, server):
        got: list[str | bytes] = []

        async def receive_all() -> None:
            for _ in range(3):
                got.append(await server.receive())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive_all)
            # Three senders at once: the lock holder is mid-send_all (lockstep
            # streams block until read), the others take the slow path.
            for i in range(3):
                nursery.start_soon(client.send, f"m{i}" * 1000)
                await trio.testing.wait_all_tasks_blocked()
        assert sorted(got) == sorted(f"m{i}" * 1000 for i in range(3))


async def test_a_send_waiting_for_the_lock_is_cancellable() -> None:
    ours, theirs = trio.testing.lockstep_stream_pair()
    cfg = WebSocketConfig(ping_interval=None)
    ws = WebSocket(ours, cfg.make_protocol(Role.SERVER), config=cfg)
    raw = RawFrames(theirs)
    async with trio.open_nursery() as nursery:
        await nursery.start(ws._run)
        nursery.start_soon(ws.send, b"x" * 100_000)  # holds both locks: the peer does not read yet
        await trio.testing.wait_all_tasks_blocked()
        assert ws._message_lock.locked()
        with trio.move_on_after(0.05) as scope:
            await ws.send("queued behind")  # waits on the message lock (slow path)
        assert scope.cancelled_caught
        assert await raw.next() == (0x2, b"x" * 100_000)
        await trio.testing.wait_all_tasks_blocked()
        assert not ws._message_lock.locked()
        assert not ws._frame_lock.locked()
        nursery.start_soon(ws.send, "next")
        assert await raw.next() == (0x1, b"next")  # the cancelled send never went out
        nursery.cancel_scope.cancel()


# -- receive ---------------------------------------------------------------------------


async def test_receive_with_a_message_queued_is_still_cancellable() -> None:
    async with ws_pair() as (client, server):
        await client.send("queued")
        await wait_for(lambda: server.statistics().messages_queued == 1)
        with trio.CancelScope() as scope:
            scope.cancel()
            await server.receive()
        assert scope.cancelled_caught
        assert await server.receive() == "queued"  # not consumed by the cancelled call


async def test_a_receive_loop_over_a_full_queue_yields_boundedly() -> None:
    count = 4 * RECEIVES_PER_YIELD
    cfg = WebSocketConfig(ping_interval=None, max_queue=count)
    async with ws_pair(server_config=cfg) as (client, server):
        for i in range(count):
            await client.send(str(i))
        await wait_for(lambda: server.statistics().messages_queued == count)
        received: list[str | bytes] = []
        per_step: list[int] = []

        class Steps(trio.abc.Instrument):
            """Messages the draining task received in each of its scheduler steps."""

            def __init__(self, task: trio.lowlevel.Task) -> None:
                self.task = task
                self.start = 0

            def before_task_step(self, task: trio.lowlevel.Task) -> None:
                if task is self.task:
                    self.start = len(received)

            def after_task_step(self, task: trio.lowlevel.Task) -> None:
                if task is self.task:
                    per_step.append(len(received) - self.start)

        async def drain() -> None:
            steps = Steps(trio.lowlevel.current_task())
            trio.lowlevel.add_instrument(steps)
            try:
                for _ in range(count):
                    received.append(await server.receive())  # nothing else awaited
            finally:
                trio.lowlevel.remove_instrument(steps)

        await drain()
        assert received == [str(i) for i in range(count)]
        # It yields every RECEIVES_PER_YIELD + 1 messages, not after all `count`.
        assert max(per_step) == RECEIVES_PER_YIELD + 1
        assert len(per_step) >= count // (RECEIVES_PER_YIELD + 1) - 1


async def test_receive_while_the_reader_is_blocked_on_a_full_queue() -> None:
    cfg = WebSocketConfig(ping_interval=None, max_queue=2)
    async with ws_pair(server_config=cfg) as (client, server):
        for i in range(10):
            await client.send(str(i))
        await wait_for(lambda: server.statistics().reader_blocked)
        assert [await server.receive() for _ in range(10)] == [str(i) for i in range(10)]
        assert server.statistics().messages_queued == server.statistics().bytes_queued == 0


# -- reader over plain TCP -------------------------------------------------------------


def counting_app(stats: list[object]) -> App:
    app = App()

    @app.websocket("/count")
    async def count(ws: WebSocket) -> None:
        try:
            async for message in ws:
                await ws.send(message)
        except ConnectionClosedError as exc:
            stats.append(exc.__cause__)
            raise
        finally:
            stats.append(ws.statistics().bytes_received)

    return app


async def test_tcp_reader_counts_every_byte(transport: str) -> None:
    stats: list[object] = []
    async with serving(counting_app(stats), transport) as h:
        async with h.connect("/count") as ws:
            for size in (0, 1, 125, 126, 65_535, 65_536, 200_000):
                await ws.send(b"x" * size)
                assert await ws.receive() == b"x" * size
            sent = ws.statistics().bytes_sent
        await wait_for(lambda: bool(stats))
    assert stats == [sent + 8]  # + our Close: 2-byte header, 4-byte mask, 2-byte code


@pytest.mark.parametrize("how", ["fin", "rst"])
async def test_tcp_reader_after_a_short_read_sees_eof_and_reset(how: str) -> None:
    stats: list[object] = []
    async with serving(counting_app(stats), "tcp") as h:
        stream = await h.dial()
        head, raw = await raw_upgrade(stream, upgrade_request("/count"))
        assert head.startswith(b"HTTP/1.1 101 ")
        # One masked text frame (zero mask key): the server reads it, echoes it,
        # and its reader now waits for readability (the fast path).
        await stream.send_all(b"\x81\x82\x00\x00\x00\x00hi")
        assert await raw.next() == (0x1, b"hi")
        if how == "rst":
            assert isinstance(stream, trio.SocketStream)
            stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await stream.aclose()
        await wait_for(lambda: len(stats) == 2)
    cause, received = stats
    assert received == 8
    if how == "rst":
        assert isinstance(cause, trio.BrokenResourceError)
        assert isinstance(cause.__cause__, ConnectionResetError)
    else:
        assert cause is None  # a plain EOF: 1006 with no exception behind it


# -- tasks and shutdown ----------------------------------------------------------------


@pytest.mark.parametrize("ping_interval", [None, 20.0])
async def test_an_idle_connection_runs_one_task(ping_interval: float | None) -> None:
    cfg = WebSocketConfig(ping_interval=ping_interval)
    async with ws_pair(client_config=cfg, server_config=cfg):
        await trio.testing.wait_all_tasks_blocked()
        assert ws_task_names() == ["_run", "_run"]  # the keepalive is the watcher's timer


async def test_the_flusher_task_runs_only_while_control_bytes_are_pending() -> None:
    async with ws_pair("lockstep") as (client, _server):
        flushers: list[list[str]] = []

        async def watch_tasks() -> None:
            for _ in range(200):
                flushers.append([n for n in ws_task_names() if n == "_flusher"])
                await trio.sleep(0)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch_tasks)
            with trio.fail_after(5):
                assert await client.ping(b"x") >= 0  # the server's Pong goes out through a flusher
        assert ["_flusher"] in flushers
        await trio.testing.wait_all_tasks_blocked()
        assert ws_task_names() == ["_run", "_run"]


async def test_server_connection_tasks_and_shutdown_1001(transport: str) -> None:
    closed: list[tuple[int | None, int | None]] = []
    app = App()

    @app.websocket("/hold")
    async def hold(ws: WebSocket) -> None:
        try:
            await ws.receive()
        except ConnectionClosedOK as exc:
            closed.append((exc.code, exc.sent_code))
            raise

    async with serving(app, transport) as h, h.connect("/hold", ping_interval=None) as ws:
        await trio.testing.wait_all_tasks_blocked()
        # Memory streams: one _run each; no shutdown watcher, no keepalive task.  Plain TCP:
        # none at all while the handler's receive() reads (the run's timer service watches).
        assert ws_task_names() == ([] if transport == "tcp" else ["_run", "_run"])
        with trio.fail_after(10):
            await h.server.aclose()
        with pytest.raises(ConnectionClosedOK) as info:
            await ws.receive()
        assert (info.value.code, info.value.reason) == (1001, "server shutting down")
    assert closed == [(1001, 1001)]


async def test_keepalive_pings_at_the_interval_when_the_timeout_is_longer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cfg = WebSocketConfig(ping_interval=1.0, ping_timeout=30.0)
    async with ws_pair(client_config=cfg) as (client, server):
        await trio.sleep(10.5)
        # One Ping per second (each answered at once), not one per ping_timeout.
        pings = server.statistics().bytes_received // 10  # a client Ping: 2 + 4 mask + 4 payload
        assert 9 <= pings <= 10
        assert client.state is server.state
        await client.send("ok")
        assert await server.receive() == "ok"
