"""One HTTP/1.1 connection: an ``h11.Connection`` driven over a trio stream.

Theory of operation
-------------------
Everything is *pulled*. :meth:`HTTPConnection.next_request` reads the socket
only while h11 says ``NEED_DATA`` and returns the next request head; the body
stays in the socket until the handler asks for it (:meth:`read_body`,
:meth:`iter_body`). There is no background reader and no queue: the TCP window
is the backpressure. Responses are framed by h11 and written with one
``send_all`` per event batch; a write that fails or is cancelled half-way calls
``h11.send_failed()`` and the connection is closed (a half-sent response cannot
be repaired).

Deadlines (all from :class:`~trio_ws.ServerConfig`):

* from the first byte of a request, the whole head must arrive within
  ``header_timeout``, else ``408`` and close;
* before the first request (from accept), and between requests, the connection
  may idle ``header_timeout`` / ``keepalive_timeout``, then it closes quietly;
* a body read may stall ``header_timeout`` between two chunks, else ``408``;
* a write may block ``send_timeout`` on a peer that does not read.

Deadlines cost nothing per request: instead of a cancel scope per read and per
write (about 8 µs each, most of this layer's own cost), each connection runs in
*one* cancel scope (:attr:`HTTPConnection.scope`), the code stores a plain
float in :attr:`HTTPConnection.deadline` as it moves between phases, and the
server's sweeper task (``Server._sweep``) cancels the scope of a connection
whose deadline has passed, recording the phase in :attr:`expired_phase`. A
timeout therefore fires up to one sweep interval late.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from email.utils import formatdate
from typing import TYPE_CHECKING

import h11
import trio

from .exceptions import HTTPError, RequestBodyTooLarge
from .request import BodyProducer, Request, Response

if TYPE_CHECKING:
    from .config import ServerConfig

__all__ = ["HTTPConnection", "PeerGone"]

log = logging.getLogger("trio_ws.http")

#: RFC 9110 §5.1 field names are tokens; §5.5 values never hold CR, LF, NUL or other controls.
_is_token = re.compile(rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+").fullmatch
_bad_value = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]").search
#: Events are immutable: one end-of-message serves every response.
_END = h11.EndOfMessage()

_HAS_LENGTH = 1
_HAS_CONNECTION = 2

#: Connection phases, for deadlines and graceful shutdown.
IDLE = 0  # waiting for the first byte of a request
HEAD = 1  # receiving a request head
BODY = 2  # receiving a request body the handler asked for
BUSY = 3  # handler running or response being sent

#: Bytes read from a file per worker-thread call when sendfile is not possible.
FILE_CHUNK_SIZE = 256 * 1024
#: Statuses whose responses never carry a body or a Content-Length we compute.
_NO_BODY_STATUSES = frozenset({204, 304})
#: How long, and how much, to read and discard before closing after an error.
#: Time is the real bound (as nginx's lingering_time); the byte cap only stops a
#: peer on a fast link from keeping a task busy for the whole period. Too small a
#: cap (it was 1 MiB) resets clients still sending a refused upload, losing the 413.
LINGER_TIMEOUT = 2.0
LINGER_MAX_BYTES = 64 * 1024 * 1024


class PeerGone(Exception):
    """The peer closed or reset the connection; nothing more can be sent."""


class _DateCache:
    """``Date`` header value, formatted at most once per second."""

    __slots__ = ("second", "value")

    def __init__(self) -> None:
        self.second = -1
        self.value = b""

    def get(self) -> bytes:
        now = int(time.time())
        if now != self.second:
            self.second = now
            self.value = formatdate(now, usegmt=True).encode("ascii")
        return self.value


http_date = _DateCache()


class _FileSegment:
    """A placeholder that h11 frames like ``count`` bytes of body data.

    Passed through ``send_with_data_passthrough`` so that h11 keeps counting
    Content-Length (or writes the chunk header) while the bytes themselves go
    out through ``os.sendfile``.
    """

    __slots__ = ("count", "fd", "offset")

    def __init__(self, fd: int, offset: int, count: int) -> None:
        self.fd, self.offset, self.count = fd, offset, count

    def __len__(self) -> int:
        return self.count


class HTTPConnection:
    """An h11 server connection over ``stream``; one per accepted client."""

    def __init__(
        self,
        stream: trio.abc.Stream,
        config: ServerConfig,
        *,
        client: tuple[str, int] | None = None,
        scheme: str = "http",
    ) -> None:
        self.stream = stream
        self.config = config
        self.client = client
        self.scheme = scheme
        self.h11 = h11.Connection(
            h11.SERVER,
            max_incomplete_event_size=config.max_header_size + config.max_target_length,
        )
        self.requests_served = 0
        #: Set once :meth:`switch_protocols` handed the stream to another protocol.
        self.switched = False
        #: Set when the server shuts down: finish the current response, then close.
        self.shutdown_requested = trio.Event()
        #: Called (synchronously) at shutdown; an upgraded protocol registers here
        #: instead of keeping a task per connection waiting on the event.
        self.shutdown_callbacks: list[Callable[[], None]] = []
        #: The one cancel scope the server runs this connection in.
        self.scope = trio.CancelScope()
        #: Absolute trio time past which the sweeper cancels :attr:`scope`.
        self.deadline = math.inf
        self.phase = IDLE
        #: The phase the connection was in when its deadline expired.
        self.expired_phase: int | None = None
        self._server_header = config.server_header.encode("latin-1")
        socket_stream = stream if isinstance(stream, trio.SocketStream) else None
        #: True on plain TCP, where file bodies go out with ``os.sendfile``.
        self.supports_sendfile = socket_stream is not None and hasattr(os, "sendfile")

    # -- reading ---------------------------------------------------------------

    async def _receive(self) -> bytes:
        """One read (``b""`` at EOF); a reset or closed stream raises :class:`PeerGone`."""
        try:
            data = await self.stream.receive_some(self.config.receive_size)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise PeerGone(str(exc)) from exc
        return data if type(data) is bytes else bytes(data)

    def expire(self) -> None:
        """Called by the server's sweeper when :attr:`deadline` has passed."""
        self.expired_phase = self.phase
        self.deadline = math.inf
        self.scope.cancel()

    async def handle_expiry(self) -> None:
        """After :attr:`scope` was cancelled by a deadline: answer 408 if a request was pending."""
        phase = self.expired_phase
        if phase == HEAD or (phase == BODY and self.h11.our_state is h11.SEND_RESPONSE):
            what = "request head" if phase == HEAD else "request body"
            log.info("%s: %s not received within %ss", self._peer(), what, self.config.header_timeout)
            with trio.move_on_after(self.config.header_timeout):
                await self.send_error(408)

    async def next_request(self) -> h11.Request | None:
        """Pull the next request head; ``None`` when the connection should end.

        Ends quietly on EOF, idle timeout or shutdown between requests; answers
        408 to a head that did not complete in time, and the right 4xx to a
        malformed one (h11's status hint), then ends.
        """
        h = self.h11
        cfg = self.config
        self.phase = IDLE
        wait = cfg.keepalive_timeout if self.requests_served else cfg.header_timeout
        self.deadline = trio.current_time() + wait
        while True:
            try:
                event = h.next_event()
            except h11.RemoteProtocolError as exc:
                await self._refuse_head(exc)
                return None
            if event is h11.NEED_DATA:
                if self.phase == IDLE and self.shutdown_requested.is_set():
                    return None
                data = await self._receive()
                if self.phase == IDLE and data:
                    self.phase = HEAD
                    if self.requests_served:
                        # The first request's head is due header_timeout after accept.
                        self.deadline = trio.current_time() + cfg.header_timeout
                h.receive_data(data)
                continue
            self.phase = BUSY
            self.deadline = math.inf
            if type(event) is h11.Request:
                return await self._check_head(event)
            # ConnectionClosed (EOF between requests) or PAUSED after a close.
            return None

    async def _check_head(self, event: h11.Request) -> h11.Request | None:
        cfg = self.config
        if not event.http_version.startswith(b"1."):
            # e.g. the HTTP/2 preface "PRI * HTTP/2.0": RFC 9110 §15.6.6.
            log.info("%s: HTTP/%s refused", self._peer(), event.http_version.decode("ascii", "replace"))
            await self.send_error(505)
            return None
        if len(event.target) > cfg.max_target_length:
            log.info("%s: request-target of %d bytes refused", self._peer(), len(event.target))
            await self.send_error(414)
            return None
        size = 0
        framing = 0
        for name, value in event.headers:
            size += len(name) + len(value) + 4
            if name == b"content-length":
                framing |= 1
            elif name == b"transfer-encoding":
                framing |= 2
        if size > cfg.max_header_size:
            log.info("%s: %d bytes of headers refused", self._peer(), size)
            await self.send_error(431)
            return None
        if framing == 3:
            # RFC 9112 §6.1: both framings at once is how requests are smuggled
            # past proxies; refuse rather than guess which one a proxy used.
            log.info("%s: Content-Length with Transfer-Encoding refused", self._peer())
            await self.send_error(400, "Content-Length and Transfer-Encoding together")
            return None
        if framing == 0:
            # No body: let h11 reach EndOfMessage now, so keep-alive is decided
            # on a request that is complete.
            self.h11.next_event()
        return event

    async def _refuse_head(self, exc: h11.RemoteProtocolError) -> None:
        status = exc.error_status_hint
        if status == 431:
            # h11 only knows the head was too big; a request line that alone
            # exceeds the target limit is a 414 (RFC 9110 §15.5.15).
            buffered = self.h11.trailing_data[0]
            line_end = buffered.find(b"\n", 0, self.config.max_target_length + 32)
            if line_end < 0 and len(buffered) > self.config.max_target_length:
                status = 414
        log.info("%s: bad request (%d): %s", self._peer(), status, exc)
        await self.send_error(status)

    async def linger(self) -> None:
        """Close gracefully after an error response while the peer may still be sending.

        Closing a socket with unread input makes the kernel send RST, which can
        destroy the response before the client reads it. Like nginx's
        ``lingering_close``: half-close our side, then read and discard for a
        short, bounded while.
        """
        try:
            if isinstance(self.stream, trio.abc.HalfCloseableStream):
                await self.stream.send_eof()
            with trio.move_on_after(LINGER_TIMEOUT):
                discarded = 0
                while discarded < LINGER_MAX_BYTES:
                    data = await self.stream.receive_some(self.config.receive_size)
                    if not data:
                        break
                    discarded += len(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass

    async def _next_body_event(self) -> h11.Data | h11.EndOfMessage:
        h = self.h11
        while True:
            try:
                event = h.next_event()
            except h11.RemoteProtocolError as exc:
                raise HTTPError(exc.error_status_hint, f"malformed request body: {exc}") from exc
            if event is h11.NEED_DATA:
                self.phase = BODY
                self.deadline = trio.current_time() + self.config.header_timeout
                data = await self._receive()
                self.phase = BUSY
                self.deadline = math.inf
                if not data:
                    raise PeerGone("peer closed the connection mid-body")
                h.receive_data(data)
                continue
            if isinstance(event, h11.Data | h11.EndOfMessage):
                return event
            # PAUSED after an upgrade request: there is no body.
            return _END

    async def iter_body(self, max_size: int | None = None) -> AsyncIterator[bytes]:
        """Yield request-body chunks as they arrive, enforcing ``max_size``."""
        limit = self.config.max_body_size if max_size is None else max_size
        h = self.h11
        if h.their_state is not h11.SEND_BODY:
            return
        declared = _content_length(self._current_headers)
        if declared is not None and declared > limit:
            raise RequestBodyTooLarge(limit)
        if h.they_are_waiting_for_100_continue:
            await self.send_all(
                h.send(h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue"))
            )
        received = 0
        while True:
            event = await self._next_body_event()
            if type(event) is h11.EndOfMessage:
                return
            assert isinstance(event, h11.Data)
            received += len(event.data)
            if received > limit:
                raise RequestBodyTooLarge(limit)
            yield bytes(event.data)

    async def read_body(self, max_size: int | None = None) -> bytes:
        """The whole request body (see :meth:`iter_body`)."""
        return b"".join([chunk async for chunk in self.iter_body(max_size)])

    _current_headers: Sequence[tuple[bytes, bytes]] = ()

    def make_request(self, event: h11.Request, nursery: trio.Nursery | None) -> Request:
        """Wrap an h11 request head for the handler."""
        self._current_headers = event.headers
        return Request(
            event.method.decode("ascii"),
            event.target,
            event.headers,
            http_version=event.http_version.decode("ascii"),
            client=self.client,
            scheme=self.scheme,
            conn=self,
            nursery=nursery,
        )

    # -- writing ---------------------------------------------------------------

    async def send_all(self, data: bytes) -> None:
        """Write ``data``; a failure or cancellation marks h11's state as broken."""
        saved = self.deadline
        self.deadline = trio.current_time() + self.config.send_timeout
        try:
            await self.stream.send_all(data)
        except BaseException as exc:
            self.h11.send_failed()
            if isinstance(exc, trio.BrokenResourceError | trio.ClosedResourceError):
                raise PeerGone(str(exc)) from exc
            raise
        self.deadline = saved

    def _base_headers(self, extra: Sequence[tuple[str, str]]) -> tuple[list[tuple[bytes, bytes]], int]:
        """Date, Server and the caller's headers.

        Also returns which framing headers the caller set: ``_HAS_LENGTH`` and
        ``_HAS_CONNECTION`` bits, so that we never add a second one.
        """
        headers = [(b"date", http_date.get())]
        if self._server_header:
            headers.append((b"server", self._server_header))
        present = 0
        for name, value in extra:
            raw = name.encode("latin-1")
            encoded = value.encode("latin-1")
            if _is_token(raw) is None or _bad_value(encoded) is not None:
                raise h11.LocalProtocolError(f"invalid response header {raw!r}: {encoded!r}")
            size = len(raw)
            if size == 14 and raw.lower() == b"content-length":
                present |= _HAS_LENGTH
            elif size == 10 and raw.lower() == b"connection":
                present |= _HAS_CONNECTION
            headers.append((raw, encoded))
        return headers, present

    def _head(self, request: Request | None, response: Response, length: int | None) -> h11.Response:
        headers, present = self._base_headers(response.headers)
        status = response.status
        if (
            length is not None
            and not present & _HAS_LENGTH
            and status >= 200
            and status not in _NO_BODY_STATUSES
        ):
            headers.append((b"content-length", b"%d" % length))
        if not present & _HAS_CONNECTION and self._should_close(request):
            headers.append((b"connection", b"close"))
        reason = response.reason.encode("latin-1")
        if _bad_value(reason) is not None:
            raise h11.LocalProtocolError(f"invalid reason phrase {reason!r}")
        # Every header was checked above (or is ours), so h11's per-header regexes
        # are skipped: they were the largest single cost of a small response.
        return h11.Response(status_code=status, headers=headers, reason=reason, _parsed=True)

    def _should_close(self, request: Request | None) -> bool:
        h = self.h11
        if request is None or self.shutdown_requested.is_set():
            return True
        if self.requests_served + 1 >= self.config.max_requests_per_connection:
            return True
        if h.their_state is h11.SEND_BODY:
            # The body is still unread: a client waiting for 100-continue will
            # not send it; a large one is not worth draining (RFC 9110 §10.1.1).
            if h.they_are_waiting_for_100_continue:
                return True
            declared = _content_length(request.headers)
            return declared is None or declared > self.config.max_drain_size
        return False

    async def send_response(self, request: Request | None, response: Response) -> None:
        """Frame and send ``response``; HEAD (or a 304) sends the head only."""
        h = self.h11
        body = response.body
        head_only = (request is not None and request.method == "HEAD") or (
            response.status in _NO_BODY_STATUSES
        )
        if isinstance(body, bytes):
            pieces = [h.send(self._head(request, response, len(body)))]
            if body and not head_only:
                # Passthrough: h11 frames the body without joining it, so the body is
                # copied once (into the single write below), not twice.
                framed = h.send_with_data_passthrough(h11.Data(data=body))
                assert framed is not None  # None only after ConnectionClosed
                pieces.extend(framed)
            pieces.append(h.send(_END))
            await self.send_all(b"".join(pieces))
        elif isinstance(body, AsyncIterable):
            await self.send_all(h.send(self._head(request, response, None)))
            if not head_only:
                async for chunk in body:
                    if chunk:
                        await self.send_all(h.send(h11.Data(data=chunk)))
            await self.send_all(h.send(_END))
        else:
            assert not isinstance(body, str)  # Response encodes str bodies
            await self._send_produced(request, response, body, head_only)
        self.requests_served += 1

    async def _send_produced(
        self, request: Request | None, response: Response, body: BodyProducer, head_only: bool
    ) -> None:
        h = self.h11
        await self.send_all(h.send(self._head(request, response, body.length)))
        if not head_only:
            await body.produce(_Sink(self))
        end = h.send(_END)
        if end:  # b"" with Content-Length: no need for a trip through the scheduler
            await self.send_all(end)

    async def send_error(self, status: int, message: str | None = None) -> None:
        """Answer ``status`` and mark the connection for closing, if h11 still allows a response."""
        if self.h11.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        try:
            await self.send_response(None, Response.error(status, message))
        except (PeerGone, h11.LocalProtocolError):
            return
        await self.linger()

    async def finish_cycle(self) -> bool:
        """After a response: drain a small unread body and get ready for the next request.

        Returns False when the connection must close instead.
        """
        h = self.h11
        if h.our_state is not h11.DONE:
            return False
        drained = 0
        while h.their_state is h11.SEND_BODY:
            event = await self._next_body_event()
            if isinstance(event, h11.Data):
                drained += len(event.data)
                if drained > self.config.max_drain_size:
                    return False
        if h.their_state is not h11.DONE:
            return False
        h.start_next_cycle()
        return True

    async def switch_protocols(self, headers: Sequence[tuple[str, str]]) -> tuple[trio.abc.Stream, bytes]:
        """Send ``101 Switching Protocols``; return the stream and the bytes after the head."""
        h = self.h11
        head = h11.InformationalResponse(
            status_code=101,
            headers=self._base_headers(headers)[0],
            reason=b"Switching Protocols",
            _parsed=True,
        )
        data = h.send(head)
        await self.send_all(data)
        self.switched = True
        self.requests_served += 1
        return self.stream, h.trailing_data[0]

    # -- lifecycle -------------------------------------------------------------

    def request_shutdown(self) -> None:
        """Server shutdown: stop waiting for a next request; close after the current one."""
        self.shutdown_requested.set()
        if self.phase == IDLE:
            self.scope.cancel()
        for callback in self.shutdown_callbacks:
            callback()

    def _peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "peer"


class _Sink:
    """:class:`~trio_ws.request.BodySink` over an :class:`HTTPConnection`."""

    __slots__ = ("_conn", "supports_sendfile")

    def __init__(self, conn: HTTPConnection) -> None:
        self._conn = conn
        self.supports_sendfile = conn.supports_sendfile

    async def send(self, data: bytes) -> None:
        if data:
            await self._conn.send_all(self._conn.h11.send(h11.Data(data=data)))

    async def sendfile(self, fd: int, offset: int, count: int) -> None:
        if count <= 0:
            return
        conn = self._conn
        if not self.supports_sendfile:
            await _copy_file(self, fd, offset, count)
            return
        segment = _FileSegment(fd, offset, count)
        pieces = conn.h11.send_with_data_passthrough(h11.Data(data=segment))  # type: ignore[arg-type]
        assert pieces is not None
        for piece in pieces:
            if isinstance(piece, _FileSegment):
                try:
                    await _sendfile(conn, piece)
                except BaseException:
                    conn.h11.send_failed()
                    raise
            else:
                await conn.send_all(bytes(piece))


async def _copy_file(sink: _Sink, fd: int, offset: int, count: int) -> None:
    """Read the file in worker threads, chunk by chunk, each paced by ``send_all``."""
    end = offset + count
    while offset < end:
        size = min(FILE_CHUNK_SIZE, end - offset)
        chunk = await trio.to_thread.run_sync(os.pread, fd, size, offset)
        if not chunk:
            raise OSError(f"file ended {end - offset} bytes early (it shrank while being sent)")
        await sink.send(chunk)
        offset += len(chunk)


async def _sendfile(conn: HTTPConnection, segment: _FileSegment) -> None:
    """Zero-copy ``os.sendfile`` loop, driven by trio's ``wait_writable``."""
    stream = conn.stream
    assert isinstance(stream, trio.SocketStream)
    sock = stream.socket
    out_fd = sock.fileno()
    offset, left = segment.offset, segment.count
    while left:
        try:
            sent = os.sendfile(out_fd, segment.fd, offset, left)
        except BlockingIOError:
            sent = 0
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise PeerGone(str(exc)) from exc
        else:
            if sent == 0:
                raise OSError(f"file ended {left} bytes early (it shrank while being sent)")
            offset += sent
            left -= sent
        if left:
            # Short or refused: the socket buffer is full, so wait for room rather
            # than checkpoint and retry into EAGAIN. Nothing left: no extra trip
            # through the scheduler (the next read on this connection yields).
            conn.deadline = trio.current_time() + conn.config.send_timeout
            await trio.lowlevel.wait_writable(sock)
            conn.deadline = math.inf


def _content_length(headers: Sequence[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            return int(value)  # h11 has validated it is all digits
    return None
