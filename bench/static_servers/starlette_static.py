"""Starlette's ``StaticFiles`` under hypercorn's trio worker.

``python bench/static_servers/starlette_static.py PORT ROOT`` runs
``Starlette(routes=[Mount("/", StaticFiles(directory=ROOT))])`` in-process with
``hypercorn.trio.serve`` — what ``hypercorn --worker-class trio --workers 1``
runs in its worker — with the access log off. The trio worker (not asyncio)
keeps the event loop the same as trio_ws's; Starlette runs on it through
AnyIO, reading file bodies in 64 KiB chunks in worker threads.
"""

import sys
from functools import partial

if __name__ == "__main__":
    import trio
    from hypercorn.config import Config
    from hypercorn.trio import serve
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    port, root = int(sys.argv[1]), sys.argv[2]
    app = Starlette(routes=[Mount("/", app=StaticFiles(directory=root))])
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    trio.run(partial(serve, app, config))
