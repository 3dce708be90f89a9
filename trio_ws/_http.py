"""One HTTP/1.1 connection: an ``h11.Connection`` driven over a trio stream.

Theory of operation
-------------------
Everything is *pulled*. :meth:`HTTPConnection.next_request` reads the socket
only while a head is incomplete and returns the next request head; the body
stays in the socket until the handler asks for it (:meth:`read_body`,
:meth:`iter_body`). There is no background reader and no queue: the TCP window
is the backpressure. h11 is the parser of record; the simple bodyless heads
nearly every client sends are read by the fast path of
:mod:`trio_ws.sansio.http_head` (same result, a tenth of the cost), which is
tried on the first bytes of each request. Every request starts with a fresh
``h11.Connection``; bytes that arrived after the previous request wait in
``_leftover`` (pipelining). Responses are written by
:class:`~trio_ws._http_write.HTTPWriter` (directly, or framed by h11); a write
that fails or is cancelled half-way closes the connection (a half-sent response
cannot be repaired).

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
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING

import h11
import trio

from ._direct_io import OPS_PER_YIELD, read_direct
from ._http_write import (
    DIRECT_KEEP,
    NOT_DIRECT,
    HTTPWriter,
    PeerGone,
    content_length,
)
from .exceptions import HTTPError, RequestBodyTooLarge
from .request import Request, Response
from .sansio.http_head import RequestHead, parse_simple_head

if TYPE_CHECKING:
    from .config import ServerConfig

__all__ = ["HTTPConnection", "PeerGone"]

log = logging.getLogger("trio_ws.http")

#: Connection phases, for deadlines and graceful shutdown.
IDLE = 0  # waiting for the first byte of a request
HEAD = 1  # receiving a request head
BODY = 2  # receiving a request body the handler asked for
BUSY = 3  # handler running or response being sent

#: How long, and how much, to read and discard before closing after an error.
#: Time is the real bound (as nginx's lingering_time); the byte cap only stops a
#: peer on a fast link from keeping a task busy for the whole period. Too small a
#: cap (it was 1 MiB) resets clients still sending a refused upload, losing the 413.
LINGER_TIMEOUT = 2.0
LINGER_MAX_BYTES = 64 * 1024 * 1024


class HTTPConnection(HTTPWriter):
    """An h11 server connection over ``stream``; one per accepted client.

    Reading, request bodies and the life cycle are here; writing responses is
    :class:`~trio_ws._http_write.HTTPWriter`'s.
    """

    __slots__ = (
        "_more",
        "client",
        "expired_phase",
        "phase",
        "scheme",
        "scope",
        "shutdown_callbacks",
        "switched",
    )

    def __init__(
        self,
        stream: trio.abc.Stream,
        config: ServerConfig,
        *,
        client: tuple[str, int] | None = None,
        scheme: str = "http",
    ) -> None:
        super().__init__(stream, config)
        self.client = client
        self.scheme = scheme
        #: Set once :meth:`switch_protocols` handed the stream to another protocol.
        self.switched = False
        #: Called (synchronously) at shutdown; an upgraded protocol registers here
        #: instead of keeping a task per connection waiting on the event.
        self.shutdown_callbacks: list[Callable[[], None]] = []
        #: The one cancel scope the server runs this connection in.
        self.scope = trio.CancelScope()
        self.phase = IDLE
        #: The phase the connection was in when its deadline expired.
        self.expired_phase: int | None = None
        #: False once a read came back short: the socket is then (almost surely)
        #: empty, and the next read waits for readability before reading.
        self._more = True

    # -- reading ---------------------------------------------------------------

    async def _receive(self) -> bytes:
        """One read (``b""`` at EOF); a reset or closed stream raises :class:`PeerGone`.

        On plain TCP the socket is read directly (see ``_http_write`` on trips
        through the scheduler): at once if data may be waiting, else after
        waiting for readability, never into ``EAGAIN`` and back.
        """
        fd = self._fd
        if fd < 0:
            try:
                data = await self.stream.receive_some(self.config.receive_size)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise PeerGone(str(exc)) from exc
            return data if type(data) is bytes else bytes(data)
        size = self.config.receive_size
        at_once = self._more and self._unyielded < OPS_PER_YIELD
        try:
            data = await read_direct(fd, size, at_once=at_once)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:  # ECONNRESET...
            raise PeerGone(str(exc)) from exc
        self._unyielded = self._unyielded + 1 if at_once else 0  # a wait yielded
        self._more = len(data) == size
        return data

    def expire(self) -> None:
        """Called by the server's sweeper when :attr:`deadline` has passed."""
        self.expired_phase = self.phase
        self.deadline = math.inf
        self.scope.cancel()

    async def handle_expiry(self) -> None:
        """After :attr:`scope` was cancelled by a deadline: answer 408 if a request was pending."""
        phase = self.expired_phase
        if phase == HEAD or (phase == BODY and self.can_respond()):
            what = "request head" if phase == HEAD else "request body"
            log.info("%s: %s not received within %ss", self._peer(), what, self.config.header_timeout)
            with trio.move_on_after(self.config.header_timeout):
                await self.send_error(408)

    async def next_request(self) -> RequestHead | None:
        """Pull the next request head; ``None`` when the connection should end.

        Ends quietly on EOF, idle timeout or shutdown between requests; answers
        408 to a head that did not complete in time, and the right 4xx to a
        malformed one (h11's status hint), then ends. A complete, simple,
        bodyless head is read by :func:`~trio_ws.sansio.http_head.parse_simple_head`
        (h11 then sees it only if the response needs h11); all else by h11.
        """
        h = self.h11  # fresh: every cycle starts with a new parser (finish_cycle)
        cfg = self.config
        self.phase = IDLE
        wait = cfg.keepalive_timeout if self.requests_served else cfg.header_timeout
        self.deadline = trio.current_time() + wait
        self._fast_head = None
        data = self._leftover
        self._leftover = b""
        if not data:
            if self.shutdown_requested.is_set():
                return None
            data = await self._read_head_bytes()
        parsed = parse_simple_head(data) if data else None
        if parsed is not None:
            head, end = parsed
            self._fast_head = data[:end]
            self._leftover = data[end:]
            self.phase = BUSY
            self.deadline = math.inf
            return await self._check_head(head)
        h.receive_data(data)  # b"": EOF, which h11 reports as ConnectionClosed
        while True:
            try:
                event = h.next_event()
            except h11.RemoteProtocolError as exc:
                await self._refuse_head(exc)
                return None
            if event is h11.NEED_DATA:
                if self.phase == IDLE and self.shutdown_requested.is_set():
                    return None
                h.receive_data(await self._read_head_bytes())
                continue
            self.phase = BUSY
            self.deadline = math.inf
            if type(event) is h11.Request:
                head = RequestHead(event.method, event.target, list(event.headers), event.http_version)
                return await self._check_head(head)
            # ConnectionClosed (EOF between requests) or PAUSED after a close.
            return None

    async def _read_head_bytes(self) -> bytes:
        """A read while waiting for a head: the first byte starts the head's deadline."""
        data = await self._receive()
        if self.phase == IDLE and data:
            self.phase = HEAD
            if self.requests_served:
                # The first request's head is due header_timeout after accept.
                self.deadline = trio.current_time() + self.config.header_timeout
        return data

    async def _check_head(self, event: RequestHead) -> RequestHead | None:
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
        # RFC 9112 §9.3: HTTP/1.1 is persistent unless the client says "close"
        # (h11's rule, which decides it when h11 sends the response).
        keep_alive = event.http_version >= b"1.1"
        headers = event.headers
        for name, value in headers:
            size += len(name) + len(value) + 4
            if name == b"content-length":
                framing |= 1
            elif name == b"transfer-encoding":
                framing |= 2
            elif name == b"connection" and keep_alive:
                keep_alive = b"close" not in [token.strip(b" \t") for token in value.lower().split(b",")]
        self._keep_alive = keep_alive
        self._current_headers = headers
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
        if framing == 0 and self._fast_head is None:
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
            return h11.EndOfMessage()

    async def iter_body(self, max_size: int | None = None) -> AsyncIterator[bytes]:
        """Yield request-body chunks as they arrive, enforcing ``max_size``."""
        limit = self.config.max_body_size if max_size is None else max_size
        h = self.h11
        if h.their_state is not h11.SEND_BODY:
            return
        declared = content_length(self._current_headers)
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

    def make_request(self, event: RequestHead, nursery: trio.Nursery | None) -> Request:
        """Wrap the request head :meth:`next_request` returned for the handler."""
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

    async def send_error(self, status: int, message: str | None = None) -> None:
        """Answer ``status`` and mark the connection for closing, if a response may still be sent."""
        if not self.can_respond():
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
        direct = self._direct
        if direct != NOT_DIRECT:
            self._direct = NOT_DIRECT
            if direct != DIRECT_KEEP:
                return False
            self._next_parser()
            return True
        h = self.h11
        if h.our_state is h11.DONE:
            drained = 0
            while h.their_state is h11.SEND_BODY and drained <= self.config.max_drain_size:
                event = await self._next_body_event()
                if isinstance(event, h11.Data):
                    drained += len(event.data)
            if h.their_state is h11.DONE:
                self._next_parser()
                return True
        if h.their_state is h11.SEND_BODY:
            # The client may still be sending a body we will not read: closing
            # now would reset the connection and could destroy the response
            # before the client reads it (RFC 9112 §9.6).
            await self.linger()
        return False

    def _next_parser(self) -> None:
        """A fresh h11 parser for the next request; the bytes after this one wait in ``_leftover``.

        (Rather than ``start_next_cycle``, which needs h11 to have seen our
        response: a direct one it has not.) Those bytes are either ours (a head
        the fast path read: h11 has at most that head) or h11's (its buffer):
        one of the two is empty. EOF cannot be among them: a response needs a
        complete request, and no read follows a complete request before it.
        """
        self._leftover += self.h11.trailing_data[0]
        self.h11 = self._new_parser()

    async def switch_protocols(self, headers: Sequence[tuple[str, str]]) -> tuple[trio.abc.Stream, bytes]:
        """Send ``101 Switching Protocols``; return the stream and the bytes after the head."""
        await self.send_switch(headers)
        self.switched = True
        self.requests_served += 1
        return self.stream, self._leftover + self.h11.trailing_data[0]

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
