"""Shared clients for the static-file tests (no tests of its own).

Three independent ways to ask our server something, so every rule is checked
from more than one side:

* ``h11``: an ``h11.Connection(CLIENT)`` over a real loopback TCP connection
  (the server then uses zero-copy ``os.sendfile``);
* ``raw``: hand-written request bytes over a raw socket, the response read to
  EOF and parsed here with nothing but ``bytes.split``;
* ``memory``: an h11 client over ``trio.testing.memory_stream_pair`` driving
  ``Server._handle_connection`` directly, which takes the worker-thread
  ``pread`` fallback instead of ``sendfile``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import h11
import trio
import trio.testing

import trio_ws
from trio_ws.request import Handler
from trio_ws.server import Server

#: Upper bound on any single exchange in these tests.
TIMEOUT = 10.0

HeaderPairs = Sequence[tuple[str, str]]


@dataclass
class Reply:
    """A response as a test sees it."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k == name.lower()]
        assert len(values) <= 1, f"{name} sent {len(values)} times"
        return values[0] if values else None

    def comparable_headers(self) -> list[tuple[str, str]]:
        """Headers minus Date, with a multipart boundary blanked (it is random)."""
        out = []
        for name, value in self.headers:
            if name == "date":
                continue
            if name == "content-type" and "boundary=" in value:
                value = value.split("boundary=")[0] + "boundary=*"
            out.append((name, value))
        return out


async def _h11_exchange(stream: trio.abc.Stream, method: str, target: str, headers: HeaderPairs) -> Reply:
    conn = h11.Connection(h11.CLIENT)
    request = h11.Request(
        method=method,
        target=target.encode("latin-1"),
        headers=[("host", "test"), *headers],
    )
    await stream.send_all(conn.send(request) + conn.send(h11.EndOfMessage()))
    response: h11.Response | None = None
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(bytes(await stream.receive_some(65536)))
            continue
        if isinstance(event, h11.Response):
            response = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            break
        else:
            raise AssertionError(f"unexpected event {event!r}")
    assert response is not None
    headers_out = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers]
    return Reply(response.status_code, headers_out, bytes(body))


def parse_raw_response(data: bytes, *, head_only: bool = False) -> Reply:
    """Parse one HTTP/1.1 response read to EOF (``Connection: close``)."""
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep, f"no end of head in {data[:200]!r}"
    lines = head.split(b"\r\n")
    version, status, _reason = lines[0].split(b" ", 2)
    assert version == b"HTTP/1.1"
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        assert colon
        headers.append((name.decode("latin-1").lower(), value.strip().decode("latin-1")))
    reply = Reply(int(status), headers, body)
    length = reply.header("content-length")
    if head_only or reply.status in (204, 304):
        assert body == b"", "a body after a HEAD or 304 head"
    elif length is not None:
        assert len(body) == int(length), (len(body), length)
    return reply


class Fetcher:
    """``await fetch(target, method=..., headers=...)`` against a running app."""

    kind = "abstract"

    async def __call__(self, target: str, method: str = "GET", headers: HeaderPairs = ()) -> Reply:
        raise NotImplementedError


class H11Fetcher(Fetcher):
    kind = "h11"

    def __init__(self, port: int) -> None:
        self.port = port

    async def __call__(self, target: str, method: str = "GET", headers: HeaderPairs = ()) -> Reply:
        with trio.fail_after(TIMEOUT):
            stream = await trio.open_tcp_stream("127.0.0.1", self.port)
            async with stream:
                return await _h11_exchange(stream, method, target, headers)


class RawFetcher(Fetcher):
    kind = "raw"

    def __init__(self, port: int) -> None:
        self.port = port

    async def send_raw(self, data: bytes) -> bytes:
        """Send ``data``, read until the server closes."""
        with trio.fail_after(TIMEOUT):
            stream = await trio.open_tcp_stream("127.0.0.1", self.port)
            async with stream:
                await stream.send_all(data)
                received = bytearray()
                while chunk := await stream.receive_some(65536):
                    received += chunk
                return bytes(received)

    async def __call__(self, target: str, method: str = "GET", headers: HeaderPairs = ()) -> Reply:
        lines = [f"{method} {target} HTTP/1.1", "Host: test", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in headers]
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return parse_raw_response(await self.send_raw(data), head_only=method == "HEAD")


class MemoryFetcher(Fetcher):
    kind = "memory"

    def __init__(self, server: Server, nursery: trio.Nursery) -> None:
        self.server = server
        self.nursery = nursery

    async def __call__(self, target: str, method: str = "GET", headers: HeaderPairs = ()) -> Reply:
        with trio.fail_after(TIMEOUT):
            client, server_side = trio.testing.memory_stream_pair()
            self.nursery.start_soon(self.server._handle_connection, server_side)
            async with client:
                return await _h11_exchange(client, method, target, headers)


KINDS = ("h11", "raw", "memory")


async def start_fetcher(kind: str, app: Handler, nursery: trio.Nursery) -> Fetcher:
    """Serve ``app`` in ``nursery`` and return a client of the given ``kind``."""
    if kind == "memory":
        return MemoryFetcher(Server(app, []), nursery)
    server: Server = await nursery.start(functools.partial(trio_ws.serve, app, "127.0.0.1", 0))
    return H11Fetcher(server.port) if kind == "h11" else RawFetcher(server.port)


def parse_multipart(reply: Reply) -> list[tuple[list[tuple[str, str]], bytes]]:
    """Split a multipart/byteranges body into ``(part headers, part bytes)``.

    Strict about the framing we promise: CRLF everywhere, a leading CRLF before
    the first delimiter, the close delimiter last, nothing after it.
    """
    ctype = reply.header("content-type")
    assert ctype is not None
    assert ctype.startswith("multipart/byteranges; boundary=")
    boundary = ctype.split("boundary=", 1)[1].strip('"').encode("ascii")
    body = reply.body
    close = b"\r\n--" + boundary + b"--\r\n"
    assert body.endswith(close), body[-80:]
    chunks = body[: -len(close)].split(b"\r\n--" + boundary + b"\r\n")
    assert chunks[0] == b"", "bytes before the first delimiter"
    parts = []
    for chunk in chunks[1:]:
        head, sep, data = chunk.partition(b"\r\n\r\n")
        assert sep
        headers = []
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            headers.append((name.decode().lower(), value.strip().decode()))
        parts.append((headers, data))
    return parts
