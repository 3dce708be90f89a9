"""Lesson 3: messages in fragments, both ways (libwebsockets NO_FIN, libcurl frame meta).

A server endpoint opened with ``fragments=True`` reads a large message piece by
piece as it arrives, printing libcurl-style meta (offset, bytes left in the
frame, final); the client sends it in 64 KiB fragments.  Self-contained::

    python examples/fragments.py
"""

from __future__ import annotations

import trio

import trio_ws

MESSAGE_SIZE = 1024 * 1024
CHUNK = 64 * 1024


async def main() -> None:
    app = trio_ws.App()

    # fragments=True: the protocol delivers each piece of payload as it arrives
    # instead of assembling whole messages in memory first.
    @app.websocket("/upload", fragments=True, max_message_size=16 * MESSAGE_SIZE)
    async def upload(ws: trio_ws.WebSocket) -> None:
        received = 0
        while True:
            piece = await ws.receive_fragment()
            received += len(piece.data)
            print(
                f"server: {len(piece.data):6d} bytes at offset {piece.offset:7d},"
                f" {piece.frame_bytes_left:6d} left in frame, final={piece.final}"
            )
            if piece.final:
                break
        await ws.send(f"received {received} bytes")

    async with trio.open_nursery() as nursery:
        server = await nursery.start(trio_ws.serve, app, "127.0.0.1", 0)
        async with trio_ws.connect(f"ws://127.0.0.1:{server.port}/upload") as ws:
            # send_stream() sends each chunk as a non-final frame (NO_FIN);
            # leaving the block sends the final frame that ends the message.
            async with ws.send_stream(binary=True) as out:
                for _ in range(MESSAGE_SIZE // CHUNK):
                    await out.send(bytes(CHUNK))
            print("client:", await ws.receive())
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main)
