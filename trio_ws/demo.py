"""The built-in demo site that ``trio-ws serve`` shows (with no ROOT, or with ``--demo``).

Static pages shipped inside the package (``trio_ws/demo_site/``: plain HTML,
CSS and JavaScript; no build step, no CDN, nothing fetched from elsewhere):

* ``index.html``: what is running and links to the pages;
* ``echo.html``: an echo console (text and binary, chosen sizes, round-trip times);
* ``chat.html``: a broadcast chat room between tabs (name + message);
* ``media.html``: a ``<video>`` from ROOT that seeks through byte ranges, and a
  range prober that shows each answer's status and ``Content-Range``.

:class:`DemoSite` serves them with :class:`~trio_ws.StaticFiles` plus one
generated file, ``config.json``, which tells the pages where the WebSocket
endpoints are (``null`` when not mounted) and whether a ROOT is served.  The
pages use relative links only, so the site works under any mount prefix: at
``/`` with no ROOT, at :data:`DEMO_PREFIX` next to a ROOT.  Every response
carries a Content-Security-Policy that allows this origin only.
"""

from __future__ import annotations

import json
from pathlib import Path

from .request import Request, Response
from .static import StaticFiles

__all__ = [
    "DEMO_CHAT_PATH",
    "DEMO_CSP",
    "DEMO_ECHO_PATH",
    "DEMO_PREFIX",
    "DEMO_SITE",
    "DemoSite",
]

#: Where the demo's WebSocket echo endpoint lives.
DEMO_ECHO_PATH = "/ws"
#: Where the demo's chat room lives.
DEMO_CHAT_PATH = "/chat"
#: Where the demo pages are mounted next to a served ROOT (``trio-ws serve ROOT --demo``).
DEMO_PREFIX = "/_demo"
#: The directory of the pages, inside the installed package.
DEMO_SITE = Path(__file__).resolve().parent / "demo_site"

#: Same origin only: the pages make no request elsewhere (``ws:``/``wss:`` for
#: browsers whose ``'self'`` does not yet cover WebSocket URLs).
DEMO_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self'; connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


class DemoSite:
    """A handler for the demo pages; mount it with ``app.mount(prefix, DemoSite(...))``.

    ``echo_path`` and ``chat_path`` are the absolute paths of the WebSocket
    endpoints the pages talk to (``None``: not available, the page says so);
    ``root`` says whether a directory is served at ``/`` (the media page plays
    videos from it); ``max_message_size`` lets the echo page stay under the limit.
    """

    def __init__(
        self,
        *,
        echo_path: str | None = DEMO_ECHO_PATH,
        chat_path: str | None = DEMO_CHAT_PATH,
        root: bool = False,
        max_message_size: int | None = None,
    ) -> None:
        self._static = StaticFiles(DEMO_SITE, cache_control="no-cache")
        self.config = {
            "echo": echo_path,
            "chat": chat_path,
            "root": root,
            "max_message_size": max_message_size,
        }
        self._config_json = json.dumps(self.config).encode()

    def __repr__(self) -> str:
        return f"<DemoSite {self.config}>"

    async def __call__(self, request: Request) -> Response:
        if request.subpath.lstrip("/") == "config.json" and request.method in ("GET", "HEAD"):
            response = Response(200, self._config_json, content_type="application/json")
            response.headers.append(("cache-control", "no-store"))
        else:
            response = await self._static(request)
        response.headers.append(("content-security-policy", DEMO_CSP))
        response.headers.append(("x-content-type-options", "nosniff"))
        return response
