"""The ``trio-ws`` command line, as a subprocess (``python -m trio_ws``) and in-process."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from trio_ws import cli

from .conftest import DEADLINE, H11Client, read_until_eof

URL_LINE = re.compile(rb"trio_ws serving .* on http://127\.0\.0\.1:(\d+)/")


def test_help_lists_commands_and_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: trio-ws")
    assert "serve" in out
    with pytest.raises(SystemExit):
        cli.main(["serve", "--help"])
    serve_help = capsys.readouterr().out
    for option in (
        "--host",
        "--port",
        "--max-connections",
        "--header-timeout",
        "--shutdown-timeout",
        "--no-access-log",
    ):
        assert option in serve_help


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == "trio-ws 0.1.0"


def test_no_command_prints_help_and_returns_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "usage: trio-ws" in capsys.readouterr().out


def test_root_must_be_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["serve", str(tmp_path / "missing")])
    assert exit_info.value.code == 2
    assert "ROOT must be a directory" in capsys.readouterr().err


def test_port_in_use_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert cli.main(["serve", "--port", str(port), "--log-level", "error"]) == 1
    assert capsys.readouterr().err.startswith("trio-ws: ")


def test_config_from_arguments() -> None:
    args = cli.make_parser().parse_args(
        ["serve", "--max-connections", "7", "--max-body-size", "99", "--header-timeout", "1.5",
         "--keepalive-timeout", "2.5", "--shutdown-timeout", "3.5"]
    )  # fmt: skip
    config = cli._config(args)
    assert (config.max_connections, config.max_body_size) == (7, 99)
    assert (config.header_timeout, config.keepalive_timeout, config.shutdown_timeout) == (1.5, 2.5, 3.5)


# -- the real command, in a subprocess ------------------------------------------------


@asynccontextmanager
async def cli_process(*args: str) -> AsyncIterator[tuple[trio.Process, int]]:
    """``python -m trio_ws serve --port 0 ...``; yields the process and the port it printed."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "trio_ws", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert process.stdout is not None
        seen = b""
        with trio.fail_after(DEADLINE):
            while not (match := URL_LINE.search(seen)):
                chunk = await process.stdout.receive_some(4096)
                assert chunk, f"CLI exited before printing its URL: {seen!r}"
                seen += chunk
        port = int(match.group(1))
        assert port != 0, "the CLI printed port 0 instead of the bound port"
        yield process, port
    finally:
        if process.returncode is None:
            process.kill()
        with trio.move_on_after(DEADLINE):
            await process.wait()


async def fetch_root(port: int) -> tuple[int, bytes]:
    client = await H11Client.connect(port)
    try:
        response = await client.request("GET", "/", [("connection", "close")])
        return response.status, response.body
    finally:
        await client.aclose()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_serve_then_signal_exits_0(signum: signal.Signals) -> None:
    async with cli_process() as (process, port):
        status, body = await fetch_root(port)
        assert status == 200
        assert b"trio_ws is running" in body
        process.send_signal(signum)
        with trio.fail_after(DEADLINE):
            await process.wait()
        assert process.returncode == 0
        assert process.stderr is not None
        stderr = await read_until_eof(process.stderr)
    assert b'"GET / HTTP/1.1" 200' in stderr  # the access-log line
    assert b"INFO trio_ws.access" in stderr
    assert f"received {signum.name}".encode() in stderr
    assert b"Traceback" not in stderr


async def test_no_access_log_flag() -> None:
    async with cli_process("--no-access-log") as (process, port):
        assert (await fetch_root(port))[0] == 200
        process.send_signal(signal.SIGINT)
        with trio.fail_after(DEADLINE):
            await process.wait()
        assert process.stderr is not None
        stderr = await read_until_eof(process.stderr)
    assert process.returncode == 0
    assert b"trio_ws.access" not in stderr


# -- in-process, for coverage of the serving loop ---------------------------------------


async def test_serve_until_signal_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    args = cli.make_parser().parse_args(["serve", "--port", "0", "--host", "127.0.0.1"])
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(cli._serve_until_signal, args)
            out = ""
            while "http://" not in out:
                await trio.sleep(0.01)
                out += capsys.readouterr().out
            match = re.search(r"http://127\.0\.0\.1:(\d+)/", out)
            assert match is not None
            assert (await fetch_root(int(match.group(1))))[0] == 200
            os.kill(os.getpid(), signal.SIGTERM)
    assert "the built-in demo" in out


async def test_build_app_serves_root_directory(tmp_path: Path) -> None:
    from trio_ws.testing import request

    (tmp_path / "hello.txt").write_bytes(b"hi from disk")
    app = cli.build_app(cli.make_parser().parse_args(["serve", str(tmp_path)]))
    result = await request(app, "GET", "/hello.txt")
    assert (result.status, result.body) == (200, b"hi from disk")
    demo = cli.build_app(cli.make_parser().parse_args(["serve", "--echo", "/ws"]))
    assert b"trio_ws is running" in (await request(demo, "GET", "/")).body
    assert (await request(demo, "POST", "/ws")).status == 405  # the echo endpoint is a GET route
