"""``serve()``: listeners, an accept loop, and a nursery per connection.

Shape (after ``trio.serve_listeners``)::

    Server._run
    ├── accept nursery: one accept loop per listener
    │     (a semaphore of ``max_connections`` is taken *before* accept, so
    │      excess clients wait in the kernel backlog, not in our memory;
    │      TCP listeners are accepted from directly: ``Server._accept_tcp``)
    └── connections nursery
          └── _handle_connection(stream)          try/finally: close the socket (TLS: aclose_forcefully)
                └── connection nursery            tasks a handler starts die here
                      └── HTTP loop: next_request → handler → send_response

Graceful shutdown (:meth:`Server.aclose`, SIGINT/SIGTERM in the CLI): stop
accepting, close idle keep-alive connections, let in-flight responses finish
(they go out with ``Connection: close``) for ``shutdown_timeout`` seconds, then
cancel whatever is left.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence

import h11
import trio

from ._http import HTTPConnection, PeerGone
from .config import ServerConfig
from .exceptions import HTTPError
from .request import Request, Response

__all__ = ["Server", "serve"]

log = logging.getLogger("trio_ws.server")
access_log = logging.getLogger("trio_ws.access")

App = Callable[[Request], Awaitable[Response]]

#: accept() errors that mean "out of resources right now": wait and retry.
_ACCEPT_CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
_ACCEPT_RETRY_DELAY = 0.1
#: accept() errors that concern one connection only: skip it (trio's list, ``SocketListener.accept``).
_ACCEPT_SKIPPED_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "EPERM",
        "ECONNABORTED",
        "EPROTO",
        "ENETDOWN",
        "ENOPROTOOPT",
        "EHOSTDOWN",
        "ENONET",
        "EHOSTUNREACH",
        "EOPNOTSUPP",
        "ENETUNREACH",
        "ENOSR",
        "ESOCKTNOSUPPORT",
        "EPROTONOSUPPORT",
        "ETIMEDOUT",
        "ECONNRESET",
    )
    if hasattr(errno, name)
)
#: Connections accepted in a row, at most, before a trip through the scheduler.
ACCEPTS_PER_YIELD = 16


class Server:
    """A running server: its listeners, its connections, and :meth:`aclose`.

    Made and started by :func:`serve`; ``await nursery.start(serve, ...)``
    returns it once every listener is bound.
    """

    def __init__(
        self,
        app: App,
        listeners: Sequence[trio.abc.Listener[trio.abc.Stream]],
        *,
        config: ServerConfig | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.app = app
        self.listeners = list(listeners)
        self.config = config or ServerConfig()
        self.ssl_context = ssl_context
        self.scheme = "https" if ssl_context is not None else "http"
        self._connections: set[HTTPConnection] = set()
        self._slots = trio.Semaphore(self.config.max_connections)
        self._accept_scope = trio.CancelScope()
        self._all_idle = trio.Event()
        self._closed = trio.Event()
        self._closing = False
        self._active = 0
        self._accepted = 0

    # -- public ------------------------------------------------------------------

    @property
    def sockets(self) -> list[trio.socket.SocketType]:
        """The bound sockets of the TCP listeners."""
        return [lst.socket for lst in self.listeners if isinstance(lst, trio.SocketListener)]

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """``(host, port)`` of every TCP listener (port 0 resolved)."""
        return [(str(addr[0]), int(addr[1])) for addr in (s.getsockname() for s in self.sockets)]

    @property
    def port(self) -> int:
        """The port of the first listener."""
        return self.addresses[0][1]

    @property
    def urls(self) -> list[str]:
        """A URL for every listener, e.g. ``http://127.0.0.1:8000/``."""
        urls = []
        for host, port in self.addresses:
            shown = f"[{host}]" if ":" in host else host
            urls.append(f"{self.scheme}://{shown}:{port}/")
        return urls

    def statistics(self) -> dict[str, int]:
        """Counters: open connections and connections accepted so far."""
        return {"connections": self._active, "accepted": self._accepted}

    async def aclose(self) -> None:
        """Shut down gracefully and wait until every connection has ended."""
        self._closing = True
        self._accept_scope.cancel()
        await self._closed.wait()

    # -- running -----------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[Server] = trio.TASK_STATUS_IGNORED) -> None:
        """Accept and serve until :meth:`aclose`; ``task_status.started(self)`` once listening."""
        try:
            async with trio.open_nursery() as connections:
                connections.start_soon(self._sweep)
                with self._accept_scope:
                    async with trio.open_nursery() as accepting:
                        for listener in self.listeners:
                            accepting.start_soon(self._accept_loop, listener, connections)
                        # With no listeners (streams fed by serve_stream), run until aclose().
                        accepting.start_soon(trio.sleep_forever)
                        task_status.started(self)
                await self._drain(connections)
        finally:
            # Shielded: a cancelled serve() must still close every listener.
            with trio.CancelScope(shield=True):
                for listener in self.listeners:
                    await trio.aclose_forcefully(listener)
            self._closed.set()

    async def _drain(self, connections: trio.Nursery) -> None:
        self._closing = True
        log.info("shutting down: %d connection(s) open", self._active)
        for conn in list(self._connections):
            conn.request_shutdown()
        if self._active:
            with trio.move_on_after(self.config.shutdown_timeout):
                await self._all_idle.wait()
        connections.cancel_scope.cancel()

    async def _sweep(self) -> None:
        """Expire connections whose deadline passed (see ``_http``'s theory of operation)."""
        cfg = self.config
        interval = max(
            0.01, min(0.5, cfg.header_timeout / 4, cfg.keepalive_timeout / 4, cfg.send_timeout / 4)
        )
        while True:
            await trio.sleep(interval)
            now = trio.current_time()
            for conn in self._connections:
                if conn.deadline <= now:
                    conn.expire()

    async def serve_stream(self, stream: trio.abc.Stream) -> None:
        """Serve one already-connected stream as if it had been accepted.

        For streams that do not come from a listener, e.g. one end of
        ``trio.testing.memory_stream_pair()``; the server must be running
        (timeouts are enforced by its sweeper). Waits for a free connection
        slot first, and returns when the connection has ended.
        """
        await self._slots.acquire()
        self._active += 1
        self._accepted += 1
        await self._handle_connection(stream)

    async def _accept_loop(
        self, listener: trio.abc.Listener[trio.abc.Stream], connections: trio.Nursery
    ) -> None:
        if isinstance(listener, trio.SocketListener):
            await self._accept_tcp(listener.socket, connections)
            return
        while True:
            try:
                self._slots.acquire_nowait()  # the usual case: no trip through the scheduler
            except trio.WouldBlock:
                await self._slots.acquire()
            try:
                stream = await listener.accept()
            except OSError as exc:
                self._slots.release()
                if exc.errno not in _ACCEPT_CAPACITY_ERRNOS:
                    raise
                await _pause_accepting(exc)
                continue
            except BaseException:
                self._slots.release()
                raise
            self._start(stream, connections)

    async def _accept_tcp(self, sock: trio.socket.SocketType, connections: trio.Nursery) -> None:
        """Accept on a TCP listener straight from its socket, until it would block.

        trio's ``SocketListener.accept`` takes two trips through the scheduler
        per connection (a wait for readability, a checkpoint after accepting):
        ~100 µs of a ~620 µs WebSocket handshake (connect, upgrade, one echo,
        close), measured. Here the listening descriptor is duplicated into a
        stdlib socket (non-blocking, as the original: they share one open file)
        and accepted from until it would block; only then does the loop wait
        for readability. At most ``ACCEPTS_PER_YIELD`` connections are accepted
        in a row without yielding. Per-connection errors are skipped as trio
        skips them; running out of descriptors pauses, as for any listener.
        """
        raw = socket.socket(fileno=os.dup(sock.fileno()))
        raw.setblocking(False)
        accepted = 0
        try:
            while True:
                try:
                    self._slots.acquire_nowait()
                except trio.WouldBlock:
                    # Take a connection slot only once a client is waiting, so that
                    # idle listeners do not hold slots other listeners need.
                    await trio.lowlevel.wait_readable(sock)
                    await self._slots.acquire()
                try:
                    client, _ = raw.accept()
                except BlockingIOError:
                    self._slots.release()
                    accepted = 0
                    await trio.lowlevel.wait_readable(sock)
                    continue
                except OSError as exc:
                    self._slots.release()
                    if exc.errno in _ACCEPT_SKIPPED_ERRNOS:
                        continue
                    if exc.errno not in _ACCEPT_CAPACITY_ERRNOS:
                        raise
                    await _pause_accepting(exc)
                    continue
                self._start(trio.SocketStream(trio.socket.from_stdlib_socket(client)), connections)
                accepted += 1
                if accepted >= ACCEPTS_PER_YIELD:
                    accepted = 0
                    await trio.lowlevel.checkpoint()
        finally:
            raw.close()

    def _start(self, stream: trio.abc.Stream, connections: trio.Nursery) -> None:
        self._active += 1
        self._accepted += 1
        connections.start_soon(self._handle_connection, stream)

    async def _handle_connection(self, stream: trio.abc.Stream) -> None:
        conn: HTTPConnection | None = None
        try:
            client = _peer_address(stream)
            if self.ssl_context is not None:
                tls = await self._tls_handshake(stream, client)
                if tls is None:
                    return
                stream = tls
            conn = HTTPConnection(stream, self.config, client=client, scheme=self.scheme)
            async with trio.open_nursery() as nursery:
                # The connection's one cancel scope (for its deadlines and the
                # shutdown) is its nursery's: a scope less to enter per connection.
                # Tasks a handler started end with the connection either way.
                conn.scope = nursery.cancel_scope
                self._connections.add(conn)
                if self._closing:
                    conn.request_shutdown()
                try:
                    await self._serve_http(conn, nursery)
                except PeerGone as exc:
                    log.debug("%s: peer gone: %s", client, exc)
                finally:
                    if nursery.child_tasks:
                        nursery.cancel_scope.cancel()
            if conn.expired_phase is not None:
                await conn.handle_expiry()
        except Exception:
            # Never let one connection take the server down.
            log.exception("internal error on connection from %s", conn.client if conn else "?")
        finally:
            if conn is not None:
                self._connections.discard(conn)
            self._active -= 1
            self._slots.release()
            if self._active == 0 and self._closing:
                self._all_idle.set()
            if type(stream) is trio.SocketStream:
                # Synchronous and idempotent (an upgraded protocol may have closed
                # it already): no scopes, no trip through the scheduler.
                stream.socket.close()
            else:
                with trio.CancelScope(shield=True):
                    await trio.aclose_forcefully(stream)

    async def _tls_handshake(
        self, stream: trio.abc.Stream, client: tuple[str, int] | None
    ) -> trio.SSLStream[trio.abc.Stream] | None:
        assert self.ssl_context is not None
        tls = trio.SSLStream(stream, self.ssl_context, server_side=True, https_compatible=True)
        with trio.move_on_after(self.config.tls_handshake_timeout) as scope:
            try:
                await tls.do_handshake()
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                cause = exc.__cause__ or exc
                plain = getattr(cause, "reason", None) == "HTTP_REQUEST"
                hint = " (plain HTTP sent to the TLS port)" if plain else ""
                log.info("%s: TLS handshake failed: %s%s", client, cause, hint)
                return None
        if scope.cancelled_caught:
            log.info("%s: TLS handshake timed out", client)
            return None
        # trio_ws speaks only HTTP/1.1; see trio_ws.tls on why a caller's context is not modified.
        alpn = tls.selected_alpn_protocol()
        if alpn not in (None, "http/1.1"):
            log.warning("%s: ALPN negotiated %r; this server speaks only http/1.1: closing", client, alpn)
            return None
        return tls

    async def _serve_http(self, conn: HTTPConnection, nursery: trio.Nursery) -> None:
        while True:
            event = await conn.next_request()
            if event is None:
                return
            request = conn.make_request(event, nursery)
            started = time.perf_counter() if access_log.isEnabledFor(logging.INFO) else 0.0
            response = await self._call_app(request)
            if conn.switched:
                return
            try:
                await conn.send_response(request, response)
            except h11.LocalProtocolError as exc:
                # The handler's response cannot be framed (e.g. CR/LF in a header).
                log.error("invalid response from handler for %s %s: %s", request.method, request.target, exc)
                if not conn.can_respond():
                    return
                error = Response.error(500)
                error.headers.append(("connection", "close"))
                await conn.send_response(request, error)
                return
            except (PeerGone, trio.Cancelled):
                raise
            except OSError as exc:
                # e.g. a file that shrank while it was being sent: the
                # connection closes rather than send a wrong length.
                log.info("%s %s: response aborted: %s", request.method, request.target, exc)
                return
            except Exception:
                log.exception("failed while sending the response to %s %s", request.method, request.target)
                return
            if started:
                _log_access(request, response, started)
            if not await self._next_cycle(conn):
                return

    async def _next_cycle(self, conn: HTTPConnection) -> bool:
        try:
            return await conn.finish_cycle()
        except HTTPError:
            return False

    async def _call_app(self, request: Request) -> Response:
        try:
            return await self.app(request)
        except HTTPError as exc:
            log.info("%s %s: %s", request.method, request.target, exc)
            response = Response.error(exc.status, str(exc))
            # The body may be half-read: this connection cannot be reused.
            response.headers.append(("connection", "close"))
            return response
        except PeerGone:
            raise
        except Exception:
            log.exception("handler for %s %s raised", request.method, request.target)
            return Response.error(500)


async def _pause_accepting(exc: OSError) -> None:
    """Out of descriptors or memory: log, wait a little, then accept again."""
    log.error("accept() failed (%s); retrying in %ss", exc, _ACCEPT_RETRY_DELAY)
    await trio.sleep(_ACCEPT_RETRY_DELAY)


def _log_access(request: Request, response: Response, started: float) -> None:
    body = response.body
    if isinstance(body, bytes):
        size = str(len(body))
    else:
        length = getattr(body, "length", None)
        size = "-" if length is None else str(length)
    client = f"{request.client[0]}:{request.client[1]}" if request.client else "-"
    elapsed = (time.perf_counter() - started) * 1000
    access_log.info(
        '%s "%s %s HTTP/%s" %d %s %.1fms',
        client,
        request.method,
        request.target,
        request.http_version,
        response.status,
        size,
        elapsed,
    )


def _peer_address(stream: trio.abc.Stream) -> tuple[str, int] | None:
    if isinstance(stream, trio.SocketStream):
        try:
            address = stream.socket.getpeername()
        except OSError:
            return None
        if isinstance(address, tuple):
            return (str(address[0]), int(address[1]))
    return None


async def open_listeners(
    host: str | Sequence[str] | None, port: int, *, backlog: int
) -> list[trio.SocketListener]:
    """Bind TCP listeners on ``host`` (a name, a list of names, or ``None`` for all interfaces)."""
    hosts: list[str | None] = [host] if host is None or isinstance(host, str) else list(host)
    listeners: list[trio.SocketListener] = []
    for name in hosts:
        listeners.extend(await trio.open_tcp_listeners(port, host=name, backlog=backlog))
    return listeners


async def serve(
    app: App,
    host: str | Sequence[str] | None = "127.0.0.1",
    port: int = 8000,
    *,
    config: ServerConfig | None = None,
    listeners: Sequence[trio.abc.Listener[trio.abc.Stream]] | None = None,
    ssl_context: ssl.SSLContext | None = None,
    task_status: trio.TaskStatus[Server] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` over HTTP/1.1 (and WebSocket upgrades) until cancelled or closed.

    ``trio.run(serve, app, "127.0.0.1", 8000)`` runs forever;
    ``server = await nursery.start(serve, app, "127.0.0.1", 0)`` returns the
    :class:`Server` once bound (port 0 picks a free port: see ``server.port``).
    ``host`` may be a list (several listeners) or ``None`` (every interface,
    IPv4 and IPv6); ``listeners`` serves listeners the caller made instead.
    ``ssl_context`` (e.g. :func:`trio_ws.tls.server_context`) serves ``https://``
    and ``wss://`` on the same port; each handshake must finish within
    ``config.tls_handshake_timeout``.
    """
    config = config or ServerConfig()
    if listeners is None:
        listeners = await open_listeners(host, port, backlog=config.backlog)
    server = Server(app, listeners, config=config, ssl_context=ssl_context)
    await server.run(task_status=task_status)
