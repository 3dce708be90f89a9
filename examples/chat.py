"""Lesson 4: a chat room, and what happens to a member that stops reading.

Every message one client sends reaches every client in the room (the sender
too).  Run it, then talk to it from two terminals or two browser tabs::

    python examples/chat.py            # ws://localhost:8000/chat
    python examples/chat.py 9000       # another port (0 picks a free one)

    trio-ws connect ws://localhost:8000/chat     # in two terminals: type lines
    open http://localhost:8000/chat.html          # or in two browser tabs

The slow-member policy: each member has a queue of ``MAX_QUEUE`` messages.
Publishing never waits for anyone; a member whose queue is full when a new
message comes is ``MAX_QUEUE`` messages behind, so the room drops it with
close code 1013 (Try Again Later) and everyone else carries on.  Try it: in
one terminal ``trio-ws connect ws://localhost:8000/chat`` then press Ctrl-Z
(it stops reading); in another, flood the room::

    python -c 'print(("x" * 4000 + "\\n") * 20000, end="")' \\
        | trio-ws connect ws://localhost:8000/chat -q >/dev/null

This server logs ``dropping a slow chat member``; ``fg`` the first client and
it prints what it had received, then ``closed 1013 too slow...``.  The
flooder is likely dropped too: it writes faster than it reads its own
messages coming back, and that makes it a slow member as well.
"""

from __future__ import annotations

import contextlib
import logging
import sys

import trio

import trio_ws
from trio_ws.demo import DemoSite

#: Messages waiting for one member before the room drops it.
MAX_QUEUE = 32


async def main(port: int) -> None:
    # One room for the whole server.  It is an in-process broadcast; the same
    # two calls (join, publish) are the seam for a Redis pub/sub backend.
    room = trio_ws.ChatRoom(max_queue=MAX_QUEUE)
    app = trio_ws.App()

    # close_timeout bounds how long a dropped member's closing handshake may take.
    @app.websocket("/chat", close_timeout=5)
    async def chat(ws: trio_ws.WebSocket) -> None:
        # A member for the duration of the block: the room gives this client a
        # queue and a task that writes the queue to the socket.
        async with room.join(ws):
            print(f"joined: {room.statistics().members} member(s)", flush=True)
            # Each message this client sends goes to every member's queue.
            # publish() never waits for a member, so one slow client cannot
            # slow the others.  (room.serve(ws) is exactly this handler.)
            async for message in ws:
                await room.publish(message)
        print(f"left: {room.statistics().members} member(s)", flush=True)

    # The demo's chat page (static files shipped inside trio_ws), pointed at /chat.
    app.mount("/", DemoSite(echo_path=None, chat_path="/chat"))

    async with trio.open_nursery() as nursery:
        server = await nursery.start(trio_ws.serve, app, "127.0.0.1", port)
        print(f"chat room on ws://localhost:{server.port}/chat", flush=True)
        print(f"page: http://localhost:{server.port}/chat.html", flush=True)


if __name__ == "__main__":
    # The room logs each member it drops (logger "trio_ws.chat").
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C stops the server
        trio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 8000)
