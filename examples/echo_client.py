"""Lesson 2: a WebSocket client (the Mongoose "websocket-client" tutorial, in trio).

Connects to the echo server, sends "hello", prints the reply and exits::

    python examples/echo_client.py                                  # ws://localhost:8000/websocket
    python examples/echo_client.py ws://127.0.0.1:9000/websocket
"""

from __future__ import annotations

import sys

import trio

import trio_ws


async def main(url: str) -> None:
    # connect() performs the HTTP upgrade (GET + 101) and yields an open
    # WebSocket; leaving the block runs the closing handshake.  Deadlines are
    # ours to set: fail if the whole exchange takes more than 10 seconds.
    with trio.fail_after(10):
        async with trio_ws.connect(url) as ws:
            await ws.send("hello")  # a str goes out as a text message
            reply = await ws.receive()  # ... and comes back as a str
            text = reply if isinstance(reply, str) else reply.decode()
            print(f"GOT ECHO REPLY: [{text}]", flush=True)


if __name__ == "__main__":
    trio.run(main, sys.argv[1] if len(sys.argv) > 1 else "ws://localhost:8000/websocket")
