"""``python bench/ws_servers/websockets_trio.py PORT [--compression] [--certfile F --keyfile K]``.

websockets' trio server (``websockets.trio``, shipped with websockets 17), echo
on any path. websockets' defaults except: compression off unless
``--compression`` (then ``"deflate"``, its default settings), ``max_size``
32 MiB, and TLS with ``--certfile``.
"""

from __future__ import annotations

import trio
from _args import parse, ssl_context
from websockets.trio.server import ServerConnection, serve

MAX_SIZE = 32 * 1024 * 1024


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def main() -> None:
    args = parse()
    compression = "deflate" if args.compression else None
    await serve(
        echo,
        args.port,
        host="127.0.0.1",
        compression=compression,
        max_size=MAX_SIZE,
        ssl=ssl_context(args),
    )


if __name__ == "__main__":
    trio.run(main)
