"""The response side of an HTTP/1.1 connection: heads, bodies, and the write path.

Theory of operation
-------------------
:class:`HTTPWriter` is the base class of :class:`~trio_ws._http.HTTPConnection`
(which adds reading and the connection's life cycle). A response leaves by one
of two ways, chosen per response in :meth:`HTTPWriter.send_response`:

* **direct** — the common case: a final status (200-999), a body of known
  length (``bytes``, or a producer with a ``length``), no framing header set
  by the handler (Content-Length, Transfer-Encoding, Connection), and a request
  read to its end (by h11, or by the fast path of :mod:`trio_ws.sansio.http_head`,
  whose heads h11 does not even see unless a response needs h11:
  :meth:`HTTPWriter._h11_catch_up`). The head is formatted here from headers validated
  here (:meth:`HTTPWriter._base_headers`) and leaves *with* the body: ``bytes``
  bodies in one ``writev`` (no join, no copy), a producer's first piece
  carries the head. h11 never sees such a response. It would re-check the
  headers we just checked, rebuild the head object, and run its state machine
  for head, data and end of message: ~25 µs a response on the development
  machine, more than the rest of this layer. Its two duties are done here
  instead: Content-Length is ours and a producer writing more or less than its
  ``length`` raises :class:`h11.LocalProtocolError` as h11 would; keep-alive
  follows RFC 9112 §9.3 as h11 does (an HTTP/1.0 request or ``Connection:
  close`` from the client, or a reason of ours → ``Connection: close``, then
  the connection ends). For the next request a fresh ``h11.Connection`` takes
  over the bytes received after the request (pipelining): ~1 µs.
* **h11** — everything else (streamed or chunked bodies, a handler's own
  framing headers, an unread request body, answers to malformed requests): h11
  frames and checks the response as before.

Writes on plain TCP go straight to the socket (``os.writev``, non-blocking)
while the kernel takes all of it; only what it does not take goes through
trio's ``send_all``, which waits for room under the ``send_timeout`` deadline.
A trip through the scheduler costs as much as a small response, so a write that
completes does not yield; to stay fair to other tasks the connection yields at
least every ``OPS_PER_YIELD`` such writes or reads (a read that waits yields
anyway). TLS and in-memory streams always use ``send_all``.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Sequence
from email.utils import formatdate
from typing import TYPE_CHECKING

import h11
import trio

from ._direct_io import OPS_PER_YIELD, plain_tcp_fd, write_direct
from .request import BodyProducer, Request, Response

if TYPE_CHECKING:
    from .config import ServerConfig

__all__ = ["FILE_CHUNK_SIZE", "HTTPWriter", "PeerGone", "format_head", "http_date"]

#: RFC 9110 §5.1 field names are tokens; §5.5 values never hold CR, LF, NUL or other controls.
_is_token = re.compile(rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+").fullmatch
_bad_value = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]").search
#: Events are immutable: one end-of-message serves every response.
_END = h11.EndOfMessage()

#: Which framing headers a handler set itself (bits of ``_base_headers``'s second result).
_HAS_LENGTH = 1
_HAS_CONNECTION = 2
_HAS_TRANSFER_ENCODING = 4

#: Bytes read from a file per worker-thread call when sendfile is not possible.
FILE_CHUNK_SIZE = 256 * 1024
#: Statuses whose responses never carry a body or a Content-Length we compute.
_NO_BODY_STATUSES = frozenset({204, 304})

#: The client's state after a request that proposed a switch (in h11's namespace, not its __all__).
_MIGHT_SWITCH_PROTOCOL = h11.MIGHT_SWITCH_PROTOCOL  # type: ignore[attr-defined]

#: States of a direct response (``HTTPWriter._direct``).
NOT_DIRECT = 0  # none this cycle (h11 has the response, or nothing was sent yet)
DIRECT_STARTED = 1  # bytes may be on the wire: nothing else may be sent
DIRECT_KEEP = 2  # complete; the connection may serve another request
DIRECT_CLOSE = 3  # complete; the connection must close


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


#: Framing headers a handler may set, and the ``_HAS_*`` bit each sets.
_FRAMING = {
    b"content-length": _HAS_LENGTH,
    b"connection": _HAS_CONNECTION,
    b"transfer-encoding": _HAS_TRANSFER_ENCODING,
}
#: Response header names already checked: name → (bytes, ``_HAS_*`` bit). The
#: same few names come back on every response; the bound keeps a handler that
#: makes names up from growing it.
_checked_names: dict[str, tuple[bytes, int]] = {}
_CHECKED_NAMES_MAX = 512


def _check_name(name: str, value: str) -> tuple[bytes, int]:
    """``name`` as bytes and its framing bit, once it is known to be a token (RFC 9110 §5.1)."""
    raw = name.encode("latin-1")
    if _is_token(raw) is None:
        raise h11.LocalProtocolError(f"invalid response header {raw!r}: {value.encode('latin-1')!r}")
    known = (raw, _FRAMING.get(raw.lower(), 0))
    if len(_checked_names) < _CHECKED_NAMES_MAX:
        _checked_names[name] = known
    return known


def format_head(status: int, reason: bytes, headers: Sequence[tuple[bytes, bytes]]) -> bytes:
    """``HTTP/1.1 status reason``, the header lines and the blank line, as h11 writes them.

    The caller has validated every name and value (RFC 9110 §5.1, §5.5).
    """
    lines = b"".join([b"%s: %s\r\n" % header for header in headers])
    return b"HTTP/1.1 %d %s\r\n%s\r\n" % (status, reason, lines)


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


class HTTPWriter:
    """Response writing for an h11 server connection over ``stream`` (module docstring)."""

    # Slots: a connection held by an upgraded WebSocket lives as long as it does.
    __slots__ = (
        "_current_headers",
        "_direct",
        "_fast_head",
        "_fd",
        "_keep_alive",
        "_leftover",
        "_server_header",
        "_unyielded",
        "config",
        "deadline",
        "h11",
        "requests_served",
        "shutdown_requested",
        "stream",
        "supports_sendfile",
    )

    def __init__(self, stream: trio.abc.Stream, config: ServerConfig) -> None:
        self.stream = stream
        self.config = config
        self.h11 = self._new_parser()
        self.requests_served = 0
        #: Set when the server shuts down: finish the current response, then close.
        self.shutdown_requested = trio.Event()
        #: The head of the request being answered.
        self._current_headers: Sequence[tuple[bytes, bytes]] = ()
        #: Absolute trio time past which the server's sweeper cancels the connection.
        self.deadline = math.inf
        self._server_header = config.server_header.encode("latin-1")
        #: The socket's descriptor on plain TCP (direct reads and writes), else -1.
        self._fd = plain_tcp_fd(stream)
        #: True on plain TCP, where file bodies go out with ``os.sendfile``.
        self.supports_sendfile = self._fd >= 0 and hasattr(os, "sendfile")
        #: Reads and writes done since the last trip through the scheduler.
        self._unyielded = 0
        #: Whether the client allows another request after this one (RFC 9112 §9.3).
        self._keep_alive = True
        self._direct = NOT_DIRECT
        #: The current request's head when the fast path read it (h11 has not
        #: seen it yet: :meth:`_h11_catch_up`), else None.
        self._fast_head: bytes | None = None
        #: Bytes received after the current request, not given to h11.
        self._leftover = b""

    def _new_parser(self) -> h11.Connection:
        limit = self.config.max_header_size + self.config.max_target_length
        return h11.Connection(h11.SERVER, max_incomplete_event_size=limit)

    # -- the write path --------------------------------------------------------

    async def _write(self, buffers: Sequence[bytes]) -> None:
        """Write ``buffers`` in order; :class:`PeerGone` if the peer is gone (module docstring)."""
        fd = self._fd
        data: bytes | memoryview
        if fd >= 0 and self._unyielded < OPS_PER_YIELD:
            try:
                sent = write_direct(fd, buffers)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:  # EPIPE, ECONNRESET...
                raise PeerGone(str(exc)) from exc
            if sent == sum(map(len, buffers)):
                self._unyielded += 1
                return
            data = memoryview(buffers[0] if len(buffers) == 1 else b"".join(buffers))[sent:]
        else:
            data = buffers[0] if len(buffers) == 1 else b"".join(buffers)
        self._unyielded = 0
        saved = self.deadline
        self.deadline = trio.current_time() + self.config.send_timeout
        try:
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise PeerGone(str(exc)) from exc
        self.deadline = saved

    async def send_all(self, data: bytes) -> None:
        """Write ``data`` for h11; a failure or cancellation marks h11's state as broken."""
        try:
            await self._write((data,))
        except BaseException:
            self.h11.send_failed()
            raise

    # -- heads -------------------------------------------------------------------

    def _base_headers(self, extra: Sequence[tuple[str, str]]) -> tuple[list[tuple[bytes, bytes]], int]:
        """Date, Server and the caller's headers, each name and value checked.

        Also returns which framing headers the caller set (``_HAS_*`` bits), so
        that we never add a second one.
        """
        headers = [(b"date", http_date.get())]
        if self._server_header:
            headers.append((b"server", self._server_header))
        present = 0
        names = _checked_names
        for name, value in extra:
            known = names.get(name)
            if known is None:
                known = _check_name(name, value)
            raw, bit = known
            present |= bit
            encoded = value.encode("latin-1")
            if _bad_value(encoded) is not None:
                raise h11.LocalProtocolError(f"invalid response header {raw!r}: {encoded!r}")
            headers.append((raw, encoded))
        return headers, present

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
            declared = content_length(request.headers)
            return declared is None or declared > self.config.max_drain_size
        return False

    def _h11_head(
        self,
        request: Request | None,
        status: int,
        reason: bytes,
        headers: list[tuple[bytes, bytes]],
        present: int,
        length: int | None,
    ) -> h11.Response:
        if (
            length is not None
            and not present & _HAS_LENGTH
            and status >= 200
            and status not in _NO_BODY_STATUSES
        ):
            headers.append((b"content-length", b"%d" % length))
        if not present & _HAS_CONNECTION and self._should_close(request):
            headers.append((b"connection", b"close"))
        # Every header was checked in _base_headers (or is ours), so h11's
        # per-header regexes are skipped.
        return h11.Response(status_code=status, headers=headers, reason=reason, _parsed=True)

    # -- responses ---------------------------------------------------------------

    def can_respond(self) -> bool:
        """Whether nothing of a response to the current request has been sent yet."""
        return self._direct == NOT_DIRECT and self.h11.our_state in (h11.IDLE, h11.SEND_RESPONSE)

    async def send_response(self, request: Request | None, response: Response) -> None:
        """Frame and send ``response``; HEAD (or a 204/304) sends the head only."""
        h = self.h11
        body = response.body
        status = response.status
        head_only = (request is not None and request.method == "HEAD") or status in _NO_BODY_STATUSES
        headers, present = self._base_headers(response.headers)
        reason = response.reason.encode("latin-1")
        if _bad_value(reason) is not None:
            raise h11.LocalProtocolError(f"invalid reason phrase {reason!r}")
        length: int | None
        if isinstance(body, bytes):
            length = len(body)
        elif isinstance(body, AsyncIterable):
            length = None
        else:
            assert not isinstance(body, str)  # Response encodes str bodies
            length = body.length
        if (
            length is not None
            and not present
            and 200 <= status <= 999
            and (
                self._fast_head is not None
                or (h.their_state is h11.DONE and h.our_state is h11.SEND_RESPONSE)
            )
        ):
            await self._send_direct(request, response, headers, reason, length, head_only)
        else:
            self._h11_catch_up()
            head = self._h11_head(request, status, reason, headers, present, length)
            await self._send_with_h11(head, body, head_only)
        self.requests_served += 1

    def _h11_catch_up(self) -> None:
        """Before h11 frames a response: give it the head the fast path read instead of it."""
        head = self._fast_head
        if head is not None:
            self._fast_head = None
            h = self.h11
            h.receive_data(head)
            h.next_event()  # the Request
            h.next_event()  # its EndOfMessage: no body (http_head's rules)

    async def _send_direct(
        self,
        request: Request | None,
        response: Response,
        headers: list[tuple[bytes, bytes]],
        reason: bytes,
        length: int,
        head_only: bool,
    ) -> None:
        status = response.status
        if status not in _NO_BODY_STATUSES:
            headers.append((b"content-length", b"%d" % length))
        close = not self._keep_alive or self._should_close(request)
        if close:
            headers.append((b"connection", b"close"))
        head = format_head(status, reason, headers)
        self._direct = DIRECT_STARTED
        body = response.body
        if isinstance(body, bytes):
            await self._write((head, body) if body and not head_only else (head,))
        elif head_only:
            await self._write((head,))
        else:
            assert not isinstance(body, str | AsyncIterable)
            sink = _DirectSink(self, head, length)
            await body.produce(sink)
            await sink.finish()
        self._direct = DIRECT_CLOSE if close else DIRECT_KEEP

    async def _send_with_h11(
        self, head: h11.Response, body: bytes | AsyncIterable[bytes] | BodyProducer, head_only: bool
    ) -> None:
        h = self.h11
        if isinstance(body, bytes):
            pieces = [h.send(head)]
            if body and not head_only:
                # Passthrough: h11 frames the body without joining it, so the body is
                # copied once (into the single write below), not twice.
                framed = h.send_with_data_passthrough(h11.Data(data=body))
                assert framed is not None  # None only after ConnectionClosed
                pieces.extend(framed)
            pieces.append(h.send(_END))
            await self.send_all(b"".join(pieces))
            return
        await self.send_all(h.send(head))
        if isinstance(body, AsyncIterable):
            if not head_only:
                async for chunk in body:
                    if chunk:
                        await self.send_all(h.send(h11.Data(data=chunk)))
        elif not head_only:
            await body.produce(_Sink(self))
        end = h.send(_END)
        if end:  # b"" with Content-Length: no need for a trip through the scheduler
            await self.send_all(end)

    async def send_switch(self, headers: Sequence[tuple[str, str]]) -> None:
        """Write ``101 Switching Protocols`` with ``headers`` (checked as any response's).

        Written directly: after a 101 h11 has nothing left to do. Its one check
        is kept: the client must have asked for an upgrade (RFC 9110 §7.8).
        """
        # h11's rule: a request whose Upgrade lists something proposes a switch
        # (CONNECT proposes another kind: the fast path leaves CONNECT to h11).
        proposed = any(name == b"upgrade" and value.strip(b" \t,") for name, value in self._current_headers)
        asked = proposed and (self._fast_head is not None or self.h11.their_state is _MIGHT_SWITCH_PROTOCOL)
        if not asked or not self.can_respond():
            raise h11.LocalProtocolError("cannot switch protocols: the client did not ask for an upgrade")
        head = format_head(101, b"Switching Protocols", self._base_headers(headers)[0])
        self._direct = DIRECT_STARTED
        await self._write((head,))


class _Sink:
    """:class:`~trio_ws.request.BodySink` for a response framed by h11."""

    __slots__ = ("_conn", "supports_sendfile")

    def __init__(self, conn: HTTPWriter) -> None:
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
            await _copy_file(self.send, fd, offset, count)
            return
        segment = _FileSegment(fd, offset, count)
        pieces = conn.h11.send_with_data_passthrough(h11.Data(data=segment))  # type: ignore[arg-type]
        assert pieces is not None
        for piece in pieces:
            if isinstance(piece, _FileSegment):
                try:
                    await _sendfile(conn, piece.fd, piece.offset, piece.count)
                except BaseException:
                    conn.h11.send_failed()
                    raise
            else:
                await conn.send_all(bytes(piece))


class _DirectSink:
    """:class:`~trio_ws.request.BodySink` of a direct response.

    The head rides with the first piece; the body must be exactly ``length``
    bytes (h11's Content-Length checks, same errors).
    """

    __slots__ = ("_conn", "_head", "_left", "supports_sendfile")

    def __init__(self, conn: HTTPWriter, head: bytes, length: int) -> None:
        self._conn = conn
        self._head = head
        self._left = length
        self.supports_sendfile = conn.supports_sendfile

    async def _flush_head(self) -> None:
        if self._head:
            head, self._head = self._head, b""
            await self._conn._write((head,))

    async def _take(self, count: int) -> None:
        if count > self._left:
            # As with h11, whose head had gone out on its own: head, then the error.
            await self._flush_head()
            raise h11.LocalProtocolError("Too much data for declared Content-Length")
        self._left -= count

    async def _send_body(self, data: bytes) -> None:
        head = self._head
        if head:
            self._head = b""
            await self._conn._write((head, data))
        else:
            await self._conn._write((data,))

    async def send(self, data: bytes) -> None:
        if data:
            await self._take(len(data))
            await self._send_body(data)

    async def sendfile(self, fd: int, offset: int, count: int) -> None:
        if count <= 0:
            return
        await self._take(count)
        if not self.supports_sendfile:
            await _copy_file(self._send_body, fd, offset, count)
            return
        await self._flush_head()
        await _sendfile(self._conn, fd, offset, count)

    async def finish(self) -> None:
        """After the producer: the head if nothing carried it, and the length check."""
        await self._flush_head()
        if self._left:
            raise h11.LocalProtocolError("Too little data for declared Content-Length")


async def _copy_file(send: Callable[[bytes], Awaitable[None]], fd: int, offset: int, count: int) -> None:
    """Read the file in worker threads, chunk by chunk, each paced by ``send``."""
    end = offset + count
    while offset < end:
        size = min(FILE_CHUNK_SIZE, end - offset)
        chunk = await trio.to_thread.run_sync(os.pread, fd, size, offset)
        if not chunk:
            raise OSError(f"file ended {end - offset} bytes early (it shrank while being sent)")
        await send(chunk)
        offset += len(chunk)


async def _sendfile(conn: HTTPWriter, fd: int, offset: int, left: int) -> None:
    """Zero-copy ``os.sendfile`` loop, driven by trio's ``wait_writable``."""
    out_fd = conn._fd
    while left:
        try:
            sent = os.sendfile(out_fd, fd, offset, left)
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
            await trio.lowlevel.wait_writable(out_fd)
            conn._unyielded = 0
            conn.deadline = math.inf


def content_length(headers: Sequence[tuple[bytes, bytes]]) -> int | None:
    """The request's Content-Length (h11 has validated it), or ``None``."""
    for name, value in headers:
        if name == b"content-length":
            return int(value)
    return None
