"""``python bench/ws_servers/websockets_asyncio.py PORT [--compression] [--certfile F --keyfile K]``.

websockets' asyncio server, echo on any path. websockets' defaults except:
compression off (``compression=None``) unless ``--compression`` (then its
default ``"deflate"``: server_max_window_bits 12, memLevel 5, zlib level 6),
``max_size`` 32 MiB for the 16 MiB rows, and TLS with ``--certfile``.
"""

from __future__ import annotations

import asyncio

from _args import parse, ssl_context
from websockets.asyncio.server import ServerConnection, serve

MAX_SIZE = 32 * 1024 * 1024


async def echo(ws: ServerConnection) -> None:
    async for message in ws:  # str stays str (text), bytes stay bytes (binary)
        await ws.send(message)


async def main() -> None:
    args = parse()
    compression = "deflate" if args.compression else None
    ssl = ssl_context(args)
    async with serve(
        echo, "127.0.0.1", args.port, compression=compression, max_size=MAX_SIZE, ssl=ssl
    ) as server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
