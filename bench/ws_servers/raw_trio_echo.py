"""``python bench/ws_servers/raw_trio_echo.py PORT``: a raw trio TCP echo — the runtime's ceiling.

No HTTP, no WebSocket: every byte read is written back (64 KiB reads, like
trio_ws's).  The load generator talks to it with ``--raw``: it skips the
handshake and sends the same masked frames, which come back unchanged.
"""

from __future__ import annotations

import sys

import trio

RECEIVE_SIZE = 64 * 1024


async def echo(stream: trio.SocketStream) -> None:
    try:
        while data := await stream.receive_some(RECEIVE_SIZE):
            await stream.send_all(data)
    except trio.BrokenResourceError:
        pass


async def main(port: int) -> None:
    await trio.serve_tcp(echo, port, host="127.0.0.1")


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]))
