"""Plain-TCP reads and writes without trips through trio's scheduler (HTTP and WebSocket alike).

``trio.SocketStream`` checkpoints on every ``send_all`` and ``receive_some``:
a full scheduler round each, which costs as much as a small response or
message.  On plain TCP both layers therefore use the socket's descriptor
directly:

* :func:`read_direct` reads at once when data is likely waiting (the last read
  filled its buffer), else after waiting for readability — never a speculative
  ``recv`` into EAGAIN and back;
* :func:`write_direct` is one non-blocking ``writev``; the caller hands what the
  kernel did not take to ``send_all`` (which waits, and yields).

To stay fair to other tasks a caller yields at least every
:data:`OPS_PER_YIELD` operations that completed without waiting.  Errors come
out as ``trio.SocketStream`` raises them.  TLS and in-memory streams (no
descriptor: :func:`plain_tcp_fd` is -1) keep the stream's own methods.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Sequence

import trio

__all__ = ["OPS_PER_YIELD", "plain_tcp_fd", "read_direct", "socket_error", "write_direct"]

#: Reads or writes that completed without a trip through the scheduler, at most, before one.
OPS_PER_YIELD = 16


def plain_tcp_fd(stream: trio.abc.Stream) -> int:
    """The descriptor of a plain TCP ``trio.SocketStream``; -1 otherwise (TLS, memory)."""
    if type(stream) is not trio.SocketStream or sys.platform == "win32":  # no os.read on Windows sockets
        return -1
    return stream.socket.fileno()


def socket_error(exc: OSError) -> trio.ClosedResourceError | trio.BrokenResourceError:
    """``exc`` from ``os.read``/``os.writev`` on a socket, as ``trio.SocketStream`` translates it."""
    if exc.errno == errno.EBADF:
        error: trio.ClosedResourceError | trio.BrokenResourceError
        error = trio.ClosedResourceError("this socket was already closed")
    else:
        error = trio.BrokenResourceError(f"socket connection broken: {exc}")
    error.__cause__ = exc
    return error


async def read_direct(fd: int, size: int, *, at_once: bool) -> bytes:
    """One ``os.read`` of up to ``size`` bytes (``b""`` at EOF).

    At once when ``at_once`` (falling back to a wait if nothing is there),
    else after waiting for readability.  Raises ``trio.ClosedResourceError``
    when another task calls ``notify_closing`` on ``fd``, and the
    :func:`socket_error` translation of a failed read.
    """
    while True:
        try:
            if at_once:
                at_once = False
            else:
                await trio.lowlevel.wait_readable(fd)
            return os.read(fd, size)
        except BlockingIOError:
            continue  # nothing there yet, or a spurious wake-up
        except OSError as exc:
            raise socket_error(exc) from exc


def write_direct(fd: int, buffers: Sequence[bytes]) -> int:
    """One non-blocking ``writev`` of ``buffers``: the bytes the kernel took (0 if it would block)."""
    try:
        return os.writev(fd, buffers)
    except BlockingIOError:
        return 0
    except OSError as exc:
        raise socket_error(exc) from exc
