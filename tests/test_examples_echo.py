"""The examples and the CLI echo endpoint, run as real subprocesses (killed in ``finally``).

Reproduces the Mongoose tutorial run: the server prints
``Starting WS listener on ws://localhost:PORT/websocket``, the client prints
exactly ``GOT ECHO REPLY: [hello]`` and exits 0.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

import trio_ws
from trio_ws import ConnectionClosedError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TIMEOUT = 30


@asynccontextmanager
async def background(*args: str) -> AsyncIterator[str]:
    """Start ``python *args``; yield its first line of output; kill it on exit."""
    proc = await trio.lowlevel.open_process(
        [sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT
    )
    try:
        assert proc.stdout is not None
        buf = b""
        with trio.fail_after(TIMEOUT):
            while b"\n" not in buf:
                data = await proc.stdout.receive_some(4096)
                assert data, f"process exited: {buf!r}"
                buf += data
        yield buf.split(b"\n")[0].decode()
    finally:
        proc.kill()
        with trio.move_on_after(TIMEOUT):
            await proc.wait()
        if proc.stdout is not None:
            await proc.stdout.aclose()


async def run(*args: str) -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(TIMEOUT):
        return await trio.run_process([sys.executable, *args], capture_stdout=True, cwd=ROOT, check=False)


async def test_mongoose_tutorial_run() -> None:
    async with background(str(EXAMPLES / "echo_server.py"), "0") as line:
        match = re.fullmatch(r"Starting WS listener on (ws://localhost:(\d+)/websocket)", line)
        assert match, line
        result = await run(str(EXAMPLES / "echo_client.py"), match.group(1))
    assert result.returncode == 0
    assert result.stdout.decode().splitlines() == ["GOT ECHO REPLY: [hello]"]


async def test_fragments_example() -> None:
    result = await run(str(EXAMPLES / "fragments.py"))
    assert result.returncode == 0
    lines = result.stdout.decode().splitlines()
    assert lines[-1] == "client: received 1048576 bytes"
    assert any("final=True" in line for line in lines)
    assert re.match(r"server: +\d+ bytes at offset +0, +\d+ left in frame, final=False", lines[0])


@pytest.mark.parametrize("message", ["text stays text", b"binary \x00 stays binary"])
async def test_cli_echo_endpoint(message: str | bytes) -> None:
    args = ["-m", "trio_ws", "serve", "--port", "0", "--echo", "/ws", "--max-message-size", "1000"]
    async with background(*args) as line:
        match = re.search(r"http://(127\.0\.0\.1:\d+)/", line)
        assert match, line
        url = f"ws://{match.group(1)}/ws"
        with trio.fail_after(TIMEOUT):
            async with trio_ws.connect(url) as ws:
                await ws.send(message)
                reply = await ws.receive()
                assert reply == message
                assert type(reply) is type(message)
            async with trio_ws.connect(url) as ws:
                await ws.send(bytes(1001))  # over --max-message-size
                with pytest.raises(ConnectionClosedError) as info:
                    await ws.receive()
                assert info.value.code == 1009
