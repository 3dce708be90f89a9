"""Lesson: https:// and wss:// on one port, and a client that verifies the server.

Run it::

    python examples/tls_echo.py                         # throwaway certificate (needs trustme)
    python examples/tls_echo.py --serve                 # ...and keep serving until Ctrl-C
    python examples/tls_echo.py --certfile cert.pem --keyfile key.pem --cafile ca.pem

It prints the URLs, then connects with ``trio_ws.connect("wss://...")`` and
prints ``GOT ECHO REPLY: [hello over TLS]``. With ``--serve`` it then keeps
serving: ``curl --cacert ca.pem https://localhost:PORT/`` (the CA is written
next to the certificate when trustme made one).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import ssl
import tempfile
from pathlib import Path

import trio

import trio_ws
from trio_ws.tls import client_context, server_context


def throwaway_certificate(directory: Path) -> tuple[Path, Path, Path]:
    """A private CA and a certificate for localhost, written as PEM files (testing only!)."""
    try:
        import trustme
    except ImportError:
        raise SystemExit(
            "trustme is not installed: pip install trustme, or pass --certfile/--keyfile"
        ) from None
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    cafile, certfile, keyfile = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    ca.cert_pem.write_to_path(str(cafile))
    # The chain goes leaf first; the key stays in its own file.
    certfile.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(keyfile))
    return cafile, certfile, keyfile


def make_app() -> trio_ws.App:
    app = trio_ws.App()

    # An ordinary route: over TLS, request.scheme is "https".
    @app.route("/")
    async def index(request: trio_ws.Request) -> trio_ws.Response:
        return trio_ws.Response.text(f"hello over {request.scheme}\n")

    # A WebSocket endpoint on the same port: the upgrade is an HTTP/1.1 request
    # inside the TLS session, so wss:// needs nothing more than https:// does.
    @app.websocket("/echo")
    async def echo(ws: trio_ws.WebSocket) -> None:
        async for message in ws:
            await ws.send(message)

    return app


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if args.certfile:
            cafile, certfile, keyfile = args.cafile, args.certfile, args.keyfile
        else:
            cafile, certfile, keyfile = throwaway_certificate(Path(tmp))
        # server_context(): TLS >= 1.2, ALPN "http/1.1", the certificate chain and key.
        server_ssl = server_context(certfile, keyfile)
        # client_context(cafile): trust only our CA. Without ssl_context, connect()
        # uses the system trust store, which rightly rejects a throwaway CA.
        client_ssl: ssl.SSLContext = client_context(cafile)

        async with trio.open_nursery() as nursery:
            # serve() takes keywords, nursery.start() does not pass them: bind them first.
            start = functools.partial(trio_ws.serve, ssl_context=server_ssl)
            server = await nursery.start(start, make_app(), "127.0.0.1", args.port)
            port = server.port
            print(f"Serving https://localhost:{port}/ and wss://localhost:{port}/echo", flush=True)

            # The host name in the URL is what the certificate is checked against.
            # Every network wait gets a deadline from the caller (trio style).
            with trio.fail_after(10):
                async with trio_ws.connect(f"wss://localhost:{port}/echo", ssl_context=client_ssl) as ws:
                    await ws.send("hello over TLS")
                    reply = await ws.receive()
                    assert isinstance(reply, str)  # text in, text out (binary would be bytes)
                    print(f"GOT ECHO REPLY: [{reply}]", flush=True)

            if args.serve:
                print(f"CA certificate: {cafile}  (Ctrl-C to stop)", flush=True)
                await trio.sleep_forever()
            nursery.cancel_scope.cancel()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port (0 picks a free one)")
    parser.add_argument("--certfile", type=Path, help="PEM certificate chain (with --keyfile)")
    parser.add_argument("--keyfile", type=Path, help="PEM private key")
    parser.add_argument("--cafile", type=Path, help="CA the client trusts (default: the system store)")
    parser.add_argument("--serve", action="store_true", help="keep serving after the demo exchange")
    args = parser.parse_args()
    if (args.certfile is None) != (args.keyfile is None):
        parser.error("--certfile and --keyfile go together")
    return args


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C stops the server
        trio.run(main, parse_args())
