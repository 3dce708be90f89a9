"""Helpers for testing trio_ws applications without a network.

The server runs exactly as :func:`trio_ws.serve` runs it (same
:class:`~trio_ws.Server`, same limits, same graceful shutdown), but its
listener hands out in-memory streams from :func:`trio.testing.memory_stream_pair`
instead of TCP connections. That makes tests fast, lets them run under
pytest-trio's autojump clock (virtual time: a 10 s ``keepalive_timeout``
passes instantly), and keeps them independent of ports and firewalls.

Three levels, from the simplest::

    # one request, one response
    result = await trio_ws.testing.request(app, "GET", "/hello")
    assert result.status == 200 and result.body == b"hello"

    # a raw client connection (bytes in, bytes out)
    async with trio_ws.testing.open_memory_client(app) as stream:
        await stream.send_all(b"GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
        ...

    # a server that accepts any number of connections
    async with trio_ws.testing.open_memory_server(app) as server:
        a = await server.connect()
        b = await server.connect()

Memory streams have no peer address: ``request.client`` is ``None``. Their
send side never blocks, so ``send_timeout`` cannot trigger over them; use a
real socket to test a peer that does not read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import NamedTuple

import h11
import trio
import trio.testing

from .config import ServerConfig
from .request import Handler
from .server import Server

__all__ = [
    "MemoryListener",
    "MemoryServer",
    "SimpleResponse",
    "open_memory_client",
    "open_memory_server",
    "request",
]

#: Bytes read from the in-memory stream per call by :func:`request`.
_RECEIVE_SIZE = 64 * 1024


class MemoryListener(trio.abc.Listener[trio.abc.Stream]):
    """A :class:`trio.abc.Listener` whose connections are in-memory stream pairs.

    :meth:`connect` makes a pair, queues the server end for :meth:`accept`
    and returns the client end. Like a kernel listen backlog, at most
    ``backlog`` connections wait to be accepted; past that :meth:`connect`
    waits (a server at ``max_connections`` stops accepting).
    """

    def __init__(self, backlog: int = 16) -> None:
        # Bounded like a real listen backlog (``backlog`` is a positive int).
        self._send, self._receive = trio.open_memory_channel[trio.abc.Stream](backlog)

    async def connect(self) -> trio.abc.Stream:
        """Open a connection; returns the client end once the server end is queued."""
        client, server = trio.testing.memory_stream_pair()
        try:
            await self._send.send(server)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            await trio.aclose_forcefully(server)
            await trio.aclose_forcefully(client)
            raise trio.ClosedResourceError("the memory server is closed") from None
        return client

    async def accept(self) -> trio.abc.Stream:
        """The server end of the next connection."""
        try:
            return await self._receive.receive()
        except trio.EndOfChannel:
            raise trio.ClosedResourceError("listener closed") from None

    async def aclose(self) -> None:
        """Stop accepting; connections not yet accepted are closed."""
        self._send.close()
        self._receive.close()
        await trio.lowlevel.checkpoint()


class MemoryServer:
    """A running :class:`~trio_ws.Server` with one :class:`MemoryListener`.

    Made by :func:`open_memory_server`; ``server`` is the real server object
    (``statistics()``, ``aclose()``), ``connect()`` opens a client stream.
    """

    def __init__(self, server: Server, listener: MemoryListener) -> None:
        self.server = server
        self.listener = listener

    async def connect(self) -> trio.abc.Stream:
        """A new client connection to the server."""
        return await self.listener.connect()


@asynccontextmanager
async def open_memory_server(
    app: Handler, *, config: ServerConfig | None = None
) -> AsyncIterator[MemoryServer]:
    """Run ``app`` on an in-memory server for the duration of the ``async with`` block.

    On exit the server shuts down gracefully (:meth:`Server.aclose`): open
    connections get up to ``config.shutdown_timeout`` to finish. An exception
    raised in the block comes out as itself, not wrapped in an
    :class:`ExceptionGroup` by the server's nursery.
    """
    config = config or ServerConfig()
    listener = MemoryListener(config.backlog)
    server = Server(app, [listener], config=config)
    error: BaseException | None = None
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        try:
            yield MemoryServer(server, listener)
        except BaseException as exc:
            error = exc  # re-raised below, outside the nursery
        finally:
            with trio.CancelScope(shield=True):
                await server.aclose()
    if error is not None:
        raise error


@asynccontextmanager
async def open_memory_client(
    app: Handler, *, config: ServerConfig | None = None
) -> AsyncIterator[trio.abc.Stream]:
    """One client connection (a :class:`trio.abc.Stream`) to ``app`` served in memory.

    Write raw HTTP to it and read the server's bytes back. The stream is
    closed, and the server shut down, when the block exits.
    """
    async with open_memory_server(app, config=config) as memory:
        stream = await memory.connect()
        try:
            yield stream
        finally:
            await trio.aclose_forcefully(stream)


class SimpleResponse(NamedTuple):
    """The result of :func:`request`: ``(status, headers, body)``."""

    status: int
    #: Header lines as received: lower-case names, raw values.
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (several lines joined with ``", "``), or ``None``."""
        key = name.lower().encode("ascii")
        values = [value for key_, value in self.headers if key_ == key]
        return b", ".join(values).decode("latin-1") if values else None


async def request(
    app: Handler,
    method: str,
    target: str,
    *,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    config: ServerConfig | None = None,
) -> SimpleResponse:
    """Send one HTTP/1.1 request to ``app`` in memory and return the final response.

    An ``h11`` client frames the request: ``Host`` is added unless given, and
    ``Content-Length`` when there is a body and no framing header. Interim
    (1xx) responses are skipped. Raises :class:`h11.RemoteProtocolError` if the
    server's answer is not valid HTTP/1.1.
    """
    header_list = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    names = {name.lower() for name, _ in header_list}
    if b"host" not in names:
        header_list.insert(0, (b"host", b"testserver"))
    if body and not names & {b"content-length", b"transfer-encoding"}:
        header_list.append((b"content-length", b"%d" % len(body)))
    client = h11.Connection(h11.CLIENT)
    outgoing = client.send(h11.Request(method=method, target=target, headers=header_list))
    if body:
        outgoing += client.send(h11.Data(data=body))
    outgoing += client.send(h11.EndOfMessage())
    async with open_memory_client(app, config=config) as stream:
        await stream.send_all(outgoing)
        return await _read_response(client, stream)


async def _read_response(client: h11.Connection, stream: trio.abc.Stream) -> SimpleResponse:
    response: h11.Response | None = None
    chunks: list[bytes] = []
    while True:
        event = client.next_event()
        if event is h11.NEED_DATA:
            client.receive_data(bytes(await stream.receive_some(_RECEIVE_SIZE)))
        elif isinstance(event, h11.Response):
            response = event
        elif isinstance(event, h11.Data):
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            assert response is not None
            return SimpleResponse(response.status_code, list(response.headers), b"".join(chunks))
        elif isinstance(event, h11.ConnectionClosed):
            raise h11.RemoteProtocolError("server closed the connection without a response")
        # InformationalResponse (100 Continue): keep reading.
