"""``python bench/ws_servers/websockets_asyncio.py PORT``: websockets' asyncio server, echo on any path.

websockets' defaults except: compression off (``compression=None``; it offers
permessage-deflate by default) and ``max_size`` 32 MiB for the 16 MiB rows.
"""

from __future__ import annotations

import asyncio
import sys

from websockets.asyncio.server import ServerConnection, serve

MAX_SIZE = 32 * 1024 * 1024


async def echo(ws: ServerConnection) -> None:
    async for message in ws:  # str stays str (text), bytes stay bytes (binary)
        await ws.send(message)


async def main(port: int) -> None:
    async with serve(echo, "127.0.0.1", port, compression=None, max_size=MAX_SIZE) as server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
