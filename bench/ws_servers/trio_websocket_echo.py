"""``python bench/ws_servers/trio_websocket_echo.py PORT``: trio-websocket (wsproto inside), echo on any path.

trio-websocket's defaults (message queue of 1, 4 KiB reads) except
``max_message_size`` 32 MiB; it never negotiates compression.
"""

from __future__ import annotations

import sys

import trio
from trio_websocket import ConnectionClosed, WebSocketRequest, serve_websocket

MAX_SIZE = 32 * 1024 * 1024


async def echo(request: WebSocketRequest) -> None:
    ws = await request.accept()
    try:
        while True:
            await ws.send_message(await ws.get_message())  # str → text, bytes → binary
    except ConnectionClosed:
        pass


async def main(port: int) -> None:
    await serve_websocket(echo, "127.0.0.1", port, ssl_context=None, max_message_size=MAX_SIZE)


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]))
