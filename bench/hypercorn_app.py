"""A bare ASGI app serving the benchmark response, for hypercorn's trio worker.

``python bench/hypercorn_app.py PORT`` runs it in-process with
``hypercorn.trio.serve`` (what ``hypercorn --worker-class trio --workers 1``
runs in its worker), access log off. Equivalent CLI::

    hypercorn --worker-class trio --workers 1 --bind 127.0.0.1:PORT bench.hypercorn_app:app

Hypercorn's HTTP/1.1 is h11 as well, so this is the same parser under a
different server layer.
"""

import sys
from functools import partial
from typing import Any

BODY = b"x" * 1024
HEADERS = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(BODY))]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


if __name__ == "__main__":
    import trio
    from hypercorn.config import Config
    from hypercorn.trio import serve

    config = Config()
    config.bind = [f"127.0.0.1:{int(sys.argv[1])}"]
    config.accesslog = None
    trio.run(partial(serve, app, config))
