"""The handler-facing HTTP objects: :class:`Request` and :class:`Response`.

A handler is ``async def handler(request: Request) -> Response``. The request
body is *pulled*: nothing is read from the socket until the handler awaits
:meth:`Request.body` or iterates :meth:`Request.stream`, so a handler that
refuses a large upload never receives it.

A response body is one of:

* ``bytes`` (or ``str``, encoded as UTF-8) — sent with ``Content-Length``;
* an async iterable of ``bytes`` — streamed, chunked on HTTP/1.1;
* a :class:`BodyProducer` — an object that writes itself to a :class:`BodySink`,
  which is how static files reach ``os.sendfile``.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote

if TYPE_CHECKING:
    import trio

    from ._http import HTTPConnection

__all__ = [
    "BodyProducer",
    "BodySink",
    "Handler",
    "Headers",
    "Request",
    "Response",
]

#: Header list as h11 delivers it: lower-case names, raw bytes values.
Headers = Sequence[tuple[bytes, bytes]]


class BodySink(Protocol):
    """Where a :class:`BodyProducer` writes its bytes (implemented by the HTTP layer)."""

    #: True when :meth:`sendfile` is zero-copy (plain TCP); False under TLS or
    #: in-memory streams, where it falls back to reads in a worker thread.
    supports_sendfile: bool

    async def send(self, data: bytes) -> None:
        """Send ``data`` as part of the body, waiting until the socket took it."""

    async def sendfile(self, fd: int, offset: int, count: int) -> None:
        """Send ``count`` bytes of file descriptor ``fd`` from ``offset``.

        Raises :class:`OSError` if the file ends early (it shrank): the
        connection is then closed rather than sending a wrong length.
        """


class BodyProducer(Protocol):
    """A response body that writes itself; ``length`` is its exact size or ``None``."""

    length: int | None

    async def produce(self, sink: BodySink) -> None:
        """Write the whole body to ``sink``."""


Body = bytes | str | AsyncIterable[bytes] | BodyProducer


class Response:
    """An HTTP response: status, headers and a body.

    ``headers`` is a list of ``(name, value)`` string pairs; ``content_type``
    is a shortcut that adds a ``Content-Type`` header. ``Date``, ``Server`` and
    ``Content-Length`` (for sized bodies) are added by the server.
    """

    __slots__ = ("body", "headers", "reason", "status")

    def __init__(
        self,
        status: int = 200,
        body: Body = b"",
        *,
        headers: Sequence[tuple[str, str]] = (),
        content_type: str | None = None,
        reason: str | None = None,
    ) -> None:
        self.status = status
        self.body: Body = body.encode() if isinstance(body, str) else body
        self.headers: list[tuple[str, str]] = list(headers)
        if content_type is not None:
            self.headers.append(("content-type", content_type))
        self.reason = reason if reason is not None else _reason(status)

    @classmethod
    def text(cls, text: str, status: int = 200, **kwargs: object) -> Response:
        """A ``text/plain; charset=utf-8`` response."""
        return cls(status, text, content_type="text/plain; charset=utf-8", **kwargs)  # type: ignore[arg-type]

    @classmethod
    def html(cls, html: str, status: int = 200, **kwargs: object) -> Response:
        """A ``text/html; charset=utf-8`` response."""
        return cls(status, html, content_type="text/html; charset=utf-8", **kwargs)  # type: ignore[arg-type]

    @classmethod
    def error(cls, status: int, message: str | None = None) -> Response:
        """A short plain-text error page for ``status``."""
        reason = _reason(status)
        return cls.text(f"{status} {reason}\n" + (f"{message}\n" if message else ""), status)

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason}>"


_REASONS = {s.value: s.phrase for s in HTTPStatus}


def _reason(status: int) -> str:
    return _REASONS.get(status, "")


class Request:
    """One HTTP request, as the handler sees it.

    ``path`` is the percent-decoded path without the query; ``raw_path`` the
    path as sent; ``query`` the raw query string. ``mount_prefix`` is the
    route that matched (the whole path for exact routes) and ``subpath`` the
    part of ``raw_path`` after it (``""`` for exact routes). ``nursery`` is the connection's nursery: tasks
    started there end when the connection does.
    """

    __slots__ = (
        "_conn",
        "client",
        "headers",
        "http_version",
        "method",
        "mount_prefix",
        "nursery",
        "query",
        "raw_path",
        "scheme",
        "subpath",
        "target",
    )

    def __init__(
        self,
        method: str,
        target: bytes,
        headers: Headers,
        *,
        http_version: str = "1.1",
        client: tuple[str, int] | None = None,
        scheme: str = "http",
        conn: HTTPConnection | None = None,
        nursery: trio.Nursery | None = None,
    ) -> None:
        self.method = method
        self.target = target.decode("ascii", "replace")
        raw_path, _, query = self.target.partition("?")
        if not raw_path.startswith("/") and "://" in raw_path:
            # absolute-form (RFC 9112 §3.2.2): a server MUST accept it; route on its path.
            raw_path = "/" + raw_path.partition("://")[2].partition("/")[2]
        self.raw_path = raw_path
        self.query = query
        self.headers = headers
        self.http_version = http_version
        self.client = client
        self.scheme = scheme
        self.mount_prefix = ""
        self.subpath = raw_path
        self._conn = conn
        self.nursery = nursery

    @property
    def path(self) -> str:
        """The percent-decoded path (decoded once; invalid UTF-8 kept as escapes)."""
        return unquote(self.raw_path, errors="surrogateescape")

    def header(self, name: str, default: str | None = None) -> str | None:
        """The value of header ``name`` (several lines joined with ``", "``)."""
        key = name.lower().encode("ascii")
        values = [v for k, v in self.headers if k == key]
        if not values:
            return default
        return b", ".join(values).decode("latin-1")

    def header_list(self, name: str) -> list[str]:
        """Every line of header ``name``, in order."""
        key = name.lower().encode("ascii")
        return [v.decode("latin-1") for k, v in self.headers if k == key]

    async def body(self, max_size: int | None = None) -> bytes:
        """Read the whole request body.

        Raises :class:`~trio_ws.RequestBodyTooLarge` (answered with 413) when
        it exceeds ``max_size`` (default: the server's ``max_body_size``).
        """
        if self._conn is None:
            return b""
        return await self._conn.read_body(max_size)

    def stream(self, max_size: int | None = None) -> AsyncIterator[bytes]:
        """Iterate over the request body as it arrives, chunk by chunk."""
        if self._conn is None:
            return _empty()
        return self._conn.iter_body(max_size)

    @property
    def shutdown_requested(self) -> trio.Event | None:
        """Set when the server shuts down gracefully (``None`` off a server connection).

        Long-lived responses and upgraded protocols watch it to end in time
        (a WebSocket closes with 1001).
        """
        return None if self._conn is None else self._conn.shutdown_requested

    def call_on_shutdown(self, callback: Callable[[], None]) -> None:
        """Have ``callback()`` called (synchronously, once) when the server shuts down gracefully.

        Cheaper than a task per connection waiting on :attr:`shutdown_requested`;
        called at once if the shutdown has already begun. No-op off a server connection.
        """
        if self._conn is None:
            return
        if self._conn.shutdown_requested.is_set():
            callback()
        else:
            self._conn.shutdown_callbacks.append(callback)

    async def switch_protocols(self, headers: Sequence[tuple[str, str]]) -> tuple[trio.abc.Stream, bytes]:
        """Answer ``101 Switching Protocols`` and hand over the raw stream.

        Returns ``(stream, trailing_data)``: the transport and the bytes the
        client sent after the request head. Used by the WebSocket layer.
        """
        if self._conn is None:
            raise RuntimeError("this request is not attached to a connection")
        return await self._conn.switch_protocols(headers)

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.target}>"


async def _empty() -> AsyncIterator[bytes]:
    return
    yield  # pragma: no cover


Handler = Callable[[Request], Awaitable[Response]]
