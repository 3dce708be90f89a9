"""The ``trio-ws`` command line (also ``python -m trio_ws``).

``trio-ws serve [ROOT]`` serves a directory (or, with no ROOT, the built-in
demo site with its echo at /ws and chat room at /chat) until Ctrl-C or
SIGTERM, which shut down gracefully (WebSockets close with 1001) and exit 0.
``trio-ws connect URL`` is an interactive WebSocket client (:mod:`.connect_cli`).
``--certfile CERT --keyfile KEY`` serves https:// and wss:// instead.
"""

from __future__ import annotations

import argparse
import functools
import logging
import signal
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path

import trio

from . import connect_cli
from .app import App
from .chat import ChatRoom
from .config import ServerConfig
from .demo import DEMO_CHAT_PATH, DEMO_ECHO_PATH, DEMO_PREFIX, DemoSite
from .server import open_listeners, serve
from .static import StaticFiles
from .tls import server_context
from .websocket import WebSocketConfig, WebSocketOptions
from .ws_endpoint import echo_handler

__all__ = ["build_app", "main", "make_parser"]

log = logging.getLogger("trio_ws.cli")


def make_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for the docs and the tests)."""
    parser = argparse.ArgumentParser(
        prog="trio-ws",
        description="A trio-native HTTP/1.1 and WebSocket server.",
    )
    parser.add_argument("--version", action="version", version="%(prog)s 0.1.0")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = commands.add_parser(
        "serve",
        help="serve a directory (or the built-in demo) over HTTP and WebSocket",
        description="Serve ROOT (or the built-in demo page) until Ctrl-C.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    run.add_argument("root", nargs="?", type=Path, metavar="ROOT", help="directory to serve")
    run.add_argument("--host", action="append", help="address to bind (repeatable; default 127.0.0.1)")
    run.add_argument("--port", type=int, default=8000, help="TCP port (0 picks a free one)")
    defaults = ServerConfig()
    limits = run.add_argument_group("limits and timeouts")
    limits.add_argument("--max-connections", type=int, default=defaults.max_connections)
    limits.add_argument("--max-body-size", type=int, default=defaults.max_body_size, metavar="BYTES")
    limits.add_argument("--header-timeout", type=float, default=defaults.header_timeout, metavar="SECONDS")
    limits.add_argument(
        "--keepalive-timeout", type=float, default=defaults.keepalive_timeout, metavar="SECONDS"
    )
    limits.add_argument(
        "--shutdown-timeout",
        type=float,
        default=defaults.shutdown_timeout,
        metavar="SECONDS",
        help="grace period for in-flight requests on Ctrl-C/SIGTERM",
    )
    run.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="logging level",
    )
    run.add_argument("--no-access-log", action="store_true", help="do not log a line per request")
    ws = run.add_argument_group("WebSocket")
    ws.add_argument(
        "--echo", metavar="PATH", help=f"mount a WebSocket echo endpoint at PATH (demo: {DEMO_ECHO_PATH})"
    )
    ws.add_argument(
        "--chat", metavar="PATH", help=f"mount a broadcast chat room at PATH (demo: {DEMO_CHAT_PATH})"
    )
    ws.add_argument(
        "--demo",
        action="store_true",
        help=f"with ROOT, also serve the demo pages under {DEMO_PREFIX}/",
    )
    ws_defaults = WebSocketConfig()
    ws.add_argument(
        "--max-message-size",
        type=int,
        default=ws_defaults.max_message_size,
        metavar="BYTES",
        help="largest WebSocket message accepted (1009 beyond)",
    )
    ws.add_argument(
        "--max-queue",
        type=int,
        default=ws_defaults.max_queue,
        metavar="N",
        help="messages buffered per WebSocket, and per chat member before it is dropped (1013)",
    )
    ws.add_argument(
        "--ping-interval",
        type=float,
        default=ws_defaults.ping_interval,
        metavar="SECONDS",
        help="keepalive: ping this often (0 disables)",
    )
    ws.add_argument(
        "--ping-timeout",
        type=float,
        default=ws_defaults.ping_timeout,
        metavar="SECONDS",
        help="keepalive: close with 1011 when a pong takes longer (0: wait forever)",
    )
    ws.add_argument(
        "--no-compression",
        action="store_true",
        help="do not accept permessage-deflate (RFC 7692) compression",
    )
    tls = run.add_argument_group("TLS (https:// and wss:// on the same port)")
    tls.add_argument("--certfile", type=Path, metavar="PEM", help="certificate chain (with --keyfile)")
    tls.add_argument("--keyfile", type=Path, metavar="PEM", help="private key (with --certfile)")
    files = run.add_argument_group("static files (with ROOT)")
    files.add_argument("--cache-control", metavar="VALUE", help="Cache-Control for files, e.g. 'max-age=60'")
    files.add_argument(
        "--directory-listing", action="store_true", help="list directories that have no index.html"
    )
    connect_cli.add_parser(commands)
    return parser


def _seconds(value: float | None) -> float | None:
    """A timer option: 0 (or None) disables it."""
    return value or None


def _ws_options(args: argparse.Namespace) -> WebSocketOptions:
    """The WebSocket limits and timers of the endpoints, from the command line."""
    defaults = WebSocketConfig()
    options: WebSocketOptions = {
        "max_message_size": getattr(args, "max_message_size", defaults.max_message_size),
        "max_queue": getattr(args, "max_queue", defaults.max_queue),
        "ping_interval": _seconds(getattr(args, "ping_interval", defaults.ping_interval)),
        "ping_timeout": _seconds(getattr(args, "ping_timeout", defaults.ping_timeout)),
    }
    if hasattr(args, "no_compression"):
        options["compression"] = not args.no_compression
    return options


def build_app(args: argparse.Namespace) -> App:
    """The application ``trio-ws serve`` runs for these arguments.

    With no ROOT: the demo site at ``/``, its echo at ``/ws`` and its chat room
    at ``/chat`` (``--echo``/``--chat`` move them).  With ROOT: the directory at
    ``/``, WebSocket endpoints only with ``--echo``/``--chat``, and the demo
    pages under ``/_demo/`` with ``--demo``.
    """
    app = App()
    root: Path | None = getattr(args, "root", None)
    demo = root is None
    echo_path = getattr(args, "echo", None) or (DEMO_ECHO_PATH if demo else None)
    chat_path = getattr(args, "chat", None) or (DEMO_CHAT_PATH if demo else None)
    options = _ws_options(args)
    if echo_path:
        app.websocket(echo_path, **options)(echo_handler)
    if chat_path:
        room = ChatRoom(max_queue=options.get("max_queue", WebSocketConfig().max_queue))
        app.websocket(chat_path, **options)(room.serve)
    site = DemoSite(
        echo_path=echo_path,
        chat_path=chat_path,
        root=not demo,
        max_message_size=options.get("max_message_size"),
    )
    if root is None:
        app.mount("/", site)
        return app
    if getattr(args, "demo", False):
        app.mount(DEMO_PREFIX, site)
    static = StaticFiles(
        root,
        cache_control=getattr(args, "cache_control", None),
        directory_listing=getattr(args, "directory_listing", False),
    )
    app.mount("/", static)
    return app


def _config(args: argparse.Namespace) -> ServerConfig:
    return ServerConfig(
        max_connections=args.max_connections,
        max_body_size=args.max_body_size,
        header_timeout=args.header_timeout,
        keepalive_timeout=args.keepalive_timeout,
        shutdown_timeout=args.shutdown_timeout,
    )


def _ssl_context(parser: argparse.ArgumentParser, args: argparse.Namespace) -> ssl.SSLContext | None:
    certfile, keyfile = args.certfile, args.keyfile
    if certfile is None and keyfile is None:
        return None
    if certfile is None or keyfile is None:
        parser.error("--certfile and --keyfile must be given together")
    try:
        return server_context(certfile, keyfile)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        parser.error(f"cannot load --certfile {certfile} / --keyfile {keyfile}: {exc}")


async def _serve_until_signal(args: argparse.Namespace, ssl_context: ssl.SSLContext | None = None) -> None:
    app = build_app(args)
    hosts = args.host or ["127.0.0.1"]
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        config = _config(args)
        # Bind before opening the nursery, so that "address in use" reaches
        # main() as a plain OSError rather than inside an exception group.
        listeners = await open_listeners(hosts, args.port, backlog=config.backlog)
        async with trio.open_nursery() as nursery:
            run = functools.partial(serve, config=config, listeners=listeners, ssl_context=ssl_context)
            server = await nursery.start(run, app, hosts, args.port)
            what = str(args.root) if args.root else "the built-in demo"
            for url in server.urls:
                print(f"trio_ws serving {what} on {url}  (Ctrl-C to stop)", flush=True)
            async for signum in signals:
                log.info("received %s: shutting down", signal.Signals(signum).name)
                break
            await server.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``trio-ws`` command; returns the exit status."""
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "connect":
        return connect_cli.main(args)
    for option, path in (("--echo", args.echo), ("--chat", args.chat)):
        if path is not None and not path.startswith("/"):
            parser.error(f"{option} takes a path starting with '/': {path!r}")
    if args.echo is not None and args.echo == args.chat:
        parser.error("--echo and --chat need different paths")
    if args.max_queue < 1:
        parser.error("--max-queue must be at least 1")
    if args.root is not None and not args.root.is_dir():
        parser.error(f"ROOT must be a directory: {args.root}")
    ssl_context = _ssl_context(parser, args)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.no_access_log:
        logging.getLogger("trio_ws.access").setLevel(logging.WARNING)
    try:
        trio.run(_serve_until_signal, args, ssl_context)
    except OSError as exc:
        print(f"trio-ws: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a second Ctrl-C during the grace period
        return 1
    return 0
