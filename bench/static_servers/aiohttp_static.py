"""aiohttp's static route serving a directory.

``python bench/static_servers/aiohttp_static.py PORT ROOT``: one process, the
default asyncio event loop, ``web.static("/", ROOT)``, access log off. aiohttp
sends file bodies with ``loop.sendfile`` (zero-copy) and answers a request for
several ranges with 416 (it does not generate multipart/byteranges).
"""

import sys

from aiohttp import web

if __name__ == "__main__":
    port, root = int(sys.argv[1]), sys.argv[2]
    app = web.Application()
    app.add_routes([web.static("/", root)])
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)
