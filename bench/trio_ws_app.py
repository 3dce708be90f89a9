"""trio_ws serving the benchmark response.

``python bench/trio_ws_app.py PORT``: ``GET /`` answers a 1 KiB ``text/plain``
body through an :class:`trio_ws.App` route, with the default
:class:`~trio_ws.ServerConfig`. No logging is configured, and the access log is
explicitly off, so nothing is formatted per request.
"""

import logging
import sys

import trio

import trio_ws

BODY = b"x" * 1024


async def handler(request: trio_ws.Request) -> trio_ws.Response:
    return trio_ws.Response(200, BODY, content_type="text/plain")


app = trio_ws.App()
app.add_route("/", handler)

if __name__ == "__main__":
    logging.getLogger("trio_ws.access").setLevel(logging.WARNING)
    trio.run(trio_ws.serve, app, "127.0.0.1", int(sys.argv[1]))
