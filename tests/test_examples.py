"""Smoke tests of the examples not covered elsewhere, each run as a real subprocess.

Every example starts on an ephemeral port (``0``), prints where it listens,
is driven a little, and is killed in ``finally``.  ``echo_server.py``,
``echo_client.py`` and ``fragments.py`` are run by ``test_examples_echo.py``,
``tls_echo.py`` by ``test_tls_wss.py``; the last test checks that no example
is left without a test.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

import trio_ws

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
TIMEOUT = 30


class Output:
    """The lines a running example prints, read with a deadline."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self._stream = stream
        self._buffer = b""

    async def line(self) -> str:
        with trio.fail_after(TIMEOUT):
            while b"\n" not in self._buffer:
                data = await self._stream.receive_some(4096)
                assert data, f"the example exited: {self._buffer!r}"
                self._buffer += data
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()

    async def match(self, pattern: str) -> re.Match[str]:
        line = await self.line()
        found = re.fullmatch(pattern, line)
        assert found, f"{line!r} does not match {pattern!r}"
        return found


@asynccontextmanager
async def example(name: str, *args: str) -> AsyncIterator[Output]:
    """Run ``python examples/NAME ARGS...``; yield its output; kill it on exit."""
    process = await trio.lowlevel.open_process(
        [sys.executable, str(EXAMPLES / name), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=REPO,
    )
    try:
        assert process.stdout is not None
        yield Output(process.stdout)
    finally:
        process.kill()
        with trio.move_on_after(TIMEOUT):
            await process.wait()
        if process.stdout is not None:
            await process.stdout.aclose()


async def http_get(port: int, target: str, *headers: str) -> bytes:
    """A raw HTTP/1.1 GET (Connection: close); the whole answer, head and body."""
    with trio.fail_after(TIMEOUT):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            head = "".join(f"{h}\r\n" for h in headers)
            await stream.send_all(
                f"GET {target} HTTP/1.1\r\nHost: x\r\n{head}Connection: close\r\n\r\n".encode()
            )
            answer = b""
            while data := await stream.receive_some(65536):
                answer += data
    return answer


# -- static_files.py ------------------------------------------------------------------


async def test_static_files_example_answers_ranges(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("static_files_example", EXAMPLES / "static_files.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (tmp_path / module.DEMO_NAME).write_bytes(module.DEMO_BYTES)
    async with example("static_files.py", str(tmp_path), "0") as output:
        found = await output.match(r"serving .* on http://127\.0\.0\.1:(\d+)/  \(Ctrl-C to stop\)")
        port = int(found.group(1))
        answer = await http_get(port, f"/{module.DEMO_NAME}", "Range: bytes=64-95")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 206 ")
    assert b"\r\ncontent-range: bytes 64-95/7029" in head.lower()
    assert body == module.DEMO_BYTES[64:96]
    assert body[:4] == bytes.fromhex("ed707e14")  # the hexdump in the lesson


# -- chat.py --------------------------------------------------------------------------


async def test_chat_example_broadcasts() -> None:
    async with example("chat.py", "0") as output:
        found = await output.match(r"chat room on ws://localhost:(\d+)/chat")
        port = int(found.group(1))
        assert await output.line() == f"page: http://localhost:{port}/chat.html"
        url = f"ws://127.0.0.1:{port}/chat"
        with trio.fail_after(TIMEOUT):
            async with trio_ws.connect(url) as ann:
                assert await output.line() == "joined: 1 member(s)"
                async with trio_ws.connect(url) as bob:
                    assert await output.line() == "joined: 2 member(s)"
                    await ann.send("hi bob")
                    assert await bob.receive() == "hi bob"
                    assert await ann.receive() == "hi bob"  # the sender's receipt
                    await bob.send(b"\x01\x02")
                    assert await ann.receive() == b"\x01\x02"
                assert await output.line() == "left: 1 member(s)"
        page = await http_get(port, "/chat.html")
        assert page.startswith(b"HTTP/1.1 200 ")
        assert b'id="chat-log"' in page
        config = (await http_get(port, "/config.json")).partition(b"\r\n\r\n")[2]
        assert json.loads(config)["chat"] == "/chat"


# -- auth_reject.py -------------------------------------------------------------------


async def test_auth_reject_example() -> None:
    async with example("auth_reject.py", "0") as output:
        found = await output.match(r"listening on (ws://localhost:(\d+)/private)")
        url = f"ws://127.0.0.1:{found.group(2)}/private"
        assert await output.line() == (
            "refused: HTTP 401, body 'missing or wrong token:"
            " add ?token=... or an Authorization: Bearer header'"
        )
        assert await output.line() == "query token: accepted, 'welcome (subprotocol: chat.v1)'"
        assert await output.line() == "header token: accepted, 'welcome (subprotocol: None)'"
        with trio.fail_after(TIMEOUT):
            with pytest.raises(trio_ws.HandshakeRejected) as info:
                async with trio_ws.connect(f"{url}?token=wrong"):
                    pass
            assert info.value.status == 401
            assert ("www-authenticate", 'Bearer realm="trio_ws example"') in info.value.headers
            headers = [("Authorization", "Bearer s3cret")]
            async with trio_ws.connect(url, headers=headers, subprotocols=["chat.v1"]) as ws:
                assert ws.subprotocol == "chat.v1"
                assert await ws.receive() == "welcome (subprotocol: chat.v1)"
                await ws.send("echo me")
                assert await ws.receive() == "echo me"


# -- every example has a test -----------------------------------------------------------


def test_every_example_is_smoke_tested() -> None:
    tests = "\n".join(path.read_text() for path in (REPO / "tests").glob("test_*.py"))
    untested = [path.name for path in EXAMPLES.glob("*.py") if f'"{path.name}"' not in tests]
    assert untested == []
