"""The built-in demo that ``trio-ws serve`` (with no ROOT) serves.

A single page with a WebSocket echo console, talking to the echo endpoint the
CLI mounts at :data:`DEMO_ECHO_PATH`. Nothing reaches the internet: no CDN,
no build step.
"""

from __future__ import annotations

from .request import Request, Response

__all__ = ["DEMO_ECHO_PATH", "DEMO_PAGE", "demo_page"]

#: Where the demo's WebSocket echo endpoint lives.
DEMO_ECHO_PATH = "/ws"

DEMO_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>trio_ws demo</title>
<style>
 body { font: 15px/1.5 system-ui, sans-serif; max-width: 44rem; margin: 2rem auto; padding: 0 1rem; }
 #log { border: 1px solid #ccc; padding: .5rem; height: 16rem; overflow-y: auto; font-family: monospace; }
 .in { color: #05a; } .out { color: #555; } .err { color: #b00; }
</style></head>
<body>
<h1>trio_ws is running</h1>
<p>A WebSocket echo at <code id="url"></code>: type a message and it comes back.
Run <code>trio-ws serve ROOT</code> to serve a directory instead.</p>
<form id="form"><input id="text" size="40" value="hello" autocomplete="off">
<button>Send</button> <span id="state">connecting…</span></form>
<div id="log"></div>
<script>
const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "__ECHO_PATH__";
document.getElementById("url").textContent = url;
const log = (cls, text) => {
  const line = document.createElement("div");
  line.className = cls; line.textContent = text;
  const box = document.getElementById("log"); box.appendChild(line); box.scrollTop = box.scrollHeight;
};
const ws = new WebSocket(url);
let sentAt = 0;
ws.onopen = () => { document.getElementById("state").textContent = "open"; };
ws.onmessage = (e) => log("in", "← " + e.data + "  (" + (performance.now() - sentAt).toFixed(1) + " ms)");
ws.onclose = (e) => { document.getElementById("state").textContent = "closed (" + e.code + ")"; };
ws.onerror = () => log("err", "WebSocket error");
document.getElementById("form").onsubmit = (e) => {
  e.preventDefault();
  const text = document.getElementById("text").value;
  sentAt = performance.now(); ws.send(text); log("out", "→ " + text);
};
</script>
</body></html>
""".replace("__ECHO_PATH__", DEMO_ECHO_PATH)


async def demo_page(request: Request) -> Response:
    """The demo's single page."""
    return Response.html(DEMO_PAGE)
