"""``python bench/ws_servers/aiohttp_echo.py PORT``: aiohttp's WebSocketResponse, echo on ``/ws``.

aiohttp's defaults except: ``compress=False``, ``max_msg_size`` 32 MiB, no
access log.
"""

from __future__ import annotations

import sys

from aiohttp import WSMsgType, web

MAX_SIZE = 32 * 1024 * 1024


async def echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(compress=False, max_msg_size=MAX_SIZE)
    await ws.prepare(request)
    async for msg in ws:
        if msg.type is WSMsgType.TEXT:
            await ws.send_str(msg.data)
        elif msg.type is WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
    return ws


if __name__ == "__main__":
    app = web.Application()
    app.router.add_get("/ws", echo)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
