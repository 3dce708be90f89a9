"""The engine of the trio WebSocket: reader, writer, keepalive and closing.

Theory of operation
-------------------
A :class:`WebSocket` wraps an established connection (after the §4 handshake):
a trio stream plus a pure :class:`~trio_ws.sansio.connection.WebSocketProtocol`.
Its owner starts its background work with ``ws._spawn(nursery)`` (the server
uses the connection's nursery, the client ``connect()``'s own; ``await
nursery.start(ws._run)`` works too, and keeps the watcher for the whole
connection).  The background tasks::

    _watch_and_close      the watcher: reads the socket whenever no receive()
                          does (below) → protocol.receive_data → schedule
                          replies → deliver data events into the message
                          channel; schedules a keepalive Ping every
                          ping_interval, fails 1011 after ping_timeout; at the
                          end of input runs the closing sequence
    _flusher              started on demand while scheduled control bytes
                          (Pong, keepalive Ping, Close) wait to be written

**Who reads: the receiver first.**  On plain TCP the task in ``receive()``
reads and parses the socket itself when the channel is empty: one wait for
readability, one ``os.read``, the protocol, and the message is returned
without waking any other task (a reader task would hand every message over
through the channel: a scheduler round each way, most of a small message's
cost).  Only one task reads at a time (``_reading`` is the token).  When
``receive()`` returns, the socket is unwatched; if no ``receive()`` comes back
within :data:`WATCH_DELAY` the watcher takes over and reads continuously, so
Pings are answered, Close is seen and the channel fills for a handler that is
busy or only sends.  A ``receive()`` that finds the watcher reading waits on the
channel; once the watcher has delivered to it, the watcher stands down and the
receiver reads again.  The watcher also takes over at once when something needs
input now: ``ping()``, ``aclose()``, a Close scheduled at shutdown.  Messages
parsed beyond the one returned go into the channel; what does not fit waits in
``_backlog`` (one read's worth), and nobody reads until it is consumed.  When the
connection ends while a receiver waits for readability, the watcher wakes it
with ``notify_closing``.  Streams without a file descriptor (TLS, memory
streams) keep the watcher as their only reader.

**The watcher on demand** (plain TCP, ``_spawn``).  The watcher is a task only
while it is needed: it is started in the owner's nursery when its moment comes
(``_watch_at``, the keepalive's ``_keepalive_at``), when input is needed now, or
when the input ends (it runs the closing sequence), and it ends when it is not
needed (a receiver has the socket back, the backlog is full) and no close is
under way.  Meanwhile the run's timer service (:mod:`trio_ws._timers`, one task
for every connection) keeps the next moment and calls :meth:`_on_timer`.  Server
shutdown needs no task either: the endpoint registers a synchronous
``request.call_on_shutdown`` hook that schedules Close 1001.  A connection idle
in ``receive()`` is therefore the handler's task (and a nursery) and nothing
else; a parked trio task with its frames, scope and event was ~3 KiB, a fifth
of an idle WebSocket's memory.

**Backpressure.** Messages go into ``trio.open_memory_channel(max_queue)``; a
read whose messages do not all fit leaves the rest in ``_backlog``, and nobody
reads the socket until both are consumed: the peer's sends stall on the TCP
window.  Memory per connection is therefore bounded by ``max_queue`` messages in
the channel, the messages of one read beyond it, the message being assembled,
and one read (``receive_size``, grown up to :data:`MAX_READ_SIZE` while reads
fill it).  (Consequence: while a consumer leaves the queue full, Pongs to *our*
keepalive Pings sit unread behind the data, so a consumer stalled longer than
``ping_timeout`` under traffic is closed with 1011.)

**The reader never waits on a write.**  Replies the protocol makes on its own
(auto-Pong, the Close echo, the Close we fail with) are only *scheduled*: put in
a small control buffer (``_pending_pong`` keeps only the latest Pong, which
§5.5.3 allows; ``_pending_ping`` our keepalive Ping; ``_pending_close`` the
Close) and a flusher task is started if none runs.  Whoever holds the frame
lock next writes the buffer first: the flusher, or a user ``send()`` that
prepends it to its own frame (a Close the reader sees ends the input, and the
closing sequence writes the echo: no flusher then).  So when both peers push large
messages at once, each reader keeps draining its socket (feeding its channel)
while the writers wait their turn on the lock: Ping/Pong and Close cannot
deadlock, and the control buffer holds at most one Pong, one Ping and one Close.  Pings
that arrive in the same read as a message the full channel cannot take yet are
answered at once, since replies are scheduled before delivery.

**Locks.**  ``_message_lock`` is held for a whole data message (one frame, or
every fragment of a :meth:`send_stream`), ``_frame_lock`` for a single write.
Control frames take only the frame lock, so they may go out between the
fragments of a message (§5.4) but never inside a frame.  Frames are built by the
protocol while the frame lock is held, so no data frame can follow our Close.
A write that fails or is cancelled half-way marks the connection broken: later
sends raise :class:`ConnectionClosedError` and the TCP connection is aborted.

**Scheduler trips** (the cost of small messages).  A free lock is taken with
``acquire_nowait`` after one cancellation check (``async with lock`` is a full
scheduler round even uncontended).  On plain TCP a frame is written with one
non-blocking ``send``; only what the kernel does not take goes through
``send_all``.  ``receive()`` takes a queued message the same way.  Both still
check for cancellation every time and yield every :data:`RECEIVES_PER_YIELD`
(:data:`~trio_ws._direct_io.OPS_PER_YIELD`) calls in a row, so a loop that never blocks cannot
starve other tasks.  A receiver reading after a short read waits for
readability and then ``os.read``s, instead of a speculative ``recv`` that would
fail with EAGAIN.

**Closing.**  :meth:`aclose` first closes the channel's receive end and drops
the backlog, so a reader stopped by a full queue reads again, discards data and
keeps answering Ping/Close; then it schedules our Close and waits for ``_run`` to finish, all within
``close_timeout``: the reader stops at the peer's Close (or the deadline), the
pending replies are flushed, the client waits briefly for the server's EOF and
the server drops TCP first (§7.1.1).  Past the deadline the connection is
aborted.  A server shutdown schedules Close 1001 the same way but keeps the
channel open, so the handler still gets the messages that arrived before.
Background tasks never raise: they record the first failure, which becomes the
``__cause__`` of the :class:`ConnectionClosed` users see.
"""

from __future__ import annotations

import logging
import math
import os
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import trio

from ._direct_io import OPS_PER_YIELD, plain_tcp_fd, read_direct, write_direct
from ._send_lock import SendLock
from ._timers import timer_service
from .exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK
from .sansio.connection import Role, State, WebSocketProtocol
from .sansio.events import Event, Fragment, Ping, Pong
from .ws_config import WebSocketConfig

if TYPE_CHECKING:
    from .request import Request

__all__ = ["CLIENT_EOF_WAIT", "WebSocketCore"]

log = logging.getLogger("trio_ws.websocket")

#: How long a client waits for the server to close TCP after the close exchange.
CLIENT_EOF_WAIT = 2.0
#: How long a side that failed the connection drains the peer's input before closing TCP.
FAIL_LINGER = 1.0
#: Close codes that count as a clean close (1005: the peer's Close had no code).
_CLEAN_CODES = frozenset({1000, 1001, 1005})
#: ``receive()`` takes queued messages without yielding to the scheduler (it
#: still raises Cancelled when cancelled); after this many in a row it yields
#: once, so a loop draining a long queue cannot starve other tasks.
RECEIVES_PER_YIELD = 16
#: Largest read: reads that fill their buffer double the next one's size up to
#: this (or ``receive_size`` if larger), so a large message takes a few reads.
MAX_READ_SIZE = 1 << 20
#: Messages from this size on are framed as header + payload and written with
#: one ``writev``: no copy of the payload behind its header.
WRITEV_MIN_SIZE = 64 * 1024
#: Seconds the socket may stay unread after ``receive()`` returns before the
#: watcher takes over reading (plain TCP; module docstring, "Who reads").
WATCH_DELAY = 0.25

Message = str | bytes
_Item = str | bytes | Fragment


class _PingWaiter:
    __slots__ = ("answered", "event")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.answered = False


class WebSocketCore:
    """The background machinery of :class:`~trio_ws.WebSocket` (module docstring).

    Users see the subclass; this class owns the state, the locks, the tasks
    started by ``_run`` and the closing logic.
    """

    # Slots: ~1 KiB less per connection than a __dict__ (5,000 idle connections
    # is 5 MB).  The public subclass declares ``__slots__ = ()``.
    __slots__ = (
        "__weakref__",
        "_backlog",
        "_broken",
        "_bytes_received",
        "_bytes_sent",
        "_cause",
        "_close_deadline",
        "_close_scope",
        "_closed",
        "_config",
        "_discard",
        "_fd",
        "_flushing",
        "_frame_lock",
        "_initial",
        "_input_done",
        "_is_client",
        "_keepalive_at",
        "_keepalive_waiter",
        "_lazy",
        "_message_lock",
        "_nursery",
        "_park_scope",
        "_pending_close",
        "_pending_ping",
        "_pending_pong",
        "_pings",
        "_protocol",
        "_queued_bytes",
        "_queued_items",
        "_read_done",
        "_read_size",
        "_reading",
        "_reads_unyielded",
        "_receive_channel",
        "_receive_closed",
        "_receives_unyielded",
        "_receiving",
        "_rx_reading",
        "_rx_waiting",
        "_send_channel",
        "_sends_unyielded",
        "_started",
        "_stop_reading",
        "_stream",
        "_timer_key",
        "_watch_at",
        "_watch_event",
        "_watching",
        "request",
        "response_headers",
        "subprotocol",
    )

    def __init__(
        self,
        stream: trio.abc.Stream,
        protocol: WebSocketProtocol,
        *,
        config: WebSocketConfig | None = None,
        subprotocol: str | None = None,
        request: Request | None = None,
        response_headers: Iterable[tuple[str, str]] = (),
        initial_data: bytes = b"",
    ) -> None:
        self._stream = stream
        self._protocol = protocol
        self._config = config = config or WebSocketConfig()
        self.subprotocol = subprotocol
        self.request = request
        self.response_headers = list(response_headers)
        self._initial = initial_data
        self._is_client = protocol.role is Role.CLIENT
        # The message channel is made when first needed (an idle connection whose
        # handler reads the socket itself never needs it): _open_channel.
        self._send_channel: trio.MemorySendChannel[_Item] | None = None
        self._receive_channel: trio.MemoryReceiveChannel[_Item] | None = None
        self._receive_closed = False  # aclose() closed the receive end (before or after it was made)
        self._message_lock = SendLock()
        self._frame_lock = SendLock()
        self._pending_pong = b""  # at most one Pong: the latest (§5.5.3)
        self._pending_close = b""  # at most one Close
        self._pending_ping = b""  # our keepalive Ping
        self._nursery: trio.Nursery | None = None  # _run's: for the flusher task
        self._flushing = False  # a flusher task is running
        self._keepalive_at = math.inf  # the next keepalive Ping, or the deadline of its Pong
        self._keepalive_waiter: _PingWaiter | None = None
        self._pings: dict[bytes, _PingWaiter] = {}
        self._close_scope: trio.CancelScope | None = None  # _finish_close's, while it runs
        self._stop_reading = False  # _fail(): the watcher stops (its wait's scope is cancelled)
        self._close_deadline: float | None = None
        self._read_done: trio.Event | None = None  # made by the first wait for it
        self._input_done = False  # the input has ended (no more reads)
        self._closed = trio.Event()
        self._started = False
        self._broken = False
        self._discard = False
        self._receiving = False
        self._receives_unyielded = 0
        self._fd = plain_tcp_fd(stream)
        self._backlog: deque[_Item] | None = None  # made when a read overflows the channel
        self._reading = False  # the read token: someone is reading the socket
        self._rx_reading = False  # ... and it is the task in receive()
        self._rx_waiting = False  # a receive() waits on the channel for the watcher
        # Next read's size; negative after a short read: wait for readability first.
        self._read_size = config.receive_size
        self._reads_unyielded = 0
        self._sends_unyielded = 0
        self._watch_at = math.inf  # when the watcher takes over an unread socket
        self._lazy = False  # _spawn on plain TCP: the watcher runs only while needed
        self._watching = False  # a watcher task runs
        self._timer_key: int | None = None  # the timer service's bucket (_timers.py)
        # The watcher's wake-up and its current wait, made by its first park / wait.
        self._watch_event: trio.Event | None = None
        self._park_scope: trio.CancelScope | None = None
        self._cause: BaseException | None = None
        self._queued_bytes = 0
        self._queued_items = 0  # in the channel (so receive() need not try it empty)
        self._bytes_received = 0
        self._bytes_sent = 0

    @property
    def close_code(self) -> int | None:
        """The peer's close code: 1005 if its Close had none, 1006 if none came; None while open."""
        p = self._protocol
        if p.close_received:
            return 1005 if p.close_code_received is None else p.close_code_received
        return 1006 if self._input_done else None

    def _is_clean(self) -> bool:
        p = self._protocol
        return (
            p.close_received
            and p.failure is None
            and self._cause is None
            and self.close_code in _CLEAN_CODES
            and (p.close_code_sent is None or p.close_code_sent in _CLEAN_CODES)
        )

    def _closed_error(self) -> ConnectionClosed:
        cls = ConnectionClosedOK if self._is_clean() else ConnectionClosedError
        p = self._protocol
        # The exception carries the codes as sent (None: no Close, or no code in
        # it); ``ws.close_code`` spells those as 1006 / 1005 (§7.1.5).
        exc = cls(
            p.close_code_received,
            p.close_reason_received,
            sent_code=p.close_code_sent,
            sent_reason=p.close_reason_sent,
        )
        exc.__cause__ = p.failure or self._cause
        return exc

    def _record(self, exc: BaseException) -> None:
        if self._cause is None:
            self._cause = exc

    async def ping(self, payload: bytes = b"") -> float:
        """Send a Ping and wait for its Pong; returns the round-trip time in seconds.

        A Pong answers its Ping and every earlier one (§5.5.3 lets peers answer
        only the latest).  Raises :class:`ConnectionClosed` if the connection
        closes first.
        """
        payload = bytes(payload)
        waiter = self._pings.get(payload)
        if waiter is None:
            waiter = self._pings[payload] = _PingWaiter()
        started = trio.current_time()
        try:
            await self._send_frame(lambda: self._protocol.send_ping(payload))
        except BaseException:
            if not waiter.event.is_set() and self._pings.get(payload) is waiter:
                del self._pings[payload]
            raise
        self._watch_now()  # the Pong must be read even if nobody is in receive()
        await waiter.event.wait()
        if not waiter.answered:
            err = self._closed_error()
            raise err from err.__cause__
        return trio.current_time() - started

    async def _send_frame(self, make: Callable[[], bytes]) -> None:
        """Build a frame under the frame lock and write it after any pending control bytes.

        Hot path: a free lock is taken with ``acquire_nowait`` (``async with``
        costs a scheduler round even uncontended); ``send_all`` is the
        checkpoint.  Cancellation is checked before the frame is built, so a
        send in a cancelled scope raises Cancelled and leaves the connection
        intact, as before.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        lock = self._frame_lock
        if lock.locked():
            await lock.acquire()
        else:
            lock.acquire_nowait()
        try:
            self._check_sendable()
            frame = make()
            if self._pending_pong or self._pending_ping or self._pending_close:
                frame = self._take_pending() + frame
            await self._write(frame)
        finally:
            lock.release()

    def _check_sendable(self) -> None:
        if self._broken or self._protocol.state is not State.OPEN or self._input_done:
            err = self._closed_error()
            raise err from err.__cause__

    def _take_pending(self) -> bytes:
        data = self._pending_pong + self._pending_ping + self._pending_close  # Close last
        self._pending_pong = self._pending_ping = self._pending_close = b""
        return data

    async def _write(self, data: bytes, body: bytes = b"") -> None:
        """Write ``data`` then ``body`` under the frame lock; a failure or cancellation
        breaks the connection.

        ``body`` is a large payload behind its frame header in ``data``: both go
        out with one ``writev``, without joining them.  On plain TCP one
        non-blocking write first (module docstring, "Scheduler trips");
        ``send_all`` writes what the kernel did not take.
        """
        try:
            if self._fd >= 0 and self._sends_unyielded < OPS_PER_YIELD:
                sent = write_direct(self._fd, (data, body) if body else (data,))
                self._bytes_sent += sent
                if sent == len(data) + len(body):
                    self._sends_unyielded += 1
                    return
                if sent < len(data):
                    data = memoryview(data)[sent:]  # type: ignore[assignment]
                else:
                    body = memoryview(body)[sent - len(data) :]  # type: ignore[assignment]
                    data = b""
            self._sends_unyielded = 0
            for part in (data, body):
                if part:
                    await self._stream.send_all(part)
                    self._bytes_sent += len(part)
        except BaseException as exc:
            # A frame may be half-written: nothing more can be sent on this connection.
            self._broken = True
            self._record(exc)
            self._abort()
            if isinstance(exc, trio.BrokenResourceError | trio.ClosedResourceError):
                err = self._closed_error()
                raise err from exc
            raise

    def _kick_flush(self) -> None:
        """Control bytes were scheduled: make sure a task writes them (the reader never does).

        A flusher task is started on demand (in ``_run``'s nursery) and lives
        only while there is something to write, so an idle connection has none.
        """
        if not self._flushing and self._nursery is not None:
            self._flushing = True
            self._nursery.start_soon(self._flusher)

    async def _flusher(self) -> None:
        try:
            while (self._pending_pong or self._pending_ping or self._pending_close) and not self._broken:
                await self._flush()
        finally:
            self._flushing = False

    async def _flush(self) -> None:
        """Write the scheduled control bytes (the flusher and the final flush)."""
        if not (self._pending_pong or self._pending_ping or self._pending_close):
            return
        async with self._frame_lock:
            if self._broken:
                return
            try:
                await self._write(self._take_pending())
            except ConnectionClosed:
                return

    def _start_deadline(self) -> None:
        if self._close_deadline is None:
            self._close_deadline = trio.current_time() + self._config.close_timeout
            if self._park_scope is not None:
                self._park_scope.deadline = min(self._park_scope.deadline, self._close_deadline)

    def _initiate_close(self, code: int, reason: str) -> None:
        """Schedule our Close (if still open) and start the close deadline; never blocks."""
        if self._protocol.state is State.OPEN and not self._broken and not self._input_done:
            self._pending_close += self._protocol.send_close(code, reason)
            self._kick_flush()
        self._start_deadline()
        self._watch_now()  # the peer's Close must be read even if nobody receives

    def _fail(self, code: int, reason: str, cause: BaseException) -> None:
        """Fail the connection (§7.1.7): schedule a Close, stop reading, close TCP."""
        self._record(cause)
        if not self._broken:
            self._pending_close += self._protocol.fail(code, reason)  # _finish_close writes it
        self._start_deadline()
        self._stop_reading = True
        self._interrupt_watcher()

    # ------------------------------------------------------ background tasks

    def _spawn(self, nursery: trio.Nursery) -> None:
        """Start the connection's background work in ``nursery`` (the connection's), without waiting.

        On plain TCP no task starts yet: the handler's ``receive()`` reads, and
        the watcher task is started in ``nursery`` only while it is needed
        (:meth:`_wake_watcher`); until then the run's timer service keeps the
        connection's moments (:mod:`trio_ws._timers`), so an idle connection
        costs no task.  Other streams start :meth:`_run` (cheaper than
        ``nursery.start``: no temporary nursery, no scheduler round).
        """
        self._started = True
        self._nursery = nursery
        if self._fd < 0:
            nursery.start_soon(self._run, nursery)
            return
        self._lazy = True
        self._arm()
        self._schedule_timer()

    def _arm(self) -> None:
        """The first moments: the watcher's (the handler's receive() comes first) and the keepalive's."""
        now = trio.current_time()
        if self._fd >= 0:
            self._watch_at = now + WATCH_DELAY
        if self._config.ping_interval is not None:
            self._keepalive_at = now + self._config.ping_interval

    async def _run(
        self,
        nursery: trio.Nursery | None = None,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run the connection until it closes, with the watcher always there (``nursery.start``
        in tests, and non-TCP streams through :meth:`_spawn`).

        The flusher task, when one is needed, is started in ``nursery`` (the
        owner's: a connection's own nursery); without one ``_run`` opens its own.
        """
        self._started = True
        self._arm()
        try:
            if nursery is not None:
                self._nursery = nursery
                task_status.started()
                await self._watch_and_close()
            else:
                async with trio.open_nursery() as own:
                    self._nursery = own
                    task_status.started()
                    await self._watch_and_close()
                    own.cancel_scope.cancel()  # a flusher still waiting for the lock
        except Exception as exc:  # the flusher's failure must not escape into the owner's nursery
            log.exception("WebSocket background task failed")
            self._record(exc)

    async def _watch_and_close(self) -> None:
        """The watcher task: watch until the input ends, then the closing sequence.

        A lazy watcher (:meth:`_spawn`) returns as soon as it is not needed and
        hands its moments back to the timer service; everything else runs to the
        end and closes the stream.
        """
        self._watching = True
        ended = True
        try:
            ended = await self._watch()
            if ended:
                self._end_of_input()
                await self._finish_close()
                # A flusher left in the owner's nursery ends by itself: the socket closes next.
        except Exception as exc:  # a bug in here must not escape into the owner's nursery
            log.exception("WebSocket background task failed")
            self._record(exc)
        finally:
            self._park_scope = self._watch_event = None
            if ended:
                await self._close_stream()  # (still "watching": nothing starts another watcher)
            self._watching = False
            if not ended:  # (wanted now, -inf: the receiver's leaving or the backlog's draining starts it)
                self._schedule_timer()

    async def _close_stream(self) -> None:
        if self._fd >= 0:
            self._close_now()
            return
        try:
            self._end_of_input()
            await trio.aclose_forcefully(self._stream)
        finally:
            self._closed.set()

    def _close_now(self) -> None:
        """Plain TCP: end the input, close the socket (what ``aclose()`` does, minus the
        checkpoint) and mark the connection closed, at once."""
        watching, self._watching = self._watching, True  # (nothing starts a watcher meanwhile)
        try:
            self._end_of_input()
            if self._lazy:
                timer_service().cancel(self)
            self._stream.socket.close()  # type: ignore[attr-defined]
        finally:
            self._watching = watching
            self._closed.set()

    def _abort(self) -> None:
        """End the connection now: no more reading or writing, no closing handshake
        (a write failed half-way, or ``aclose()`` was cancelled); the watcher then closes TCP."""
        self._broken = True
        self._stop_reading = True
        self._interrupt_watcher()
        if self._close_scope is not None:
            self._close_scope.cancel()

    # ------------------------------------------------ the watcher, on demand

    def _interrupt_watcher(self) -> None:
        """Cancel the watcher's current wait (park or read); start one if none runs."""
        if self._park_scope is not None:
            self._park_scope.cancel()
        self._wake_watcher()

    def _wake_watcher(self) -> None:
        """Make the watcher look again now: wake it, or start it (lazy mode)."""
        if self._watching:
            if self._watch_event is None:
                self._watch_event = trio.Event()
            self._watch_event.set()  # (if it is not parked, its next park returns at once)
        elif self._lazy and not self._closed.is_set():
            self._watching = True
            try:
                self._nursery.start_soon(self._watch_and_close)  # type: ignore[union-attr]
            except RuntimeError as exc:  # the owner's nursery is closed: nobody can close for us
                self._watching = False
                self._record(exc)
                self._close_now()

    def _schedule_timer(self) -> None:
        """Lazy mode, no watcher: have the timer service call :meth:`_on_timer` at our next moment."""
        at = min(self._watch_at, self._keepalive_at)
        if at == -math.inf:
            at = self._keepalive_at  # input wanted now: the receiver's leaving starts the watcher
        if at < math.inf and self._lazy and not self._closed.is_set():
            timer_service().schedule(self, at)

    def _on_timer(self) -> None:
        """The timer service's call: start the watcher if it is due, else ask again later."""
        if self._watching or self._closed.is_set():
            return
        now = trio.current_time()
        if self._keepalive_at <= now or (self._watch_at <= now and self._watch_wanted()):
            self._wake_watcher()
            return
        if -math.inf < self._watch_at <= now:
            self._watch_at = math.inf  # a receiver reads, or the backlog is full: re-armed when it leaves
        self._schedule_timer()

    # ----------------------------------------------------------------- reading

    async def _watch(self) -> bool:
        """The watcher: read whenever no ``receive()`` does, and run the keepalive, until
        the input ends (True), or, lazy, until it is not needed (False)."""
        protocol = self._protocol
        while not self._input_done:
            now = trio.current_time()
            if self._stop_reading or (self._close_deadline is not None and now >= self._close_deadline):
                return True  # failed, or the closing handshake ran out of time
            if self._keepalive_at <= now:
                self._keepalive()
                continue
            if not self._watch_wanted():
                if -math.inf < self._watch_at <= trio.current_time():
                    self._watch_at = math.inf  # due, but a receiver is busy: re-armed when it leaves
                if self._lazy and self._close_deadline is None:
                    return False  # the timer service keeps our moments meanwhile
                await self._park()
                continue
            self._reading = True
            data: bytes | None = None
            try:
                # The keepalive's next moment interrupts a read (a wait for data:
                # nothing is lost); delivery never waits (the backlog takes the rest).
                deadline = self._keepalive_at
                if self._close_deadline is not None:
                    deadline = min(deadline, self._close_deadline)
                with trio.CancelScope(deadline=deadline) as scope:
                    self._park_scope = scope
                    data = await self._read()
                if data is not None:
                    self._take_events(self._parse(data), keep_first=False)
            finally:
                self._reading = False
            if data is None:
                continue
            if not data or protocol.state is State.CLOSED:
                return True
            if self._rx_waiting and self._queued_items > 0:
                # The waiting receive() got an item (a receiver waits only on an empty
                # channel, and counts its item off when it runs): it reads itself from
                # its next call; the watcher stands by until it leaves again, which
                # re-arms it.
                self._rx_waiting = False
                self._watch_at = math.inf
        return True

    def _keepalive(self) -> None:
        """Time for the keepalive: send the next Ping, or fail with 1011 when its Pong is late.

        The Ping is scheduled like the other control replies (the flusher writes
        it); ``ping_timeout`` counts from then, so it covers a write stuck
        behind a full TCP window too.  A Pong that answers it moves the next
        Ping to ``ping_interval`` after that (:meth:`_on_pong`).
        """
        interval, timeout = self._config.ping_interval, self._config.ping_timeout
        waiter = self._keepalive_waiter
        if waiter is not None:  # its Pong is late (an answer would have cleared it)
            self._keepalive_waiter = None
            self._keepalive_at = math.inf
            if not waiter.event.is_set():
                self._fail(1011, "keepalive ping timeout", TimeoutError(f"no Pong within {timeout}s"))
            return
        if interval is None or self._broken or self._protocol.state is not State.OPEN:
            self._keepalive_at = math.inf
            return
        payload = os.urandom(4)
        waiter = self._keepalive_waiter = self._pings.setdefault(payload, _PingWaiter())
        self._pending_ping = self._protocol.send_ping(payload)
        self._kick_flush()
        self._keepalive_at = math.inf if timeout is None else trio.current_time() + timeout

    def _watch_wanted(self) -> bool:
        if self._fd < 0:
            return True  # no fd: the watcher is the only reader
        if self._reading or self._backlog:
            return False
        if self._rx_waiting:
            return True  # a receive() waits for what we read: keep reading until it has some
        if self._receiving:
            return False
        return self._watch_at <= trio.current_time()

    def _wake_at(self) -> float:
        """When the parked watcher must look again: ``_watch_at`` if still ahead, the keepalive.

        (A past ``_watch_at`` while it may not read means a receiver holds the
        socket, or the backlog is full: their leaving wakes the watcher.)
        """
        at = self._watch_at
        closing = math.inf if self._close_deadline is None else self._close_deadline
        return min(at if at > trio.current_time() else math.inf, self._keepalive_at, closing)

    async def _park(self) -> None:
        """Wait until woken, or until :meth:`_wake_at`."""
        event = self._watch_event
        if event is None:
            event = self._watch_event = trio.Event()
        with trio.CancelScope(deadline=self._wake_at()) as scope:
            self._park_scope = scope
            await event.wait()
        if event.is_set():
            self._watch_event = None

    def _watch_now(self) -> None:
        """Input is needed now (a ping, closing): the watcher reads unless a receiver does."""
        self._watch_at = -math.inf
        self._wake_watcher()

    def _after_receive(self) -> None:
        """``receive()`` is leaving: arm the watcher (plain TCP; it stands by otherwise)."""
        if self._fd < 0:
            return
        if self._watch_at == math.inf:
            self._watch_at = trio.current_time() + WATCH_DELAY
            self._moments_changed()
        elif self._watch_at == -math.inf:
            self._wake_watcher()  # input is wanted now (_watch_now)

    def _moments_changed(self) -> None:
        """``_watch_at`` or ``_keepalive_at`` moved: tell whoever waits for them."""
        if self._park_scope is not None:
            self._park_scope.deadline = self._wake_at()
        elif not self._watching:
            self._schedule_timer()

    async def _rx_read(self) -> _Item | None:
        """One read by the task in ``receive()``: the first item it completes (the rest
        are queued), or None (a partial frame, or the connection ended meanwhile)."""
        self._reading = self._rx_reading = True
        try:
            data = await self._read()
        finally:
            self._reading = self._rx_reading = False
        if self._input_done:
            return None  # woken by _kick_receiver: the watcher finishes the close
        first = self._take_events(self._parse(data), keep_first=True)
        if (not data or self._protocol.state is State.CLOSED) and not self._close_inline():
            self._end_of_input()  # (which starts the watcher's closing sequence)
        return first

    def _close_inline(self) -> bool:
        """The input ended in ``receive()``: close here when nothing needs a task (lazy
        mode, and :meth:`_closes_at_once`, :meth:`_finish_close`'s common case); True if done."""
        if not self._lazy or self._watching or not self._closes_at_once():
            return False
        self._close_now()
        return True

    def _take_events(self, events: list[Event | str | bytes], *, keep_first: bool) -> _Item | None:
        """Queue the messages (or pieces) among ``events`` (``receive_items``'), handle
        Pongs; with ``keep_first`` the first message is returned instead of queued."""
        first: _Item | None = None
        for event in events:
            kind = type(event)
            if kind is not str and kind is not bytes and kind is not Fragment:
                if kind is Pong:
                    self._on_pong(event.payload)  # type: ignore[union-attr]
                continue
            if keep_first and first is None:
                first = event  # type: ignore[assignment]
            else:
                self._deliver_nowait(event)  # type: ignore[arg-type]
        return first

    def _kick_receiver(self) -> None:
        """Wake a ``receive()`` waiting for readability: the input has ended."""
        if self._rx_reading:
            trio.lowlevel.notify_closing(self._fd)

    def _parse(self, data: bytes) -> list[Event | str | bytes]:
        self._bytes_received += len(data)
        protocol = self._protocol
        close_sent = protocol.close_sent
        events = protocol.receive_items(data)
        self._schedule_replies(events, close_sent)
        return events

    async def _read(self) -> bytes:
        """One read (the caller holds the token): the handshake's leftover first; b"" at EOF.

        Plain TCP is read with ``os.read``: at once after a read that filled
        its buffer (more is likely waiting; every :data:`~trio_ws._direct_io.OPS_PER_YIELD`-th
        time through a wait instead, which yields), else after waiting for
        readability (a speculative ``recv`` would fail with EAGAIN: a syscall,
        an exception, then the wait anyway).  Reads that fill the buffer double
        the next one's size, up to :data:`MAX_READ_SIZE`: a large message costs
        a few reads, not one per ``receive_size``.
        """
        data = self._initial
        if data:
            self._initial = b""
            return data
        fd = self._fd
        # (A ClosedResourceError on plain TCP: notify_closing, the connection is ending.)
        try:
            if fd < 0:
                received = await self._stream.receive_some(self._config.receive_size)
                return received if type(received) is bytes else bytes(received)
            size = abs(self._read_size)
            at_once = self._read_size > 0 and self._reads_unyielded < OPS_PER_YIELD
            data = await read_direct(fd, size, at_once=at_once)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._record_input_error(exc)
            return b""
        self._reads_unyielded = self._reads_unyielded + 1 if at_once else 0  # a wait yielded
        if len(data) == size:  # full: read again at once, and more
            self._read_size = min(size * 2, max(MAX_READ_SIZE, self._config.receive_size))
        else:
            self._read_size = -self._config.receive_size  # short: wait first next time
        return data

    def _record_input_error(self, exc: BaseException) -> None:
        if not self._input_done:  # else: we closed it ourselves
            self._record(exc)

    def _schedule_replies(self, events: list[Event | str | bytes], close_sent: bool) -> None:
        """Move the protocol's own replies into the control buffer and wake the writer."""
        out = self._protocol.data_to_send()
        if not out:
            return
        if not close_sent:
            # The protocol queued one Pong per Ping, in order, before any Close.
            sizes = [self._pong_size(e.payload) for e in events if type(e) is Ping]
            end = sum(sizes)
            if end:
                self._pending_pong = out[end - sizes[-1] : end]
                out = out[end:]
        self._pending_close += out
        if self._protocol.state is not State.CLOSED:
            self._kick_flush()  # (when it is CLOSED, _finish_close writes them)

    def _pong_size(self, payload: bytes) -> int:
        return 2 + len(payload) + (4 if self._is_client else 0)  # ≤125 bytes: 2-byte header

    def _deliver_nowait(self, item: _Item) -> None:
        """Queue an item: the channel, or the backlog when it is full (the reader then
        stops: backpressure)."""
        if self._discard:
            return
        backlog = self._backlog
        if backlog:
            backlog.append(item)  # behind what already waits there
        else:
            try:
                self._open_channel()[0].send_nowait(item)
            except trio.WouldBlock:
                if backlog is None:
                    backlog = self._backlog = deque()
                backlog.append(item)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._discard = True
                return
            else:
                self._queued_items += 1
        self._queued_bytes += _item_size(item)

    def _open_channel(self) -> tuple[trio.MemorySendChannel[_Item], trio.MemoryReceiveChannel[_Item]]:
        """The message channel, made at its first use in the state the connection is in."""
        send, receive = self._send_channel, self._receive_channel
        if send is None or receive is None:
            send, receive = trio.open_memory_channel[_Item](self._config.max_queue)
            self._send_channel, self._receive_channel = send, receive
            if self._input_done:
                send.close()
            if self._receive_closed:
                receive.close()
        return send, receive

    async def _input_ended(self) -> None:
        """Wait until the input has ended."""
        if not self._input_done:
            if self._read_done is None:
                self._read_done = trio.Event()
            await self._read_done.wait()

    def _take_nowait(self) -> _Item | None:
        """A queued item, or None; at the end raises EndOfChannel (input over) or
        ClosedResourceError (``aclose()`` closed the channel)."""
        if self._queued_items > 0:
            self._queued_items -= 1
            item = self._open_channel()[1].receive_nowait()
        elif self._backlog:
            item = self._backlog.popleft()
        elif self._input_done or self._close_deadline is not None:
            if self._receive_channel is None:  # nothing was ever queued: as the channel would
                if self._receive_closed:
                    raise trio.ClosedResourceError
                if self._input_done:
                    raise trio.EndOfChannel
                return None
            try:
                item = self._receive_channel.receive_nowait()  # raises at the end
            except trio.WouldBlock:
                return None
        else:
            return None
        self._queued_bytes -= _item_size(item)
        return item

    def _on_pong(self, payload: bytes) -> None:
        if payload not in self._pings:
            return  # unsolicited (§5.5.3)
        for key in list(self._pings):
            waiter = self._pings.pop(key)
            waiter.answered = True
            waiter.event.set()
            if key == payload:
                break
        keepalive = self._keepalive_waiter
        if keepalive is not None and keepalive.answered:  # the next keepalive Ping: an interval from now
            self._keepalive_waiter = None
            interval = self._config.ping_interval
            self._keepalive_at = math.inf if interval is None else trio.current_time() + interval
            self._moments_changed()

    def _end_of_input(self) -> None:
        if self._input_done:
            return
        self._input_done = True
        if self._read_done is not None:
            self._read_done.set()
        if self._send_channel is not None:
            self._send_channel.close()
        self._wake_watcher()  # the closing sequence is the watcher's
        self._kick_receiver()
        for waiter in self._pings.values():
            waiter.event.set()
        self._pings.clear()

    async def _finish_close(self) -> None:
        """Flush the pending Close within the deadline; a client then waits for EOF (§7.1.1)."""
        if self._closes_at_once():
            return  # the common server close: the Close went out at once
        deadline = self._close_deadline
        if deadline is None:
            deadline = trio.current_time() + self._config.close_timeout
        with trio.move_on_at(deadline) as self._close_scope:
            if self._broken:
                return
            await self._flush()
            if self._broken:
                return
            if self._protocol.failure is not None or self._cause is not None:
                # We failed the connection (e.g. 1009 for a message too big) while the
                # peer may still be sending: closing now, with input unread, makes the
                # kernel send RST, and the peer loses our Close (a browser reports 1006).
                # Read and discard for a short, bounded while first, as HTTP's lingering
                # close does; the peer answers our Close and stops sending.
                with trio.move_on_after(FAIL_LINGER):
                    await self._drain_until_eof()
            elif self._is_client and self._protocol.close_received:
                with trio.move_on_after(CLIENT_EOF_WAIT):
                    await self._drain_until_eof()

    def _closes_at_once(self) -> bool:
        """The common close: nothing to linger for (no failure; not a client that must wait
        for the server's EOF), and the scheduled control bytes written now."""
        p = self._protocol
        if p.failure is not None or self._cause is not None or (self._is_client and p.close_received):
            return False
        return self._flush_nowait()

    def _flush_nowait(self) -> bool:
        """Write the scheduled control bytes without waiting (plain TCP, free lock); True if
        all went out.  What the kernel did not take stays scheduled, in order."""
        if not (self._pending_pong or self._pending_ping or self._pending_close):
            return True
        if self._fd < 0 or self._frame_lock._locked or self._broken:
            return False
        data = self._take_pending()
        try:
            sent = write_direct(self._fd, (data,))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            sent = 0  # the waiting path finds out
        self._bytes_sent += sent
        self._pending_close = data[sent:]  # pong and ping slots are empty: order kept
        return sent == len(data)

    async def _drain_until_eof(self) -> None:
        try:
            while await self._stream.receive_some(self._config.receive_size):
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass


def _item_size(item: _Item) -> int:
    return len(item.data) if type(item) is Fragment else len(item)  # type: ignore[arg-type]
