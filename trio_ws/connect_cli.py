"""``trio-ws connect URL``: a WebSocket client for the terminal and for scripts.

Each line typed (or read from stdin) is sent as one message: text by default,
binary with ``--binary`` (the line's bytes, without its line ending).  What
arrives is printed on stdout, one line per message::

    < text: hello
    < binary (300 bytes): 000102030405060708090a0b0c0d0e0f…

Text keeps one message on one line: control characters are written as
escapes (``\\n``, ``\\r``, ``\\t``, ``\\x07``) and a backslash is doubled, so
every line reads back as exactly one message.  Binary shows the first
:data:`HEX_PREVIEW` bytes in hex, ``…`` when there are more.  Status lines
(``* connected ...``, ``* closed ...``) go to stderr, so stdout carries only
messages; ``--quiet`` drops them.

In scripts::

    printf 'one\\ntwo\\n' | trio-ws connect ws://127.0.0.1:8000/ws --wait 0.5

At end of input the client keeps printing for ``--wait`` seconds (default 1)
so that replies to the last lines arrive, then closes with 1000.  If the
server closes first, the client stops reading input.

Exit status: 0 after a clean close (1000, 1001 or no code, either side);
1 with one line on stderr when the handshake is refused (``HTTP 401
Unauthorized: <body>``), the connection fails, or it closes abnormally
(``closed 1011 ...``); 2 for usage errors; 130 after Ctrl-C (which still
closes with 1000).

Reading stdin: ``os.read(0, ...)`` in a worker thread
(``trio.to_thread.run_sync(..., abandon_on_cancel=True)``), lines split on
our side, rather than ``trio.lowlevel.FdStream(os.dup(0))``.  FdStream needs a
pollable descriptor (epoll refuses regular files, so ``< file`` would fail)
and switches the file description, shared with the shell, to non-blocking
mode, which outlives us if we are killed.  A thread reads a tty, a pipe or a
file alike.  It is ``os.read`` and not ``sys.stdin.buffer.readline``: a read
abandoned on close must not hold the buffered reader's lock, or the
interpreter aborts at exit ("could not acquire lock for <stdin> at
interpreter shutdown").  A line longer than :data:`MAX_LINE` is sent in
pieces of that size, so the input buffer has a bound.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import signal
import ssl
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import trio

from .client import connect
from .exceptions import ConnectionClosed, ConnectionClosedOK, HandshakeRejected, InvalidHandshake
from .websocket import Message, WebSocket, WebSocketConfig

__all__ = [
    "HEX_PREVIEW",
    "MAX_LINE",
    "add_parser",
    "format_message",
    "main",
    "parse_header",
    "run",
    "split_lines",
]

#: Bytes of a binary message shown in hex.
HEX_PREVIEW = 64
#: Longest line sent as one message; longer ones go in pieces of this size.
MAX_LINE = 1 << 20
#: Bytes asked of stdin per read.
_READ_SIZE = 64 * 1024
#: Characters of a refusal's body shown in the error line.
_BODY_PREVIEW = 200
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Add the ``connect`` subcommand to ``trio-ws``'s subparsers."""
    parser = commands.add_parser(
        "connect",
        help="an interactive WebSocket client (stdin lines out, messages in)",
        description="Connect to a WebSocket; send each line of stdin, print each message received.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("url", metavar="URL", help="ws:// or wss:// URL")
    parser.add_argument(
        "--subprotocol", action="append", default=[], metavar="NAME", help="offer a subprotocol (repeatable)"
    )
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        type=parse_header,
        metavar="'NAME: VALUE'",
        help="extra request header (repeatable)",
    )
    parser.add_argument("--binary", action="store_true", help="send lines as binary messages")
    parser.add_argument(
        "--wait",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="at end of input, keep printing replies this long before closing",
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, metavar="SECONDS", help="deadline for connecting"
    )
    parser.add_argument(
        "--max-message-size",
        type=int,
        default=WebSocketConfig().max_message_size,
        metavar="BYTES",
        help="largest message accepted (1009 beyond)",
    )
    parser.add_argument(
        "--cafile", type=Path, metavar="PEM", help="trust this CA for wss:// (else the system's)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no status lines on stderr")
    return parser


def parse_header(text: str) -> tuple[str, str]:
    """``'Name: value'`` → ``("Name", "value")`` (argparse type)."""
    name, colon, value = text.partition(":")
    name = name.strip()
    if not colon or not name or any(c.isspace() for c in name):
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {text!r}")
    return name, value.strip()


def format_message(message: Message) -> str:
    """The stdout line for one received message (module docstring)."""
    if isinstance(message, str):
        shown = "".join(_ESCAPES.get(c, f"\\x{ord(c):02x}") if _is_escaped(c) else c for c in message)
        return f"< text: {shown}"
    preview = message[:HEX_PREVIEW].hex()
    more = "…" if len(message) > HEX_PREVIEW else ""
    return f"< binary ({len(message)} bytes): {preview}{more}"


def _is_escaped(c: str) -> bool:
    """Control characters, and the backslash itself (so that ``\\n`` cannot pass for a newline)."""
    code = ord(c)
    return code < 0x20 or 0x7F <= code < 0xA0 or c == "\\"


def _line_to_message(line: bytes, binary: bool) -> Message:
    """A line (without its ``\\n``) as a message; a trailing ``\\r`` goes too."""
    if line.endswith(b"\r"):
        line = line[:-1]
    return line if binary else line.decode("utf-8", "replace")


def split_lines(pending: bytearray) -> list[bytes]:
    """Take the complete lines (and overlong pieces) out of ``pending``."""
    lines = []
    while (end := pending.find(b"\n")) >= 0 or len(pending) >= MAX_LINE:
        if end < 0 or end > MAX_LINE:
            lines.append(bytes(pending[:MAX_LINE]))
            del pending[:MAX_LINE]
        else:
            lines.append(bytes(pending[:end]))
            del pending[: end + 1]
    return lines


def _refusal(exc: HandshakeRejected) -> str:
    from http import HTTPStatus

    try:
        phrase = HTTPStatus(exc.status).phrase
    except ValueError:
        phrase = ""
    body = " ".join(exc.body.decode("utf-8", "replace").split())[:_BODY_PREVIEW]
    return f"handshake refused: HTTP {exc.status} {phrase}".rstrip() + (f": {body}" if body else "")


@dataclass
class _Session:
    """What the two loops of a session found out."""

    closed: ConnectionClosed | None = None
    interrupted: bool = False


class _Client:
    def __init__(
        self,
        args: argparse.Namespace,
        read: Callable[[], bytes],
        out: TextIO,
        err: TextIO,
        interactive: bool,
    ) -> None:
        self.args = args
        self.read = read
        self.out = out
        self.err = err
        self.interactive = interactive
        self.session = _Session()

    def status(self, text: str) -> None:
        if not self.args.quiet:
            print(f"* {text}", file=self.err, flush=True)

    def error(self, text: str) -> int:
        print(f"trio-ws connect: {text}", file=self.err, flush=True)
        return 1

    async def run(self) -> int:
        args = self.args
        ssl_context = ssl.create_default_context(cafile=str(args.cafile)) if args.cafile else None
        try:
            # The deadline covers connecting only: lifted once the handshake is done.
            with trio.CancelScope(deadline=trio.current_time() + args.timeout) as deadline:
                async with connect(
                    args.url,
                    subprotocols=args.subprotocol,
                    headers=args.header,
                    ssl_context=ssl_context,
                    max_message_size=args.max_message_size,
                ) as ws:
                    deadline.deadline = math.inf
                    await self.converse(ws)
            if deadline.cancelled_caught:
                return self.error(f"no connection to {args.url} within {args.timeout}s")
        except HandshakeRejected as exc:
            return self.error(_refusal(exc))
        except (InvalidHandshake, OSError, ValueError) as exc:
            return self.error(f"cannot connect to {args.url}: {exc}")
        return self.outcome()

    async def converse(self, ws: WebSocket) -> None:
        shown = f" (subprotocol {ws.subprotocol})" if ws.subprotocol else ""
        self.status(f"connected to {self.args.url}{shown}")
        if self.interactive:
            self.status("type a line to send it; Ctrl-D closes, Ctrl-C too")
        with trio.open_signal_receiver(signal.SIGINT) as interrupts:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.receive_loop, ws, nursery.cancel_scope)
                nursery.start_soon(self.send_loop, ws, nursery.cancel_scope)
                nursery.start_soon(self.watch_interrupts, interrupts, nursery.cancel_scope)
        if self.session.closed is None:
            await ws.aclose(1000)
            self.status("closed 1000")

    async def receive_loop(self, ws: WebSocket, done: trio.CancelScope) -> None:
        try:
            while True:
                message = await ws.receive()
                print(format_message(message), file=self.out, flush=True)
        except ConnectionClosed as exc:
            self.session.closed = exc
        except BrokenPipeError:
            pass  # stdout went away (| head): nothing more to show
        done.cancel()

    async def send_loop(self, ws: WebSocket, done: trio.CancelScope) -> None:
        pending = bytearray()  # at most MAX_LINE + one read
        try:
            while chunk := await trio.to_thread.run_sync(self.read, abandon_on_cancel=True):
                pending += chunk
                for line in split_lines(pending):
                    await ws.send(_line_to_message(line, self.args.binary))
            if pending:  # a last line without a newline
                await ws.send(_line_to_message(bytes(pending), self.args.binary))
        except ConnectionClosed as exc:
            self.session.closed = exc
        else:
            await trio.sleep(self.args.wait)  # end of input: let the last replies arrive
        done.cancel()

    async def watch_interrupts(self, interrupts: AsyncIterator[int], done: trio.CancelScope) -> None:
        async for _ in interrupts:
            self.session.interrupted = True
            done.cancel()
            return

    def outcome(self) -> int:
        closed = self.session.closed
        if closed is not None:
            clean = isinstance(closed, ConnectionClosedOK)
            if closed.code is None:  # no code in the Close (1005), or no Close at all (1006)
                text = "closed without a code" if clean else "connection lost (1006)"
            else:
                text = f"closed {closed.code}" + (f" {closed.reason}" if closed.reason else "")
            if not clean:
                return self.error(text)
            self.status(f"{text} (by the server)")
        return 130 if self.session.interrupted else 0


async def run(
    args: argparse.Namespace,
    read: Callable[[], bytes],
    out: TextIO,
    err: TextIO,
    *,
    interactive: bool = False,
) -> int:
    """Run one ``connect`` session; returns the exit status.

    ``read()`` returns the next chunk of input (``b""`` at its end); it is
    called in a worker thread and may block.
    """
    return await _Client(args, read, out, err, interactive).run()


def main(args: argparse.Namespace) -> int:
    """``trio-ws connect`` with parsed arguments; returns the exit status."""
    read_stdin = functools.partial(os.read, 0, _READ_SIZE)
    try:
        return trio.run(
            functools.partial(run, interactive=os.isatty(0)), args, read_stdin, sys.stdout, sys.stderr
        )
    except KeyboardInterrupt:  # Ctrl-C while connecting
        return 130
