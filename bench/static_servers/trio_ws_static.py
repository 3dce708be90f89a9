"""trio_ws serving a directory with :class:`trio_ws.StaticFiles`.

``python bench/static_servers/trio_ws_static.py PORT ROOT``: what
``trio-ws serve ROOT --no-access-log`` serves (``App.mount("/", StaticFiles(ROOT))``,
default :class:`~trio_ws.ServerConfig`), without the CLI's signal handling and
with no logging configured at all.
"""

import logging
import sys

import trio

import trio_ws
from trio_ws.static import StaticFiles

if __name__ == "__main__":
    port, root = int(sys.argv[1]), sys.argv[2]
    app = trio_ws.App()
    app.mount("/", StaticFiles(root))
    logging.getLogger("trio_ws.access").setLevel(logging.WARNING)
    trio.run(trio_ws.serve, app, "127.0.0.1", port)
