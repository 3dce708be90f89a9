"""Helpers for the WebSocket tests: servers over TCP or memory, raw peers, raw frames.

The raw helpers are the independent oracle: they build frames and upgrade
requests byte by byte (``struct``), not with trio_ws's own code.
"""

from __future__ import annotations

import base64
import functools
import os
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio
import trio.testing

import trio_ws
from trio_ws.config import ServerConfig
from trio_ws.request import Handler
from trio_ws.sansio.connection import Role
from trio_ws.websocket import WebSocket, WebSocketConfig

#: Every network wait in these tests is bounded by this (seconds).
DEADLINE = 10.0
TRANSPORTS = ["tcp", "memory"]
StreamPair = tuple[trio.abc.Stream, trio.abc.Stream]


class PairListener(trio.abc.Listener[trio.abc.Stream]):
    """A listener handing the server one end of an in-memory stream pair per ``connect()``."""

    def __init__(self, make_pair: Callable[[], StreamPair]) -> None:
        self._send, self._receive = trio.open_memory_channel[trio.abc.Stream](0)
        self._make_pair = make_pair

    async def accept(self) -> trio.abc.Stream:
        return await self._receive.receive()

    async def connect(self) -> trio.abc.Stream:
        client, server = self._make_pair()
        await self._send.send(server)
        return client

    async def aclose(self) -> None:
        self._receive.close()
        await trio.lowlevel.checkpoint()


@dataclass
class Harness:
    """A running server plus a way to reach it over the chosen transport."""

    server: trio_ws.Server
    transport: str
    listener: PairListener | None

    @property
    def port(self) -> int:
        return self.server.port

    def url(self, path: str) -> str:
        if self.transport == "tcp":
            return f"ws://127.0.0.1:{self.port}{path}"
        return f"ws://memory.test{path}"

    async def dial(self) -> trio.abc.Stream:
        if self.listener is not None:
            return await self.listener.connect()
        return await trio.open_tcp_stream("127.0.0.1", self.port)

    @asynccontextmanager
    async def connect(self, path: str, **kwargs: object) -> AsyncIterator[WebSocket]:
        stream = await self.dial() if self.listener is not None else None
        async with trio_ws.connect(self.url(path), stream=stream, **kwargs) as ws:  # type: ignore[arg-type]
            yield ws


@asynccontextmanager
async def serving(
    app: Handler, transport: str = "tcp", *, config: ServerConfig | None = None
) -> AsyncIterator[Harness]:
    """Serve ``app`` for the block: on 127.0.0.1 port 0, or over memory / lockstep streams."""
    listener: PairListener | None = None
    listeners: list[trio.abc.Listener[trio.abc.Stream]] | None = None
    if transport == "memory":
        listener = PairListener(trio.testing.memory_stream_pair)
    elif transport == "lockstep":
        listener = PairListener(trio.testing.lockstep_stream_pair)
    if listener is not None:
        listeners = [listener]
    async with trio.open_nursery() as nursery:
        start = functools.partial(trio_ws.serve, app, "127.0.0.1", 0, config=config, listeners=listeners)
        server: trio_ws.Server = await nursery.start(start)
        try:
            yield Harness(server, transport, listener)
        finally:
            nursery.cancel_scope.cancel()


def make_pair(transport: str) -> StreamPair:
    if transport == "lockstep":
        return trio.testing.lockstep_stream_pair()
    return trio.testing.memory_stream_pair()


@asynccontextmanager
async def ws_pair(
    transport: str = "memory",
    *,
    client_config: WebSocketConfig | None = None,
    server_config: WebSocketConfig | None = None,
) -> AsyncIterator[tuple[WebSocket, WebSocket]]:
    """A client and a server :class:`WebSocket` joined by an in-memory stream (no handshake)."""
    client_stream, server_stream = make_pair(transport)
    ccfg = client_config or WebSocketConfig(ping_interval=None)
    scfg = server_config or WebSocketConfig(ping_interval=None)
    client = WebSocket(client_stream, ccfg.make_protocol(Role.CLIENT, lambda: os.urandom(4)), config=ccfg)
    server = WebSocket(server_stream, scfg.make_protocol(Role.SERVER), config=scfg)
    async with trio.open_nursery() as nursery:
        await nursery.start(client._run)
        await nursery.start(server._run)
        yield client, server
        nursery.cancel_scope.cancel()


# -- raw frames ---------------------------------------------------------------------------


def frame(opcode: int, payload: bytes = b"", *, fin: bool = True, mask: bytes | None = None) -> bytes:
    """One RFC 6455 frame, built by hand."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    mask_bit = 0x80 if mask is not None else 0
    if n < 126:
        head += bytes([mask_bit | n])
    elif n < 65536:
        head += bytes([mask_bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", n)
    if mask is None:
        return head + payload
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


def client_frame(opcode: int, payload: bytes = b"", *, fin: bool = True) -> bytes:
    return frame(opcode, payload, fin=fin, mask=os.urandom(4))


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()


class RawFrames:
    """Reads unmasked frames from a stream (what a server sends)."""

    def __init__(self, stream: trio.abc.Stream, buffered: bytes = b"") -> None:
        self.stream = stream
        self.buf = bytearray(buffered)

    async def _need(self, n: int) -> None:
        while len(self.buf) < n:
            data = await self.stream.receive_some(65536)
            if not data:
                raise EOFError
            self.buf += data

    async def next(self) -> tuple[int, bytes]:
        """``(opcode, payload)`` of the next frame (fragments are not joined)."""
        with trio.fail_after(DEADLINE):
            await self._need(2)
            n = self.buf[1] & 0x7F
            start = 2
            if n == 126:
                await self._need(4)
                (n,) = struct.unpack("!H", self.buf[2:4])
                start = 4
            elif n == 127:
                await self._need(10)
                (n,) = struct.unpack("!Q", self.buf[2:10])
                start = 10
            await self._need(start + n)
            opcode = self.buf[0] & 0x0F
            payload = bytes(self.buf[start : start + n])
            del self.buf[: start + n]
            return opcode, payload

    async def at_eof(self) -> bool:
        with trio.fail_after(DEADLINE):
            try:
                return await self.stream.receive_some(65536) == b""
            except trio.BrokenResourceError:
                return True


def upgrade_request(
    path: str = "/", *, extra: str = "", key: str | None = None, version: str = "13"
) -> bytes:
    key = key or base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: {version}\r\n{extra}\r\n"
    ).encode()


async def raw_upgrade(stream: trio.abc.Stream, request: bytes) -> tuple[bytes, RawFrames]:
    """Send ``request`` (plus anything appended) and read the response head; frames follow."""
    await stream.send_all(request)
    buf = bytearray()
    with trio.fail_after(DEADLINE):
        while b"\r\n\r\n" not in buf:
            data = await stream.receive_some(65536)
            assert data, bytes(buf)
            buf += data
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    return head, RawFrames(stream, rest)


async def wait_for(predicate: Callable[[], bool], timeout: float = DEADLINE) -> None:
    """Poll ``predicate`` until true (bounded)."""
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.01)


async def run_in_thread(fn: Callable[[], object]) -> object:
    """Run blocking ``fn`` in a worker thread, abandoning it on cancellation."""
    return await trio.to_thread.run_sync(fn, abandon_on_cancel=True)
