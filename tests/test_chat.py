"""The broadcast room (trio_ws.chat): fan-out, membership, and the slow-member policy.

Servers run on 127.0.0.1:0 over real TCP: a member that does not read must
fill real socket buffers before the room sees it as slow.
"""

from __future__ import annotations

import base64
import os
import socket
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
import trio

import trio_ws
from trio_ws.chat import DROP_CODE, DROP_REASON, Broadcast, ChatMember, ChatRoom
from trio_ws.websocket import Message

DEADLINE = 10.0


@asynccontextmanager
async def chat_server(room: ChatRoom, close_timeout: float = 10.0) -> AsyncIterator[str]:
    """Serve ``room`` at /chat; yields the ws:// URL."""
    app = trio_ws.App()
    app.websocket("/chat", close_timeout=close_timeout)(room.serve)
    async with trio.open_nursery() as nursery:
        server = await nursery.start(trio_ws.serve, app, "127.0.0.1", 0)
        try:
            yield f"ws://127.0.0.1:{server.port}/chat"
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(DEADLINE):
                await server.aclose()
            nursery.cancel_scope.cancel()


async def wait_until(predicate: Callable[[], bool]) -> None:
    while not predicate():
        await trio.sleep(0.005)


async def test_every_member_gets_every_message_in_order() -> None:
    room = ChatRoom()
    with trio.fail_after(DEADLINE):
        async with (
            chat_server(room) as url,
            trio_ws.connect(url) as a,
            trio_ws.connect(url) as b,
            trio_ws.connect(url) as c,
        ):
            await wait_until(lambda: room.statistics().members == 3)
            # Messages on different connections have no order between them: b sends
            # once the room has published a's message (a's own receipt).
            await a.send("from a")
            assert await a.receive() == "from a"
            await b.send(b"\x00binary from b")
            for ws in (a, b, c):  # the sender too: its own message is its receipt
                if ws is not a:
                    assert await ws.receive() == "from a"
                reply = await ws.receive()
                assert reply == b"\x00binary from b"
                assert isinstance(reply, bytes)
            await room.publish("from the server")
            assert [await ws.receive() for ws in (a, b, c)] == ["from the server"] * 3
    stats = room.statistics()
    assert (stats.published, stats.dropped, stats.max_queue) == (3, 0, room.max_queue)


async def test_leaving_removes_the_member() -> None:
    room = ChatRoom()
    with trio.fail_after(DEADLINE):
        async with chat_server(room) as url, trio_ws.connect(url) as stays:
            async with trio_ws.connect(url):
                await wait_until(lambda: room.statistics().members == 2)
            await wait_until(lambda: room.statistics().members == 1)
            [member] = room.members
            await stays.send("still here")
            assert await stays.receive() == "still here"
            await wait_until(lambda: member.sent == 1)
            assert member.queued == 0
            assert not member.dropped
            assert "ChatMember" in repr(member)
    await wait_until(lambda: room.statistics().members == 0)
    assert "members=0" in repr(room)


async def test_deliver_counts_and_checks_types() -> None:
    room = ChatRoom(max_queue=2)
    assert room.deliver("nobody listens") == 0
    with pytest.raises(TypeError):
        room.deliver(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_queue"):
        ChatRoom(max_queue=0)


async def test_join_raises_the_blocks_own_exception() -> None:
    """No ExceptionGroup from the membership's nursery."""
    room = ChatRoom()
    seen: list[BaseException] = []

    async def handler(ws: trio_ws.WebSocket) -> None:
        try:
            async with room.join(ws):
                raise KeyError("boom")
        except KeyError as exc:
            seen.append(exc)

    app = trio_ws.App()
    app.websocket("/chat")(handler)
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(trio_ws.serve, app, "127.0.0.1", 0)
            async with trio_ws.connect(f"ws://127.0.0.1:{server.port}/chat") as ws:
                with pytest.raises(trio_ws.ConnectionClosedOK):
                    await ws.receive()
            await server.aclose()
    assert [type(exc) for exc in seen] == [KeyError]
    assert room.statistics().members == 0


def test_chat_room_is_a_broadcast_backend() -> None:
    backend: Broadcast = ChatRoom()  # the seam: mypy checks the structural match
    assert backend is not None


# -- the slow-member policy --------------------------------------------------------


async def small_buffer_stream(url: str) -> trio.SocketStream:
    """A TCP connection to the server of ``url`` with a tiny receive buffer.

    Loopback buffers can grow to tens of MiB (``tcp_rmem``); pinning SO_RCVBUF
    before connecting keeps the bytes in flight to a non-reader small.
    """
    port = int(url.split(":")[2].split("/")[0])
    sock = trio.socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    await sock.connect(("127.0.0.1", port))
    return trio.SocketStream(sock)


async def raw_member(url: str) -> trio.SocketStream:
    """A member that completes the handshake and then never reads."""
    stream = await small_buffer_stream(url)
    key = base64.b64encode(os.urandom(16)).decode()
    await stream.send_all(
        (
            "GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += await stream.receive_some(1)  # byte by byte: leave the frames unread
    assert head.startswith(b"HTTP/1.1 101 "), head
    return stream


MESSAGES = 300
PAYLOAD = 64 * 1024


async def publish_and_time(room: ChatRoom, fast: trio_ws.WebSocket) -> list[float]:
    """Publish MESSAGES large messages at a steady pace; the fast member's latency of each."""
    sent_at: dict[int, float] = {}
    latencies: list[float] = []

    async def receive_all() -> None:
        for expected in range(MESSAGES):
            message = await fast.receive()
            assert isinstance(message, bytes)
            (index,) = struct.unpack_from("!I", message)
            assert index == expected  # every message, in order
            latencies.append(trio.current_time() - sent_at[index])

    async with trio.open_nursery() as nursery:
        nursery.start_soon(receive_all)
        for index in range(MESSAGES):
            sent_at[index] = trio.current_time()
            with trio.fail_after(1):  # publish never waits for a member
                await room.publish(struct.pack("!I", index) + bytes(PAYLOAD))
            await trio.sleep(0.001)
    return latencies


async def test_a_member_that_never_reads_is_dropped_and_never_slows_the_room() -> None:
    room = ChatRoom(max_queue=8)
    with trio.fail_after(30):
        async with chat_server(room, close_timeout=1.0) as url:
            slow_stream = await raw_member(url)
            try:
                await wait_until(lambda: room.statistics().members == 1)
                [slow] = room.members
                async with trio_ws.connect(url) as fast:
                    await wait_until(lambda: room.statistics().members == 2)
                    latencies = await publish_and_time(room, fast)
                    assert slow.dropped
                    assert slow.websocket.sent_close_code == DROP_CODE
                    assert slow.websocket.sent_close_reason == DROP_REASON
                    assert room.statistics().dropped == 1
                    assert room.statistics().members == 1  # the fast one stays
                    # The drop finishes on its own, within the endpoint's close_timeout.
                    await wait_until(lambda: slow.websocket.closed)
            finally:
                await slow_stream.aclose()
    assert len(latencies) == MESSAGES
    assert max(latencies) < 1.0, f"the fast member waited {max(latencies):.3f}s"


async def test_a_slow_reader_sees_1013_after_the_messages_it_got() -> None:
    room = ChatRoom(max_queue=4)
    with trio.fail_after(30):
        async with (
            chat_server(room, close_timeout=5.0) as url,
            trio_ws.connect(
                url, max_queue=1, compression=False, stream=await small_buffer_stream(url)
            ) as slow,
            trio_ws.connect(url) as fast,
        ):
            # max_queue=1: the client stops reading the socket once one message waits.
            # No compression: the zero-filled messages must fill the TCP buffers as
            # 64 KiB each, not as the ~90 bytes deflate makes of them.
            await wait_until(lambda: room.statistics().members == 2)
            slow_member: ChatMember = room.members[0]
            await publish_and_time(room, fast)
            assert slow_member.dropped
            # Now the slow client reads: what was sent before the drop, then Close 1013.
            received: list[Message] = []

            async def drain() -> None:
                while True:
                    received.append(await slow.receive())

            with pytest.raises(trio_ws.ConnectionClosedError) as info:
                await drain()
            assert info.value.code == DROP_CODE
            assert info.value.reason == DROP_REASON
            assert 0 < len(received) < MESSAGES
            indexes = [struct.unpack_from("!I", m)[0] for m in received if isinstance(m, bytes)]
            assert indexes == list(range(len(received)))  # a prefix, no holes
