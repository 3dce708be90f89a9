"""A compression bomb against our server: one ~1 MB frame that inflates to 1 GiB.

The server runs with ``max_message_size=1 MiB``.  It must answer Close 1009
quickly, and its memory must stay bounded whatever the ratio: measured with
tracemalloc in this process (every Python and zlib allocation is traced) and
with the peak RSS of a fresh process (``VmHWM`` from ``/proc/self/status``: unlike
``getrusage().ru_maxrss``, which Linux carries across fork and exec, so a child
of a big pytest process reports its parent's peak, it starts afresh at exec).  The pure-level bound is in
``tests/sansio/test_deflate.py``.
"""

from __future__ import annotations

import contextlib
import os
import struct
import subprocess
import sys
import textwrap
import time
import tracemalloc
import zlib
from pathlib import Path

import pytest
import trio

from trio_ws import App
from trio_ws.ws_endpoint import echo_handler

from .ws_support import serving

MAX_MESSAGE = 1 << 20
INFLATED = 1 << 30
#: The bound asked for: memory growth over the whole exchange.
MEMORY_BOUND = 20 << 20
REPO = Path(__file__).resolve().parent.parent


def make_bomb(inflated: int = INFLATED) -> bytes:
    """permessage-deflate payload of ``inflated`` zero bytes, the 00 00 ff ff tail stripped."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(1 << 20)
    parts = [deflater.compress(chunk) for _ in range(inflated >> 20)]
    parts.append(deflater.flush(zlib.Z_SYNC_FLUSH))
    return b"".join(parts)[:-4]


def masked_frame(payload: bytes, mask: bytes = b"\x11\x22\x33\x44") -> bytes:
    """A final binary frame with RSV1 set, masked, built by hand (not with our serializer)."""
    head = struct.pack("!BBQ", 0x80 | 0x40 | 0x2, 0x80 | 127, len(payload)) + mask
    repeated = (mask * (len(payload) // 4 + 1))[: len(payload)]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(len(payload), "big")
    return head + masked


UPGRADE = (
    b"GET /echo HTTP/1.1\r\nHost: bomb.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
)


async def read_close_code(stream: trio.abc.Stream, buffered: bytes) -> int:
    """Read server frames until a Close; return its code."""
    buf = bytearray(buffered)
    while True:
        while len(buf) < 2 or len(buf) < 2 + (buf[1] & 0x7F):
            data = await stream.receive_some(65536)
            assert data, "EOF before the server's Close"
            buf += data
        opcode, length = buf[0] & 0x0F, buf[1] & 0x7F
        assert length < 126  # the server sends nothing big here
        payload = bytes(buf[2 : 2 + length])
        del buf[: 2 + length]
        if opcode == 0x8:
            return int(struct.unpack("!H", payload[:2])[0])


async def bomb_server(frame: bytes, port: int) -> tuple[int, float]:
    """Upgrade with permessage-deflate, send ``frame``; return (close code, seconds)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(UPGRADE)
        head = b""
        while b"\r\n\r\n" not in head:
            head += await stream.receive_some(4096)
        head, _, rest = head.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101")
        assert b"permessage-deflate" in head.lower()
        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            # The server may close before reading it all: a send failure is fine.
            async def send() -> None:
                with contextlib.suppress(trio.BrokenResourceError):
                    await stream.send_all(frame)

            nursery.start_soon(send)
            code = await read_close_code(stream, rest)
            nursery.cancel_scope.cancel()
        return code, time.perf_counter() - started


@pytest.fixture(scope="module")
def bomb_frame() -> bytes:
    payload = make_bomb()
    assert 900_000 < len(payload) < MAX_MESSAGE  # passes the wire-size check: only inflation can stop it
    return masked_frame(payload)


async def test_bomb_gets_1009_quickly_with_bounded_memory(bomb_frame: bytes) -> None:
    app = App()
    app.websocket("/echo", max_message_size=MAX_MESSAGE)(echo_handler)
    with trio.fail_after(30):
        async with serving(app, "tcp") as h:
            tracemalloc.start()
            try:
                tracemalloc.reset_peak()
                base, _ = tracemalloc.get_traced_memory()
                code, seconds = await bomb_server(bomb_frame, h.port)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
    assert code == 1009
    assert seconds < 5.0
    growth = peak - base
    # Reads of 64 KiB, at most 1 MiB + 1 of output, zlib's window: a few MiB in all.
    assert growth < MEMORY_BOUND, f"traced growth {growth / 2**20:.1f} MiB"


#: Run in a fresh interpreter: warm up, then measure the peak RSS (VmHWM) over the bomb.
RSS_SCRIPT = textwrap.dedent(
    """
    import sys
    import trio
    from trio_ws import App
    from trio_ws.ws_endpoint import echo_handler
    from tests.test_ws_deflate_bomb import MAX_MESSAGE, bomb_server
    from tests.ws_support import serving
    import trio_ws

    def status_kib(field):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))

    async def main():
        with open(sys.argv[1], "rb") as f:  # made by the parent: no big allocation here
            frame = f.read()
        app = App()
        app.websocket("/echo", max_message_size=MAX_MESSAGE)(echo_handler)
        async with serving(app, "tcp") as h:
            async with trio_ws.connect(h.url("/echo")) as ws:  # warm up every code path
                await ws.send("x" * 5000)
                await ws.receive()
            before_now, before_peak = status_kib("VmRSS"), status_kib("VmHWM")
            code, seconds = await bomb_server(frame, h.port)
            after_peak = status_kib("VmHWM")
        print(code, seconds, before_now, before_peak, after_peak)

    trio.run(main)
    """
)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_bomb_peak_rss_growth_in_a_fresh_process(bomb_frame: bytes, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    frame_file = tmp_path / "bomb.bin"
    frame_file.write_bytes(bomb_frame)
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", RSS_SCRIPT, str(frame_file)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    code, seconds, before_now, _before_peak, after_peak = result.stdout.split()
    assert int(code) == 1009
    assert float(seconds) < 5.0
    # Conservative: the peak after, against the RSS *in use* just before (KiB).
    growth = (int(after_peak) - int(before_now)) * 1024
    assert growth < MEMORY_BOUND, f"peak RSS growth {growth / 2**20:.1f} MiB ({result.stdout.strip()})"
