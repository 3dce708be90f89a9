"""``trio-ws connect``: output format, scripts on stdin, exit statuses; and Ctrl-C in ``serve`` (1001).

Sessions run in-process against servers on 127.0.0.1:0 (stdin a BytesIO or a
pipe), and end to end as subprocesses (``python -m trio_ws``), killed in
``finally``.
"""

from __future__ import annotations

import argparse
import base64
import functools
import hashlib
import io
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
import trio

import trio_ws
from trio_ws import cli, connect_cli
from trio_ws.connect_cli import HEX_PREVIEW, MAX_LINE, format_message, parse_header, split_lines

DEADLINE = 10.0


def parse(*argv: str) -> argparse.Namespace:
    return cli.make_parser().parse_args(["connect", *argv])


async def session(
    url: str,
    *argv: str,
    stdin: bytes | Callable[[], bytes] = b"",
    interactive: bool = False,
    out: io.StringIO | None = None,
) -> tuple[int, str, str]:
    """One in-process ``connect`` session: (status, stdout, stderr); ``stdin`` bytes, or a read function."""
    out, err = out or io.StringIO(), io.StringIO()
    read = functools.partial(io.BytesIO(stdin).read1, 5) if isinstance(stdin, bytes) else stdin
    with trio.fail_after(DEADLINE):
        status = await connect_cli.run(parse(url, *argv), read, out, err, interactive=interactive)
    return status, out.getvalue(), err.getvalue()


def make_app() -> trio_ws.App:
    app = trio_ws.App()

    @app.websocket("/echo")
    async def echo(ws: trio_ws.WebSocket) -> None:
        async for message in ws:
            if message == "later":
                await trio.sleep(0.2)
                message = "late reply"
            await ws.send(message)

    @app.websocket("/one")
    async def one(ws: trio_ws.WebSocket) -> None:
        await ws.send(f"you said {await ws.receive()!r}; bye")  # then returns: Close 1000

    @app.websocket("/crash")
    async def crash(ws: trio_ws.WebSocket) -> None:
        await ws.receive()
        raise RuntimeError("handler bug")  # Close 1011

    @app.websocket("/private", accept=False)
    async def private(req: trio_ws.WebSocketRequest) -> None:
        if req.request.header("authorization") != "Bearer sesame":
            await req.reject(401, body="who are you?\nsend a token")
            return
        ws = await req.accept(subprotocol="chat.v1" if "chat.v1" in req.subprotocols else None)
        await ws.send(f"welcome ({ws.subprotocol})")
        async for message in ws:
            await ws.send(message)

    return app


@asynccontextmanager
async def server() -> AsyncIterator[str]:
    """``make_app()`` on 127.0.0.1:0; yields ``ws://127.0.0.1:PORT``."""
    async with trio.open_nursery() as nursery:
        srv = await nursery.start(trio_ws.serve, make_app(), "127.0.0.1", 0)
        try:
            yield f"ws://127.0.0.1:{srv.port}"
        finally:
            with trio.move_on_after(DEADLINE):
                await srv.aclose()


# -- pure helpers ---------------------------------------------------------------------


def test_format_text_keeps_one_message_on_one_line() -> None:
    assert format_message("hello") == "< text: hello"
    assert format_message("a\nb\r\tc\x07\x7f é") == "< text: a\\nb\\r\\tc\\x07\\x7f é"
    # A backslash is doubled: a literal backslash-n is not a newline.
    assert format_message("a\\nb") == "< text: a\\\\nb"
    assert format_message("a\\nb") != format_message("a\nb")


def test_format_binary_shows_hex() -> None:
    assert format_message(b"\x00\xff") == "< binary (2 bytes): 00ff"
    big = bytes(range(256))
    assert format_message(big) == f"< binary (256 bytes): {big[:HEX_PREVIEW].hex()}…"
    assert format_message(b"") == "< binary (0 bytes): "


def test_parse_header() -> None:
    assert parse_header("Authorization: Bearer x:y") == ("Authorization", "Bearer x:y")
    assert parse_header("X-Empty:") == ("X-Empty", "")
    for bad in ("no colon", ": value", "Bad Name: v"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_header(bad)


def test_split_lines_bounds_the_buffer() -> None:
    pending = bytearray(b"a\r\nb\n\nrest")
    assert split_lines(pending) == [b"a\r", b"b", b""]
    assert pending == b"rest"
    pending = bytearray(b"x" * (MAX_LINE + 3) + b"\nz")
    assert split_lines(pending) == [b"x" * MAX_LINE, b"xxx"]
    assert pending == b"z"


def test_bad_header_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["connect", "ws://127.0.0.1:1/", "--header", "nonsense"])
    assert info.value.code == 2
    assert "expected 'Name: value'" in capsys.readouterr().err


def test_help_lists_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["connect", "--help"])
    text = capsys.readouterr().out
    for option in ("--subprotocol", "--header", "--binary", "--wait", "--timeout", "--quiet"):
        assert option in text


# -- sessions -------------------------------------------------------------------------


async def test_lines_in_messages_out() -> None:
    async with server() as base:
        status, out, err = await session(f"{base}/echo", "--wait", "0.5", stdin=b"one\r\ntwo\n\nthree")
    assert status == 0
    assert out.splitlines() == ["< text: one", "< text: two", "< text: ", "< text: three"]
    assert err.splitlines() == [f"* connected to {base}/echo", "* closed 1000"]


async def test_binary_lines() -> None:
    async with server() as base:
        status, out, _ = await session(f"{base}/echo", "--binary", "--quiet", "--wait", "0.5", stdin=b"hi\n")
    assert (status, out) == (0, "< binary (2 bytes): 6869\n")


async def test_wait_prints_replies_that_come_after_end_of_input() -> None:
    async with server() as base:
        status, out, err = await session(f"{base}/echo", "--wait", "2", stdin=b"later\n")
    assert (status, out) == (0, "< text: late reply\n")
    assert err.endswith("* closed 1000\n")


async def test_subprotocol_and_header() -> None:
    async with server() as base:
        url = f"{base}/private"
        argv = [
            "--subprotocol",
            "other",
            "--subprotocol",
            "chat.v1",
            "--header",
            "Authorization: Bearer sesame",
        ]
        status, out, err = await session(url, *argv, "--wait", "0.5", stdin=b"ping\n")
    assert status == 0
    assert out.splitlines() == ["< text: welcome (chat.v1)", "< text: ping"]
    assert f"* connected to {url} (subprotocol chat.v1)" in err


def test_refusal_with_an_unregistered_status() -> None:
    exc = trio_ws.HandshakeRejected(599, [], b"")
    assert connect_cli._refusal(exc) == "handshake refused: HTTP 599"


async def test_stdout_closed_is_not_an_error() -> None:
    class ClosedPipe(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    async with server() as base:
        status, _, err = await session(f"{base}/echo", "--wait", "5", stdin=b"one\n", out=ClosedPipe())
    assert status == 0
    assert err.endswith("* closed 1000\n")


async def test_refused_handshake_is_one_line_with_the_status() -> None:
    async with server() as base:
        status, out, err = await session(f"{base}/private")
    assert (status, out) == (1, "")
    assert err == "trio-ws connect: handshake refused: HTTP 401 Unauthorized: who are you? send a token\n"


async def test_server_closes_first_cleanly() -> None:
    async with server() as base:
        status, out, err = await session(f"{base}/one", stdin=b"first\nsecond\nthird\n")
    assert status == 0
    assert out == "< text: you said 'first'; bye\n"
    assert "* closed 1000 (by the server)" in err


async def test_abnormal_close_exits_1() -> None:
    async with server() as base:
        status, _, err = await session(f"{base}/crash", "--wait", "5", stdin=b"boom\n")
    assert status == 1
    assert err.splitlines()[-1] == "trio-ws connect: closed 1011 internal error"


async def test_connection_lost_without_a_close_frame() -> None:
    """A server that answers 101 and drops TCP: 1006, exit 1."""

    async def handle(stream: trio.SocketStream) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            head += await stream.receive_some(4096)
        key = re.search(rb"(?i)sec-websocket-key: *(\S+)", head)
        assert key is not None
        digest = hashlib.sha1(key.group(1) + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
        await stream.send_all(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + base64.b64encode(digest) + b"\r\n\r\n"
        )
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(functools.partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        status, _, err = await session(f"ws://127.0.0.1:{port}/", stdin=b"x\n", interactive=False)
        nursery.cancel_scope.cancel()
    assert status == 1
    assert err.splitlines()[-1] == "trio-ws connect: connection lost (1006)"


async def test_no_server_exits_1() -> None:
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: refused
        status, _, err = await session(f"ws://127.0.0.1:{port}/")
    assert status == 1
    assert err.startswith(f"trio-ws connect: cannot connect to ws://127.0.0.1:{port}/: ")
    status, _, err = await session("http://127.0.0.1/")
    assert status == 1
    assert "not a WebSocket URL" in err


async def test_connect_timeout() -> None:
    """A server that accepts TCP and never answers the upgrade."""
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        status, _, err = await session(f"ws://127.0.0.1:{port}/", "--timeout", "0.2")
    assert status == 1
    assert err == f"trio-ws connect: no connection to ws://127.0.0.1:{port}/ within 0.2s\n"


async def test_ctrl_c_closes_with_1000_and_exits_130() -> None:
    """Stdin stays open (a pipe nobody writes to): the read is abandoned, the close is clean."""
    read_fd, write_fd = os.pipe()
    closed: list[int | None] = []
    app = trio_ws.App()

    @app.websocket("/hold")
    async def hold(ws: trio_ws.WebSocket) -> None:
        async for _ in ws:
            pass
        closed.append(ws.close_code)

    stdin = functools.partial(os.read, read_fd, 4096)
    with trio.fail_after(DEADLINE):
        try:
            async with trio.open_nursery() as nursery:
                srv = await nursery.start(trio_ws.serve, app, "127.0.0.1", 0)
                result: list[tuple[int, str, str]] = []

                async def client() -> None:
                    url = f"ws://127.0.0.1:{srv.port}/hold"
                    result.append(await session(url, stdin=stdin, interactive=True))

                nursery.start_soon(client)
                while srv.statistics()["connections"] == 0:
                    await trio.sleep(0.01)
                await trio.sleep(0.1)  # inside the session, its signal receiver installed
                os.kill(os.getpid(), signal.SIGINT)
                while not result:
                    await trio.sleep(0.01)
                await srv.aclose()
        finally:
            os.close(write_fd)  # ends the abandoned read
            os.close(read_fd)
    [(status, _, err)] = result
    assert status == 130
    assert "Ctrl-D closes" in err  # the hint for people at a terminal
    assert err.endswith("* closed 1000\n")
    assert closed == [1000]


# -- end to end: the real commands -----------------------------------------------------

URL_LINE = re.compile(rb"on http://127\.0\.0\.1:(\d+)/")


@asynccontextmanager
async def serve_process(*args: str) -> AsyncIterator[tuple[trio.Process, int]]:
    """``python -m trio_ws serve --port 0 ...``; yields the process and its port; killed in finally."""
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "trio_ws", "serve", "--port", "0", "--log-level", "warning", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        seen = b""
        with trio.fail_after(DEADLINE):
            while not (match := URL_LINE.search(seen)):
                chunk = await process.stdout.receive_some(4096)
                assert chunk, f"serve exited: {seen!r}"
                seen += chunk
        yield process, int(match.group(1))
    finally:
        if process.returncode is None:
            process.kill()
        with trio.move_on_after(DEADLINE):
            await process.wait()
        if process.stdout is not None:
            await process.stdout.aclose()


async def test_connect_command_in_a_script() -> None:
    async with serve_process() as (_, port):
        with trio.fail_after(30):
            result = await trio.run_process(
                [sys.executable, "-m", "trio_ws", "connect", f"ws://127.0.0.1:{port}/ws", "--wait", "0.5"],
                stdin=b"hello\nworld\n",
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines() == ["< text: hello", "< text: world"]


async def test_connect_command_refused() -> None:
    async with serve_process() as (_, port):
        with trio.fail_after(30):
            result = await trio.run_process(
                [sys.executable, "-m", "trio_ws", "connect", f"ws://127.0.0.1:{port}/nowhere"],
                stdin=b"",
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
    assert result.returncode == 1
    assert result.stderr.decode() == "trio-ws connect: handshake refused: HTTP 404 Not Found: 404 Not Found\n"


async def test_ctrl_c_in_serve_closes_websockets_with_1001() -> None:
    """SIGINT: the connected clients see Close 1001, ``serve`` exits 0, and so does ``connect``."""
    async with serve_process() as (server, port):
        connect = await trio.lowlevel.open_process(
            [sys.executable, "-m", "trio_ws", "connect", f"ws://127.0.0.1:{port}/chat"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            assert connect.stderr is not None
            with trio.fail_after(30):
                seen = b""
                while b"* connected" not in seen:
                    chunk = await connect.stderr.receive_some(4096)
                    assert chunk, seen
                    seen += chunk
                async with (
                    trio_ws.connect(f"ws://127.0.0.1:{port}/ws") as echo,
                    trio_ws.connect(f"ws://127.0.0.1:{port}/chat") as chat,
                ):
                    await echo.send("still open")
                    assert await echo.receive() == "still open"
                    server.send_signal(signal.SIGINT)
                    for ws in (echo, chat):
                        with pytest.raises(trio_ws.ConnectionClosedOK) as info:
                            await ws.receive()
                        assert info.value.code == 1001
                assert await server.wait() == 0
                assert await connect.wait() == 0
                while chunk := await connect.stderr.receive_some(4096):
                    seen += chunk
            assert b"* closed 1001 server shutting down (by the server)" in seen
        finally:
            if connect.returncode is None:
                connect.kill()
            with trio.move_on_after(DEADLINE):
                await connect.wait()
            for pipe in (connect.stdin, connect.stderr):
                if pipe is not None:
                    await pipe.aclose()


def test_main_reads_file_descriptor_0(capfd: pytest.CaptureFixture[str]) -> None:
    """``trio-ws connect`` in-process: stdin is fd 0 (here a pipe put in its place)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "trio_ws", "serve", "--port", "0", "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    saved = os.dup(0)
    read_fd, write_fd = os.pipe()
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # the server prints its URL first thing
        found = URL_LINE.search(line)
        assert found, line
        os.write(write_fd, b"from fd 0\n")
        os.close(write_fd)
        os.dup2(read_fd, 0)
        status = cli.main(["connect", f"ws://127.0.0.1:{int(found.group(1))}/ws", "--wait", "0.5"])
    finally:
        os.dup2(saved, 0)
        os.close(saved)
        os.close(read_fd)
        process.kill()
        process.wait(timeout=DEADLINE)
        if process.stdout is not None:
            process.stdout.close()
    assert status == 0
    assert capfd.readouterr().out == "< text: from fd 0\n"
