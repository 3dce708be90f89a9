"""``python bench/ws_servers/aiohttp_echo.py PORT [--compression] [--certfile F --keyfile K]``.

aiohttp's WebSocketResponse, echo on ``/ws``. aiohttp's defaults except:
``compress=False`` unless ``--compression`` (then ``compress=15``: a 32 KiB
window, zlib's default level), ``max_msg_size`` 32 MiB, no access log, and TLS
with ``--certfile`` (``run_app(ssl_context=...)``).
"""

from __future__ import annotations

from _args import parse, ssl_context
from aiohttp import WSMsgType, web

MAX_SIZE = 32 * 1024 * 1024
COMPRESS = 0


async def echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(compress=COMPRESS, max_msg_size=MAX_SIZE)
    await ws.prepare(request)
    async for msg in ws:
        if msg.type is WSMsgType.TEXT:
            await ws.send_str(msg.data)
        elif msg.type is WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
    return ws


if __name__ == "__main__":
    args = parse()
    COMPRESS = 15 if args.compression else 0
    app = web.Application()
    app.router.add_get("/ws", echo)
    web.run_app(
        app, host="127.0.0.1", port=args.port, access_log=None, print=None, ssl_context=ssl_context(args)
    )
