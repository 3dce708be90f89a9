"""Lesson 1: a WebSocket echo server (the Mongoose "websocket-server" tutorial, in trio).

Run it, then run ``examples/echo_client.py`` in another terminal::

    python examples/echo_server.py          # ws://localhost:8000/websocket
    python examples/echo_server.py 9000     # another port (0 picks a free one)
"""

from __future__ import annotations

import contextlib
import sys

import trio

import trio_ws


async def main(port: int) -> None:
    # An App maps paths to handlers; WebSocket endpoints live beside HTTP routes.
    app = trio_ws.App()

    # @app.websocket accepts the upgrade and hands us the open connection.
    @app.websocket("/websocket")
    async def echo(ws: trio_ws.WebSocket) -> None:
        # Iterating yields each message (str for text, bytes for binary) and
        # stops when the client closes; sending it back is the whole echo.
        async for message in ws:
            await ws.send(message)
        # Returning closes the connection with code 1000 (normal closure).

    async with trio.open_nursery() as nursery:
        # nursery.start returns once the listener is bound (so port 0 is known).
        server = await nursery.start(trio_ws.serve, app, "127.0.0.1", port)
        print(f"Starting WS listener on ws://localhost:{server.port}/websocket", flush=True)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C stops the server
        trio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 8000)
