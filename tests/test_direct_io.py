"""``trio_ws._direct_io``: plain-TCP reads and writes shared by the HTTP and WebSocket layers."""

from __future__ import annotations

import errno
import socket

import pytest
import trio
import trio.testing

from trio_ws._direct_io import plain_tcp_fd, read_direct, socket_error, write_direct


@pytest.mark.parametrize(
    ("code", "kind"),
    [(errno.EBADF, trio.ClosedResourceError), (errno.ECONNRESET, trio.BrokenResourceError)],
)
def test_socket_errors_come_out_as_trio_socket_streams_raise_them(code: int, kind: type[Exception]) -> None:
    exc = OSError(code, "boom")
    error = socket_error(exc)
    assert type(error) is kind
    assert error.__cause__ is exc


async def test_reads_and_writes_on_a_socket_pair() -> None:
    a, b = trio.socket.socketpair()
    with a, b:
        stream_a = trio.SocketStream(a)  # (a socketpair is not TCP, but the fd path is the same)
        assert plain_tcp_fd(stream_a) == a.fileno()
        assert plain_tcp_fd(trio.testing.memory_stream_pair()[0]) == -1
        assert write_direct(a.fileno(), (b"he", b"llo")) == 5
        assert await read_direct(b.fileno(), 100, at_once=True) == b"hello"

        async def later() -> None:
            await trio.sleep(0.05)
            write_direct(a.fileno(), (b"late",))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(later)
            # Nothing there yet: "at once" falls back to waiting for readability.
            assert await read_direct(b.fileno(), 100, at_once=True) == b"late"

        b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        while write_direct(a.fileno(), (b"x" * 65536,)):
            pass  # until the buffers are full: then it takes nothing, without raising
        assert write_direct(a.fileno(), (b"more",)) == 0
