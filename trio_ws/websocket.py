"""The trio WebSocket: ``receive()``, ``send()``, ``ping()``, ``aclose()`` and friends.

The public face of a connection; the machinery behind it (who reads the socket,
bounded message channel, scheduled control replies, send locks, keepalive,
closing deadlines) lives in :mod:`trio_ws._ws_core`, whose docstring explains
the design.  In short: ``receive()`` reads the socket itself when nothing is
queued, a watcher task reads while nobody receives (on plain TCP it exists
only then); messages wait in a channel of ``max_queue`` entries (the
backpressure point: when it is full the socket is not read), no reader ever
waits on a write, and ``aclose()`` never hangs.

Receiving: ``await ws.receive()`` (``str`` or ``bytes``), ``async for message in
ws``, ``await ws.receive_fragment()`` (libcurl-style pieces with meta),
``await ws.serve_messages(callback)``.  Sending: ``await ws.send(message)``,
``async with ws.send_stream() as out: await out.send(chunk)``,
``await ws.send_fragments(chunks)``, ``await ws.ping()``.  Closing:
``await ws.aclose(code, reason)``; afterwards ``close_code``/``close_reason``
(the peer's) and ``sent_close_code``/``sent_close_reason`` (ours).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager

import trio

from ._ws_core import RECEIVES_PER_YIELD, WRITEV_MIN_SIZE, Message, WebSocketCore, _Item, _item_size
from .exceptions import ConnectionClosedOK, LocalProtocolError
from .sansio.connection import State
from .sansio.deflate import PerMessageDeflate
from .sansio.events import Fragment
from .sansio.frames import Extension
from .ws_config import (
    DEFAULT_MAX_QUEUE,
    DEFAULT_RECEIVE_SIZE,
    WebSocketConfig,
    WebSocketOptions,
    WebSocketStatistics,
)

__all__ = [
    "DEFAULT_MAX_QUEUE",
    "DEFAULT_RECEIVE_SIZE",
    "Fragment",
    "Message",
    "MessageSender",
    "WebSocket",
    "WebSocketConfig",
    "WebSocketOptions",
    "WebSocketStatistics",
]


class WebSocket(WebSocketCore):
    """One WebSocket connection.

    Made by :func:`trio_ws.connect` or by a server endpoint, not directly.
    ``subprotocol`` is the negotiated one; ``request`` the HTTP request of the
    upgrade (server side); ``response_headers`` the 101's headers (client side).
    """

    __slots__ = ()  # every attribute lives in WebSocketCore's slots

    # ------------------------------------------------------------ inspection

    @property
    def closed(self) -> bool:
        """True once the connection is fully closed (TCP included)."""
        return self._closed.is_set()

    @property
    def state(self) -> State:
        """OPEN, CLOSING (our Close sent, waiting for the peer's) or CLOSED."""
        return State.CLOSED if self._input_done else self._protocol.state

    @property
    def close_reason(self) -> str:
        """The peer's close reason."""
        return self._protocol.close_reason_received

    @property
    def sent_close_code(self) -> int | None:
        """The close code we sent, if any (None also for a Close without code)."""
        return self._protocol.close_code_sent

    @property
    def sent_close_reason(self) -> str:
        return self._protocol.close_reason_sent

    def statistics(self) -> WebSocketStatistics:
        """Queue, buffer and traffic counters."""
        proto = self._protocol.statistics()
        return WebSocketStatistics(
            state=self.state,
            messages_queued=self._queued_items + len(self._backlog or ()),
            bytes_queued=self._queued_bytes,
            max_queue=self._config.max_queue,
            reader_blocked=bool(self._backlog),
            bytes_buffered=proto.bytes_buffered + proto.message_bytes_buffered,
            control_bytes_pending=len(self._pending_pong)
            + len(self._pending_ping)
            + len(self._pending_close),
            pings_in_flight=len(self._pings),
            bytes_received=self._bytes_received,
            bytes_sent=self._bytes_sent,
        )

    # ------------------------------------------------------------- receiving

    async def _receive_item(self) -> _Item:
        """The next item: queued, or read from the socket by this task.

        A queued item is taken after a cancellation check only
        (``MemoryReceiveChannel.receive`` would yield even when an item is
        ready); every :data:`~trio_ws._ws_core.RECEIVES_PER_YIELD`-th call
        yields, to stay a fair trio citizen.  With nothing queued, this task
        reads the socket itself, unless the watcher is reading it (module
        docstring of :mod:`trio_ws._ws_core`, "Who reads").
        """
        if self._receiving:
            raise trio.BusyResourceError("another task is already receiving on this WebSocket")
        if self._receives_unyielded < RECEIVES_PER_YIELD:
            self._receives_unyielded += 1
            await trio.lowlevel.checkpoint_if_cancelled()
        else:
            self._receives_unyielded = 0
            await trio.lowlevel.checkpoint()
        self._receiving = True
        try:
            while True:
                if self._queued_items > 0 or self._backlog or self._input_done or self._close_deadline:
                    item = self._take_nowait()
                    if item is not None:
                        return item
                if self._fd < 0 or self._reading or self._input_done:
                    return await self._wait_for_watcher()
                item = await self._rx_read()
                if item is not None:
                    return item
        except trio.EndOfChannel:
            err = self._closed_error()
            raise err from err.__cause__
        except trio.ClosedResourceError:
            await self._input_ended()  # aclose() is under way: report its outcome
            err = self._closed_error()
            raise err from err.__cause__
        finally:
            self._receiving = False
            if self._watch_at == math.inf or self._watch_at == -math.inf:
                self._after_receive()  # (only these two need it: saves a call per message)

    async def _wait_for_watcher(self) -> _Item:
        """The watcher reads the socket: wait for what it delivers."""
        self._rx_waiting = True
        try:
            item = await self._open_channel()[1].receive()
        finally:
            self._rx_waiting = False
        self._receives_unyielded = 0
        self._queued_items -= 1
        self._queued_bytes -= _item_size(item)
        return item

    async def receive(self) -> Message:
        """The next message: ``str`` for text, ``bytes`` for binary.

        Raises :class:`ConnectionClosedOK`/:class:`ConnectionClosedError` once the
        connection is closed and every message received before is consumed.  With
        ``fragments=True`` the pieces are joined (after a :meth:`receive_fragment`
        mid-message, only the rest of that message is returned).
        """
        item = await self._receive_item()
        if not isinstance(item, Fragment):
            return item
        return await self._rest_of_message(item)

    async def _rest_of_message(self, item: Fragment) -> Message:
        """The whole message of which ``item`` is a piece (it and the pieces after it)."""
        parts = [item.data]
        while not item.final:
            piece = await self._receive_item()
            assert isinstance(piece, Fragment)
            item = piece
            parts.append(item.data)
        if item.binary:
            return b"".join(parts)  # type: ignore[arg-type]
        return "".join(parts)  # type: ignore[arg-type]

    async def receive_fragment(self) -> Fragment:
        """The next piece of a message, with its meta (libcurl's ``curl_ws_recv``).

        With ``fragments=True`` pieces arrive as the payload does; otherwise each
        whole message comes as one ``final`` fragment.
        """
        item = await self._receive_item()
        if isinstance(item, Fragment):
            return item
        return Fragment(item, isinstance(item, bytes), 0, 0, True)

    def __aiter__(self) -> AsyncIterator[Message]:
        return self

    async def __anext__(self) -> Message:
        """Messages until a clean close; an abnormal close raises ConnectionClosedError."""
        try:
            item = await self._receive_item()  # (receive() inlined: one coroutine level less)
        except ConnectionClosedOK:
            raise StopAsyncIteration from None
        if not isinstance(item, Fragment):
            return item
        try:
            return await self._rest_of_message(item)
        except ConnectionClosedOK:
            raise StopAsyncIteration from None

    async def serve_messages(self, callback: Callable[[Message], Awaitable[None]]) -> None:
        """Callback style: call ``await callback(message)`` for each message until a clean close."""
        async for message in self:
            await callback(message)

    # --------------------------------------------------------------- sending

    async def send(self, message: Message, *, compress: bool = True) -> None:
        """Send one message: ``str`` as text, ``bytes`` as binary.

        Returns once the socket took the bytes.  Raises :class:`ConnectionClosed`
        if the connection is closing or closed.  ``compress=False`` sends this
        message uncompressed even when permessage-deflate was negotiated (e.g.
        data that is already compressed, or secrets next to attacker-chosen
        text: compression leaks their length, as in CRIME/BREACH).
        """
        if isinstance(message, str):
            text = True
        elif isinstance(message, bytes | bytearray | memoryview):
            text = False
        else:
            raise TypeError(f"send() takes str or bytes, not {type(message).__name__}")
        await trio.lowlevel.checkpoint_if_cancelled()
        mlock, flock = self._message_lock, self._frame_lock
        if compress and not (mlock._locked or flock._locked):
            # The hot path: both locks free, taken without a scheduler round
            # (the write is the checkpoint), no closure per message; SendLock's
            # state is set directly (acquire_nowait/release, inlined).
            mlock._locked = flock._locked = True
            try:
                proto = self._protocol
                if self._broken or proto.state is not State.OPEN or self._input_done:
                    self._check_sendable()  # raises
                body = b""
                if len(message) >= WRITEV_MIN_SIZE:
                    frame, body = proto.send_message_parts(message)
                elif text:
                    frame = proto.send_text(message)  # type: ignore[arg-type]
                else:
                    frame = proto.send_binary(message)  # type: ignore[arg-type]
                if self._pending_pong or self._pending_ping or self._pending_close:
                    frame = self._take_pending() + frame
                await self._write(frame, body)
            finally:
                if flock._waiting or mlock._waiting:
                    flock.release()
                    mlock.release()
                else:
                    flock._locked = mlock._locked = False
            return
        if text:
            make = lambda: self._protocol.send_text(message)  # type: ignore[arg-type]  # noqa: E731
        else:
            data = bytes(message)  # type: ignore[arg-type]
            make = lambda: self._protocol.send_binary(data)  # noqa: E731
        if not compress:
            make = _uncompressed(self._protocol.extensions, make)
        async with mlock:
            await self._send_frame(make)

    @asynccontextmanager
    async def send_stream(self, *, binary: bool = True) -> AsyncIterator[MessageSender]:
        """Send one message in fragments (libwebsockets' ``LWS_WRITE_NO_FIN``).

        ``async with ws.send_stream() as out: await out.send(chunk)``; leaving the
        block sends the final frame.  If the block raises mid-message the message
        cannot be completed, so the connection is failed with 1011.
        """
        async with self._message_lock:
            sender = MessageSender(self, binary)
            try:
                yield sender
            except BaseException as exc:
                if sender.started and not sender.finished:
                    self._fail(1011, "message aborted", exc)
                raise
            if not sender.finished:
                await sender.send(b"" if binary else "", final=True)

    async def send_fragments(self, chunks: AsyncIterable[Message] | Iterable[Message]) -> None:
        """Send the chunks as the fragments of one message (text if they are ``str``)."""
        iterator = _aiter(chunks)
        first = await anext(iterator, None)
        async with self.send_stream(binary=not isinstance(first, str)) as out:
            if first is not None:
                await out.send(first)
                async for chunk in iterator:
                    await out.send(chunk)

    # --------------------------------------------------------------- closing

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection: Close handshake within ``close_timeout``, then TCP.

        Messages not yet received are discarded.  Never hangs: past the deadline,
        or if cancelled, the connection is aborted.  A no-op once closed.
        """
        if not self._started:
            await trio.aclose_forcefully(self._stream)
            self._input_done = True
            self._closed.set()
            return
        # Unread messages are dropped, and so is the backpressure they held: the
        # socket is read again, data discarded, so Ping/Close are still answered
        # and the peer's Close is seen (trio-websocket stalls exactly here).
        self._receive_closed = True
        if self._receive_channel is not None:
            self._receive_channel.close()
        self._discard = True
        self._backlog = None
        self._queued_items = self._queued_bytes = 0
        self._initiate_close(code, reason)  # (wakes the watcher)
        try:
            await self._closed.wait()
        finally:
            if not self._closed.is_set():
                self._abort()

    def __repr__(self) -> str:
        side = "client" if self._is_client else "server"
        return f"<WebSocket {side} {self.state.value}>"


class MessageSender:
    """The fragment writer of :meth:`WebSocket.send_stream`."""

    __slots__ = ("_binary", "_ws", "finished", "started")

    def __init__(self, ws: WebSocket, binary: bool) -> None:
        self._ws = ws
        self._binary = binary
        self.started = False
        self.finished = False

    async def send(self, data: Message, *, final: bool = False) -> None:
        """Send ``data`` as the next fragment; ``final=True`` ends the message."""
        if self.finished:
            raise LocalProtocolError("this message is already complete")
        proto = self._ws._protocol
        if self._binary:
            if isinstance(data, str):
                raise TypeError("a binary message takes bytes fragments")
            chunk = bytes(data)
            make = lambda: proto.send_binary(chunk, fin=final)  # noqa: E731
        else:
            if not isinstance(data, str):
                raise TypeError("a text message takes str fragments")
            text = data
            make = lambda: proto.send_text(text, fin=final)  # noqa: E731
        self.started = True
        await self._ws._send_frame(make)
        self.finished = final


def _uncompressed(extensions: Sequence[Extension], make: Callable[[], bytes]) -> Callable[[], bytes]:
    """``make`` with permessage-deflate paused for the one message it builds."""
    deflate = next((ext for ext in extensions if isinstance(ext, PerMessageDeflate)), None)
    if deflate is None:
        return make

    def make_uncompressed() -> bytes:
        deflate.compress_outgoing = False
        try:
            return make()
        finally:
            deflate.compress_outgoing = True

    return make_uncompressed


async def _aiter(chunks: AsyncIterable[Message] | Iterable[Message]) -> AsyncIterator[Message]:
    if isinstance(chunks, AsyncIterable):
        async for chunk in chunks:
            yield chunk
    else:
        for chunk in chunks:
            yield chunk
