"""Command line shared by the echo servers: ``PORT [--compression] [--certfile PEM --keyfile PEM]``.

``python SCRIPT PORT`` alone keeps the plain rows: no compression, no TLS.
"""

from __future__ import annotations

import argparse
import ssl


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--compression", action="store_true", help="accept permessage-deflate")
    parser.add_argument("--certfile", help="serve wss:// with this certificate chain (with --keyfile)")
    parser.add_argument("--keyfile")
    return parser.parse_args(argv)


def ssl_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """A server context for ``--certfile``/``--keyfile`` (None without them)."""
    if not args.certfile:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(args.certfile, args.keyfile)
    return ctx
