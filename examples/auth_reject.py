"""Lesson 5: check credentials during the handshake; accept, or refuse with a real HTTP answer.

A WebSocket starts as an HTTP request, so it can be refused like one: with a
status, headers and a body the client can read.  Here a client proves itself
with a token, either in the query (``?token=...``: all a browser can do, since
the JavaScript ``WebSocket`` API cannot set headers) or in an
``Authorization: Bearer ...`` header (any other client).  With a good token
the server accepts, picking the ``chat.v1`` subprotocol if the client offers
it; without one it answers ``401 Unauthorized`` with ``WWW-Authenticate`` and
a short body.

Run it::

    python examples/auth_reject.py          # ws://localhost:8000/private
    python examples/auth_reject.py 9000

It starts the server, shows three clients (one refused, two let in), then
keeps serving until Ctrl-C.  Try it yourself::

    trio-ws connect ws://localhost:8000/private                     # refused: HTTP 401 ...
    trio-ws connect 'ws://localhost:8000/private?token=s3cret' --subprotocol chat.v1
    trio-ws connect ws://localhost:8000/private --header 'Authorization: Bearer s3cret'
"""

from __future__ import annotations

import contextlib
import hmac
import sys
from urllib.parse import parse_qs

import trio

import trio_ws

#: The one valid token.  A real server would look tokens up (and expire them).
TOKEN = "s3cret"
SUBPROTOCOL = "chat.v1"


def token_of(req: trio_ws.WebSocketRequest) -> str | None:
    """The token in the Authorization header, else in the query, else None."""
    authorization = req.request.header("authorization") or ""
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials:
        return credentials.strip()
    # Careful: a token in the URL ends up in access logs (ours log the target).
    # Prefer short-lived tokens there.
    return parse_qs(req.query).get("token", [None])[0]


def make_app() -> trio_ws.App:
    app = trio_ws.App()

    # accept=False: the handler gets the request first and decides.
    @app.websocket("/private", accept=False)
    async def private(req: trio_ws.WebSocketRequest) -> None:
        token = token_of(req)
        # compare_digest takes the same time wherever the strings differ.
        if token is None or not hmac.compare_digest(token.encode(), TOKEN.encode()):
            # A real HTTP response, sent instead of the 101.
            await req.reject(
                401,
                headers=[("www-authenticate", 'Bearer realm="trio_ws example"')],
                body="missing or wrong token: add ?token=... or an Authorization: Bearer header\n",
            )
            return
        # The subprotocol must be one the client offered (or None).
        ws = await req.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in req.subprotocols else None)
        await ws.send(f"welcome (subprotocol: {ws.subprotocol})")
        async for message in ws:
            await ws.send(message)

    return app


async def show_clients(url: str) -> None:
    """Three clients: without a token, with one in the query, with one in a header."""
    with trio.fail_after(10):
        try:
            async with trio_ws.connect(url):
                pass
        except trio_ws.HandshakeRejected as exc:
            # The refusal carries the status, the headers and the body.
            print(f"refused: HTTP {exc.status}, body {exc.body.decode().strip()!r}", flush=True)
        async with trio_ws.connect(f"{url}?token={TOKEN}", subprotocols=[SUBPROTOCOL]) as ws:
            print(f"query token: accepted, {await ws.receive()!r}", flush=True)
        async with trio_ws.connect(url, headers=[("Authorization", f"Bearer {TOKEN}")]) as ws:
            print(f"header token: accepted, {await ws.receive()!r}", flush=True)


async def main(port: int) -> None:
    async with trio.open_nursery() as nursery:
        server = await nursery.start(trio_ws.serve, make_app(), "127.0.0.1", port)
        url = f"ws://localhost:{server.port}/private"
        print(f"listening on {url}", flush=True)
        await show_clients(url)
        # The server task keeps the nursery open: serving until Ctrl-C.


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        trio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 8000)
