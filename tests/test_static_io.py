"""StaticFiles I/O: sendfile versus the thread fallback, descriptors, races.

* plain TCP bodies go through ``os.sendfile``; in-memory streams through
  worker-thread ``pread``;
* no file descriptor into the served tree outlives its request — HEAD, 304,
  errors, clients that vanish mid-body;
* a file that shrinks while being sent cuts the connection short of
  Content-Length (never wrong bytes), over TCP and over the thread fallback;
* a file that changes between ``stat`` and ``open`` is never sent under the
  old validators.
"""

from __future__ import annotations

import functools
import os
import random
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

import trio_ws
from trio_ws import Request, StaticFiles
from trio_ws import static as static_module
from trio_ws.sansio import conditional
from trio_ws.server import Server
from trio_ws.static import FileBody

from .test_static_support import TIMEOUT, H11Fetcher, MemoryFetcher, RawFetcher

Pieces = Sequence[tuple[bytes, int, int]]
BIG = random.Random(1).randbytes(1024 * 1024)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    (root / "big.bin").write_bytes(BIG)
    (root / "small.txt").write_bytes(b"small\n")
    return root


async def serve(app: Any, nursery: trio.Nursery) -> Server:
    server: Server = await nursery.start(functools.partial(trio_ws.serve, app, "127.0.0.1", 0))
    return server


# -- which path carries the bytes ----------------------------------------------------


def _counting(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    calls: list[int] = []
    original: Callable[..., Any] = getattr(os, name)

    def wrapper(*args: Any) -> Any:
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(os, name, wrapper)
    return calls


async def test_tcp_uses_sendfile(tree: Path, nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch) -> None:
    sendfile, pread = _counting(monkeypatch, "sendfile"), _counting(monkeypatch, "pread")
    server = await serve(StaticFiles(tree), nursery)
    fetch = H11Fetcher(server.port)
    assert (await fetch("/big.bin")).body == BIG
    # Parts adding up to more than inline_limit go out with sendfile too.
    reply = await fetch("/big.bin", headers=[("range", "bytes=0-99999,500000-599999")])
    assert reply.status == 206
    assert sendfile
    assert not pread


async def test_small_answers_of_big_files_are_read_inline(
    tree: Path, nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inlining is decided by the bytes sent, not the file size: one write instead of many."""
    sendfile, pread = _counting(monkeypatch, "sendfile"), _counting(monkeypatch, "pread")
    server = await serve(StaticFiles(tree), nursery)
    fetch = H11Fetcher(server.port)
    reply = await fetch("/big.bin", headers=[("range", "bytes=10-19,500000-500009")])
    assert reply.status == 206
    assert BIG[10:20] in reply.body
    assert BIG[500000:500010] in reply.body
    assert len(pread) == 2
    assert not sendfile


async def test_memory_streams_use_thread_pread(
    tree: Path, nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    sendfile, pread = _counting(monkeypatch, "sendfile"), _counting(monkeypatch, "pread")
    fetch = MemoryFetcher(Server(StaticFiles(tree), []), nursery)
    assert (await fetch("/big.bin")).body == BIG
    assert not sendfile
    assert len(pread) >= 4  # 1 MiB in 256 KiB chunks


# -- descriptors ------------------------------------------------------------------------


def open_fds_into(tree: Path) -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(tree)):
            found.append(target)
    return found


async def wait_idle(server: Server) -> None:
    with trio.fail_after(TIMEOUT):
        while server.statistics()["connections"]:
            await trio.sleep(0.01)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
async def test_no_descriptor_leaks(tree: Path, nursery: trio.Nursery) -> None:
    server = await serve(StaticFiles(tree), nursery)
    fetch, raw = H11Fetcher(server.port), RawFetcher(server.port)
    etag = (await fetch("/big.bin", "HEAD")).header("etag")
    assert etag is not None
    scenarios = [
        ("/big.bin", "HEAD", []),
        ("/big.bin", "GET", [("if-none-match", etag)]),
        ("/big.bin", "GET", [("if-match", '"x"')]),
        ("/big.bin", "GET", [("range", "bytes=9999999-")]),
        ("/big.bin", "GET", [("range", "bytes=0-1,5-6")]),
        ("/big.bin", "GET", []),
        ("/small.txt", "GET", []),
        ("/missing", "GET", []),
    ]
    for target, method, headers in scenarios:
        await fetch(target, method, headers)
        await raw(target, method, headers)
    await wait_idle(server)
    assert open_fds_into(tree) == []
    # Clients that vanish: before reading anything, and mid-body.
    for read_first in (0, 70_000):
        with trio.fail_after(TIMEOUT):
            sock = trio.socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            await sock.connect(("127.0.0.1", server.port))
            await sock.send(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
            got = 0
            while got < read_first:
                got += len(await sock.recv(4096))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")  # RST
            sock.close()
    await wait_idle(server)
    assert open_fds_into(tree) == []


# -- a file shrinking while it is sent ---------------------------------------------------


async def test_shrinking_file_over_tcp(tmp_path: Path, nursery: trio.Nursery) -> None:
    root = tmp_path / "root"
    root.mkdir()
    size, cut = 64 * 1024 * 1024, 16 * 1024 * 1024
    original = random.Random(2).randbytes(1024 * 1024) * 64
    path = root / "movie.webm"
    path.write_bytes(original)
    server = await serve(StaticFiles(root), nursery)
    with trio.fail_after(TIMEOUT * 3):
        sock = trio.socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        await sock.connect(("127.0.0.1", server.port))
        await sock.send(b"GET /movie.webm HTTP/1.1\r\nHost: t\r\n\r\n")
        received = bytearray()
        while b"\r\n\r\n" not in received or len(received) < 100_000:
            received += await sock.recv(16384)
            await trio.sleep(0.001)  # a slow reader: the server is held in sendfile
        os.truncate(path, cut)
        while chunk := await sock.recv(1 << 20):
            received += chunk
        sock.close()
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    assert b"content-length: %d" % size in head
    assert len(body) < size
    assert body == original[: len(body)]  # fewer bytes, never wrong ones
    assert len(body) <= cut


async def test_shrinking_file_over_the_thread_fallback(tmp_path: Path, nursery: trio.Nursery) -> None:
    root = tmp_path / "root"
    root.mkdir()
    original = random.Random(3).randbytes(4 * 1024 * 1024)
    path = root / "data.bin"
    path.write_bytes(original)
    server = Server(StaticFiles(root), [])
    client, server_side = trio.testing.lockstep_stream_pair()
    nursery.start_soon(server._handle_connection, server_side)
    with trio.fail_after(TIMEOUT):
        await client.send_all(b"GET /data.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        received = bytearray()
        while len(received) < 300_000:
            received += await client.receive_some(65536)
        os.truncate(path, 1024 * 1024)
        while chunk := await client.receive_some(65536):
            received += chunk
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    assert b"content-length: %d" % len(original) in head
    assert len(body) == 1024 * 1024
    assert body == original[: len(body)]


# -- a file changing between stat and open ------------------------------------------


class ListSink:
    supports_sendfile = False

    def __init__(self) -> None:
        self.data = bytearray()

    async def send(self, data: bytes) -> None:
        self.data += data

    async def sendfile(self, fd: int, offset: int, count: int) -> None:
        self.data += os.pread(fd, count, offset)


async def test_producer_refuses_a_changed_file(tree: Path) -> None:
    path = tree / "small.txt"
    before = os.stat(path)
    body = FileBody(str(path), before, [(b"", 0, before.st_size)])
    sink = ListSink()
    await body.produce(sink)
    assert sink.data == b"small\n"
    path.write_bytes(b"other!")  # same size, new mtime
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))
    with pytest.raises(OSError, match="changed"):
        await body.produce(ListSink())
    replaced = tree / "new.txt"
    replaced.write_bytes(b"small\n")
    os.utime(replaced, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(replaced, path)  # same size and mtime, another inode
    with pytest.raises(OSError, match="changed"):
        await body.produce(ListSink())


async def test_producer_multipart_pieces(tree: Path) -> None:
    path = tree / "small.txt"
    st = os.stat(path)
    body = FileBody(str(path), st, [(b"<1>", 0, 1), (b"<2>", 4, 2)], trailer=b"<end>")
    sink = ListSink()
    await body.produce(sink)
    assert bytes(sink.data) == b"<1>s<2>l\n<end>"
    assert body.length == len(sink.data)


async def test_inline_read_retries_once_after_a_change(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tree / "small.txt"
    real = static_module._read_pieces
    calls = []

    def changing(p: str, expected: os.stat_result, pieces: Pieces, trailer: bytes) -> bytes | None:
        calls.append(p)
        if len(calls) == 1:
            path.write_bytes(b"changed content\n")
        return real(p, expected, pieces, trailer)

    monkeypatch.setattr(static_module, "_read_pieces", changing)
    static = StaticFiles(tree)
    response = await static(Request("GET", b"/small.txt", []))
    assert len(calls) == 2
    assert response.status == 200
    assert response.body == b"changed content\n"
    st = os.stat(path)
    assert ("etag", conditional.make_etag(st.st_size, st.st_mtime_ns, st.st_ino)) in (response.headers)


async def test_inline_read_gives_up_with_503(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(static_module, "_read_pieces", lambda p, e, pieces, trailer: None)
    response = await StaticFiles(tree)(Request("GET", b"/small.txt", []))
    assert response.status == 503
    assert ("retry-after", "1") in response.headers


@pytest.mark.parametrize("replacement", ["gone", "directory", "symlink"])
async def test_inline_retry_when_the_file_is_replaced(
    tree: Path, monkeypatch: pytest.MonkeyPatch, replacement: str
) -> None:
    path = tree / "small.txt"

    def replace(p: str, expected: os.stat_result, pieces: Pieces, trailer: bytes) -> bytes | None:
        path.unlink()
        if replacement == "directory":
            path.mkdir()
        elif replacement == "symlink":
            path.symlink_to(tree / "big.bin")
        return None

    monkeypatch.setattr(static_module, "_read_pieces", replace)
    response = await StaticFiles(tree)(Request("GET", b"/small.txt", []))
    assert response.status == 404


async def test_inline_open_failure_is_404(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def vanish(p: str, expected: os.stat_result, pieces: Pieces, trailer: bytes) -> bytes | None:
        os.unlink(p)
        return real(p, expected, pieces, trailer)

    real = static_module._read_pieces
    monkeypatch.setattr(static_module, "_read_pieces", vanish)
    assert (await StaticFiles(tree)(Request("GET", b"/small.txt", []))).status == 404


async def test_inline_short_read_counts_as_a_change(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tree / "small.txt"
    st = os.stat(path)
    monkeypatch.setattr(os, "pread", lambda fd, n, off: b"sm")
    assert static_module._read_pieces(str(path), st, [(b"", 0, st.st_size)], b"") is None


async def test_unreadable_producer_file_is_404(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    static = StaticFiles(tree)
    assert (await static(Request("GET", b"/big.bin", []))).status == 404
    assert (await static(Request("HEAD", b"/small.txt", []))).status == 404


async def test_filesystem_root_as_root(tree: Path) -> None:
    static = StaticFiles("/")
    assert static.contains(str(tree))
    response = await static(Request("GET", f"{tree}/small.txt".encode(), []))
    assert response.status == 200
    assert response.body == b"small\n"


async def test_repr(tree: Path) -> None:
    assert repr(StaticFiles(tree)) == f"<StaticFiles {str(tree)!r}>"
