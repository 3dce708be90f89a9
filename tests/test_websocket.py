"""The trio WebSocket object itself, over in-memory streams (no HTTP).

Symmetric: each behaviour is checked with the client and with the server as the
actor. Raw peers (hand-built frames from ``ws_support``) play the misbehaving
side. Timers run on the autojump clock where a test waits for a deadline.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing

from trio_ws import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK, LocalProtocolError
from trio_ws.exceptions import RemoteProtocolError
from trio_ws.sansio.connection import Role, State
from trio_ws.websocket import Fragment, WebSocket, WebSocketConfig

from .ws_support import RawFrames, client_frame, close_payload, frame, make_pair, ws_pair

ROLES = ["client", "server"]
NO_PING = WebSocketConfig(ping_interval=None)


def solo(role: str, transport: str = "memory", **config: object) -> tuple[WebSocket, RawFrames]:
    """One WebSocket (``role``) whose peer is a raw stream driven by the test."""
    ours, theirs = make_pair(transport)
    cfg = WebSocketConfig(**{"ping_interval": None, **config})  # type: ignore[arg-type]
    r = Role.CLIENT if role == "client" else Role.SERVER
    ws = WebSocket(
        ours, cfg.make_protocol(r, (lambda: os.urandom(4)) if role == "client" else None), config=cfg
    )
    return ws, RawFrames(theirs)


def peer_frame(role: str, opcode: int, payload: bytes = b"", *, fin: bool = True) -> bytes:
    """A frame as the raw peer of a ``role`` WebSocket must send it (masked towards a server)."""
    return client_frame(opcode, payload, fin=fin) if role == "server" else frame(opcode, payload, fin=fin)


async def read_frame(raw: RawFrames) -> tuple[int, bytes]:
    """Next frame from our WebSocket, unmasking client frames."""
    await raw._need(2)
    masked = raw.buf[1] & 0x80
    if not masked:
        return await raw.next()
    raw.buf[1] &= 0x7F
    n = raw.buf[1]
    start = 2 if n < 126 else (4 if n == 126 else 10)
    await raw._need(start + 4)
    mask = bytes(raw.buf[start : start + 4])
    del raw.buf[start : start + 4]
    opcode, payload = await raw.next()
    return opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


@pytest.fixture(params=["memory", "lockstep"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


MESSAGES: list[str | bytes] = ["hello", b"bytes", "", b"", "é" * 1000, bytes(range(256)) * 1200]


async def test_messages_both_directions(transport: str) -> None:
    async with ws_pair(transport) as (client, server):
        for sender, receiver in ((client, server), (server, client)):
            for message in MESSAGES:
                await sender.send(message)
                got = await receiver.receive()
                assert got == message
                assert type(got) is type(message)
        await client.send(bytearray(b"ba"))  # type: ignore[arg-type]
        assert await server.receive() == b"ba"


@pytest.mark.parametrize("closer", ROLES)
@pytest.mark.parametrize(
    ("code", "reason", "clean"), [(1000, "bye", True), (1001, "", True), (4000, "app", False)]
)
async def test_close_handshake_visible_on_both_sides(
    closer: str, code: int, reason: str, clean: bool
) -> None:
    async with ws_pair() as (client, server):
        a, b = (client, server) if closer == "client" else (server, client)
        expected = ConnectionClosedOK if clean else ConnectionClosedError
        with trio.fail_after(5):
            await a.aclose(code, reason)
            with pytest.raises(expected) as info:
                await b.receive()
        assert a.closed
        assert a.state is State.CLOSED
        assert (a.sent_close_code, a.sent_close_reason) == (code, reason)
        assert (a.close_code, a.close_reason) == (code, reason)  # the echo (§5.5.1)
        assert (b.close_code, b.close_reason, b.sent_close_code) == (code, reason, code)
        assert (info.value.code, info.value.reason, info.value.sent_code) == (code, reason, code)
        with pytest.raises(expected):
            await a.receive()
        with pytest.raises(expected):
            await a.send("late")
        await a.aclose()  # idempotent
        with trio.fail_after(5):
            while not b.closed:
                await trio.sleep(0.01)


async def test_queued_messages_survive_the_peers_close() -> None:
    async with ws_pair() as (client, server):
        for i in range(3):
            await client.send(str(i))
        await client.aclose()
        assert [await server.receive() for _ in range(3)] == ["0", "1", "2"]
        with pytest.raises(ConnectionClosedOK):
            await server.receive()


async def test_async_iteration_and_serve_messages() -> None:
    async with ws_pair() as (client, server):
        for i in range(3):
            await client.send(f"m{i}")
        await client.aclose()
        assert [m async for m in server] == ["m0", "m1", "m2"]
    async with ws_pair() as (client, server):
        got: list[str | bytes] = []

        async def collect(message: str | bytes) -> None:
            got.append(message)

        await client.send(b"x")
        await client.aclose(1000)
        await server.serve_messages(collect)
        assert got == [b"x"]


async def test_iteration_raises_on_an_error_close() -> None:
    async with ws_pair() as (client, server):
        await client.aclose(4001)
        with pytest.raises(ConnectionClosedError):
            async for _ in server:
                pass  # pragma: no cover


@pytest.mark.parametrize("role", ROLES)
async def test_ping_round_trip(role: str) -> None:
    async with ws_pair() as (client, server):
        ws = client if role == "client" else server
        with trio.fail_after(5):
            assert await ws.ping(b"abc") >= 0
            assert await ws.ping() >= 0
        assert ws.statistics().pings_in_flight == 0


@pytest.mark.parametrize("role", ROLES)
async def test_latest_pong_answers_earlier_pings(role: str) -> None:
    ws, raw = solo(role)
    async with trio.open_nursery() as nursery:
        await nursery.start(ws._run)
        done: list[bytes] = []

        async def ping(payload: bytes) -> None:
            await ws.ping(payload)
            done.append(payload)

        nursery.start_soon(ping, b"1")
        assert await read_frame(raw) == (9, b"1")
        nursery.start_soon(ping, b"2")
        assert await read_frame(raw) == (9, b"2")
        await raw.stream.send_all(peer_frame(role, 0xA, b"unsolicited") + peer_frame(role, 0xA, b"2"))
        with trio.fail_after(5):
            while len(done) < 2:
                await trio.sleep(0.01)
        assert sorted(done) == [b"1", b"2"]
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("role", ROLES)
async def test_auto_pong_and_peer_close(role: str) -> None:
    ws, raw = solo(role)
    async with trio.open_nursery() as nursery:
        await nursery.start(ws._run)
        await raw.stream.send_all(peer_frame(role, 0x9, b"p1") + peer_frame(role, 0x9, b"p2"))
        assert await read_frame(raw) == (0xA, b"p2")  # only the latest Ping is answered (§5.5.3)
        await raw.stream.send_all(peer_frame(role, 0x8, close_payload(1001, "away")))
        assert await read_frame(raw) == (0x8, close_payload(1001, "away"))
        with pytest.raises(ConnectionClosedOK) as info:
            await ws.receive()
        assert (info.value.code, info.value.reason) == (1001, "away")
        if role == "client":
            await raw.stream.aclose()  # the server closes TCP first (§7.1.1)
        else:
            assert await raw.at_eof()
        with trio.fail_after(5):
            await ws.aclose()
        assert ws.closed


@pytest.mark.parametrize("role", ROLES)
async def test_close_without_code_is_1005(role: str) -> None:
    ws, raw = solo(role)
    async with trio.open_nursery() as nursery:
        await nursery.start(ws._run)
        await raw.stream.send_all(peer_frame(role, 0x8))
        with pytest.raises(ConnectionClosedOK) as info:
            await ws.receive()
        assert info.value.code is None
        assert ws.close_code == 1005
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("transport", ["memory", "lockstep"])
async def test_close_deadline_when_the_peer_never_answers(
    role: str, transport: str, autojump_clock: trio.testing.MockClock
) -> None:
    ws, _raw = solo(role, transport, close_timeout=3.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(ws._run)
        started = trio.current_time()
        await ws.aclose()
        assert 2.9 <= trio.current_time() - started <= 3.5
        assert ws.closed
        assert ws.close_code == 1006
        with pytest.raises(ConnectionClosedError):
            await ws.receive()


@pytest.mark.parametrize("role", ROLES)
async def test_abrupt_drop_is_1006(role: str) -> None:
    ws, raw = solo(role)
    async with trio.open_nursery() as nursery:
        await nursery.start(ws._run)
        await raw.stream.send_all(peer_frame(role, 0x1, b"last words"))
        await raw.stream.aclose()
        assert await ws.receive() == "last words"
        with pytest.raises(ConnectionClosedError) as info:
            await ws.receive()
        assert info.value.code is None
        assert ws.close_code == 1006
        assert "1006" in str(info.value)
        with pytest.raises(ConnectionClosedError):
            await ws.send("anyone?")
        with pytest.raises(ConnectionClosedError):
            await ws.ping()


@pytest.mark.parametrize("role", ROLES)
async def test_protocol_violation_fails_with_cause(role: str) -> None:
    ws, raw = solo(role)
    async with trio.open_nursery() as nursery:
        await nursery.start(ws._run)
        # The wrong masking for the direction: §5.1 says fail the connection (1002).
        bad = frame(0x1, b"x", mask=b"abcd") if role == "client" else frame(0x1, b"x")
        await raw.stream.send_all(bad)
        assert (await read_frame(raw))[0] == 0x8
        with pytest.raises(ConnectionClosedError) as info:
            await ws.receive()
        assert isinstance(info.value.__cause__, RemoteProtocolError)
        assert ws.sent_close_code == 1002


@pytest.mark.parametrize("role", ROLES)
async def test_message_too_big_is_1009(role: str) -> None:
    ws, raw = solo(role, max_message_size=10)
    async with trio.open_nursery() as nursery:
        await nursery.start(ws._run)
        await raw.stream.send_all(peer_frame(role, 0x2, bytes(11)))
        opcode, payload = await read_frame(raw)
        assert (opcode, payload[:2]) == (0x8, b"\x03\xf1")
        with pytest.raises(ConnectionClosedError):
            await ws.receive()


@pytest.mark.parametrize("role", ROLES)
async def test_keepalive_timeout_closes_1011(role: str, autojump_clock: trio.testing.MockClock) -> None:
    ws, raw = solo(role, ping_interval=5.0, ping_timeout=2.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(ws._run)
        started = trio.current_time()
        assert (await read_frame(raw))[0] == 0x9  # a keepalive Ping; we never answer
        opcode, payload = await read_frame(raw)
        assert (opcode, payload[:2]) == (0x8, b"\x03\xf3")  # 1011
        assert 6.9 <= trio.current_time() - started <= 7.5
        with pytest.raises(ConnectionClosedError) as info:
            await ws.receive()
        assert isinstance(info.value.__cause__, TimeoutError)
        assert info.value.sent_code == 1011


async def test_keepalive_keeps_a_healthy_connection(autojump_clock: trio.testing.MockClock) -> None:
    cfg = WebSocketConfig(ping_interval=1.0, ping_timeout=1.0)
    async with ws_pair(client_config=cfg, server_config=cfg) as (client, server):
        await trio.sleep(30)
        await client.send("still here")
        assert await server.receive() == "still here"
        assert client.state is State.OPEN
        assert server.state is State.OPEN


async def test_keepalive_without_timeout(autojump_clock: trio.testing.MockClock) -> None:
    ws, raw = solo("server", ping_interval=1.0, ping_timeout=None)
    async with trio.open_nursery() as nursery:
        await nursery.start(ws._run)
        assert (await read_frame(raw))[0] == 0x9
        await trio.sleep(100)
        assert ws.state is State.OPEN
        await raw.stream.aclose()
        with pytest.raises(ConnectionClosedError):
            await ws.receive()


@pytest.mark.parametrize("role", ROLES)
async def test_send_cancelled_mid_frame_breaks_the_connection(role: str) -> None:
    ws, _raw = solo(role, "lockstep")
    async with trio.open_nursery() as nursery:
        await nursery.start(ws._run)
        with trio.move_on_after(0.2) as scope:
            await ws.send(bytes(100_000))  # the raw peer never reads: blocks mid-frame
        assert scope.cancelled_caught
        with pytest.raises(ConnectionClosedError):
            await ws.send("after")
        with trio.fail_after(5):
            await ws.aclose()
        assert ws.closed


async def test_aclose_cancelled_aborts() -> None:
    ws, _raw = solo("server", "lockstep")
    async with trio.open_nursery() as nursery:
        await nursery.start(ws._run)
        with trio.move_on_after(0.1):
            await ws.aclose()
        with trio.fail_after(5):
            await ws._closed.wait()


async def test_aclose_before_run_closes_the_stream() -> None:
    ws, raw = solo("client")
    await ws.aclose()
    assert ws.closed
    assert await raw.at_eof()


async def test_concurrent_receive_is_busy() -> None:
    async with ws_pair() as (client, server), trio.open_nursery() as nursery:
        nursery.start_soon(server.receive)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(trio.BusyResourceError):
            await server.receive()
        await client.send("unblock")


async def test_send_rejects_other_types() -> None:
    async with ws_pair() as (client, _):
        with pytest.raises(TypeError):
            await client.send(42)  # type: ignore[arg-type]
        with pytest.raises(LocalProtocolError):
            await client.ping(bytes(126))  # §5.5: control payloads ≤ 125 bytes
        with pytest.raises(LocalProtocolError):
            await client.aclose(1005)  # may not be sent (§7.4.2)


@pytest.mark.parametrize("sender_role", ROLES)
async def test_send_stream_and_receive_fragment(sender_role: str) -> None:
    frag = WebSocketConfig(ping_interval=None, fragments=True)
    cfgs = {"client_config": frag} if sender_role == "server" else {"server_config": frag}
    async with ws_pair(**cfgs) as (client, server):  # type: ignore[arg-type]
        a, b = (client, server) if sender_role == "client" else (server, client)
        chunks = [bytes([i]) * 1000 for i in range(5)]

        async def send() -> None:
            async with a.send_stream(binary=True) as out:
                for chunk in chunks:
                    await out.send(chunk)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(send)
            pieces: list[Fragment] = []
            while not pieces or not pieces[-1].final:
                pieces.append(await b.receive_fragment())
        assert b"".join(p.data for p in pieces) == b"".join(chunks)  # type: ignore[misc]
        assert all(p.binary for p in pieces)
        offsets = [p.offset for p in pieces]
        assert offsets == sorted(offsets)
        assert offsets[0] == 0
        # receive() joins the fragments of a message.
        await a.send_fragments(["tex", "t é", ""])
        assert await b.receive() == "text é"
        await a.send_fragments([])
        assert await b.receive() == b""


async def test_fragment_meta_without_fragment_mode() -> None:
    async with ws_pair() as (client, server):
        await client.send_fragments(_agen([b"ab", b"cd"]))
        assert await server.receive_fragment() == Fragment(b"abcd", True, 0, 0, True)
        await client.send("t")
        assert await server.receive_fragment() == Fragment("t", False, 0, 0, True)


async def _agen(items: list[bytes]) -> AsyncIterator[bytes]:
    for item in items:
        yield item


async def test_message_sender_misuse() -> None:
    async with ws_pair() as (client, server):
        async with client.send_stream(binary=False) as out:
            with pytest.raises(TypeError):
                await out.send(b"bytes in text")
            await out.send("end", final=True)
            with pytest.raises(LocalProtocolError):
                await out.send("more")
        assert await server.receive() == "end"
        async with client.send_stream() as out:
            with pytest.raises(TypeError):
                await out.send("text in binary")
        assert await server.receive() == b""


async def test_send_stream_aborted_mid_message_fails_1011() -> None:
    async with ws_pair() as (client, server):
        with pytest.raises(RuntimeError):  # noqa: PT012
            async with client.send_stream() as out:
                await out.send(b"half")
                raise RuntimeError("producer failed")
        with pytest.raises(ConnectionClosedError) as info:
            await server.receive()
        assert info.value.code == 1011


async def test_statistics() -> None:
    async with ws_pair() as (client, server):
        await client.send(b"12345")
        await trio.testing.wait_all_tasks_blocked()
        stats = server.statistics()
        assert (stats.messages_queued, stats.bytes_queued, stats.max_queue) == (1, 5, 16)
        assert stats.state is State.OPEN
        assert not stats.reader_blocked
        assert stats.bytes_received > 5
        assert client.statistics().bytes_sent > 5
        await server.receive()
        assert server.statistics().bytes_queued == 0
        assert "server open" in repr(server)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="max_queue"):
        WebSocketConfig(max_queue=0)
    with pytest.raises(ValueError, match="close_timeout"):
        WebSocketConfig(close_timeout=0)


async def test_closed_error_is_a_connection_closed() -> None:
    async with ws_pair() as (client, server):
        await server.aclose()
        with pytest.raises(ConnectionClosed):
            await client.receive()


@pytest.mark.parametrize("role", ROLES)
async def test_reader_never_waits_for_the_send_lock(role: str) -> None:
    """A writer stuck on the socket must not stop the reader: replies are only scheduled."""
    ws, raw = solo(role)
    async with trio.open_nursery() as nursery:
        await nursery.start(ws._run)
        async with ws._frame_lock:  # as if a large send_all were blocked on the TCP window
            await raw.stream.send_all(peer_frame(role, 0x9, b"ping") + peer_frame(role, 0x1, b"data"))
            assert await ws.receive() == "data"  # delivered while the Pong waits
            assert ws.statistics().control_bytes_pending > 0
        assert await read_frame(raw) == (0xA, b"ping")  # flushed once the lock is free
        await raw.stream.send_all(peer_frame(role, 0x8, close_payload(1000)))
        async with ws._frame_lock:
            with pytest.raises(ConnectionClosedOK):
                await ws.receive()  # the Close is processed while its echo waits
        assert await read_frame(raw) == (0x8, close_payload(1000))
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("role", ROLES)
async def test_keepalive_unsticks_a_send_to_a_peer_that_never_reads(
    role: str, autojump_clock: trio.testing.MockClock
) -> None:
    ws, _raw = solo(role, "lockstep", ping_interval=5.0, ping_timeout=5.0, close_timeout=5.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(ws._run)
        started = trio.current_time()
        with pytest.raises(ConnectionClosedError) as info:
            await ws.send(bytes(100_000))  # blocks: the peer reads nothing, ever
        assert trio.current_time() - started <= 16  # interval + timeout + close deadline
        assert ws.sent_close_code == 1011
        assert info.value.__cause__ is not None
        await ws._closed.wait()
