"""``python bench/ws_servers/websockets_trio.py PORT``: websockets' trio server (``websockets.trio``).

The trio layer ships with websockets 17 (``websockets.trio.server.serve``).
websockets' defaults except: compression off and ``max_size`` 32 MiB.
"""

from __future__ import annotations

import sys

import trio
from websockets.trio.server import ServerConnection, serve

MAX_SIZE = 32 * 1024 * 1024


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def main(port: int) -> None:
    await serve(echo, port, host="127.0.0.1", compression=None, max_size=MAX_SIZE)


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]))
