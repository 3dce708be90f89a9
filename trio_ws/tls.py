"""TLS contexts for ``https://`` and ``wss://`` with safe defaults.

``serve(app, ..., ssl_context=server_context("cert.pem", "key.pem"))`` serves
HTTPS and secure WebSockets on the same port (a WebSocket upgrade is an
ordinary HTTP/1.1 request inside the TLS session);
``connect("wss://...")`` verifies the server against the system trust store,
and ``connect(url, ssl_context=client_context(cafile="ca.pem"))`` trusts a
private CA instead.

Policy
------
* TLS 1.2 or newer, the ``ssl`` module's default ciphers
  (``ssl.create_default_context``), certificate and host name checks on.
* ALPN ``http/1.1`` (RFC 7301) on both sides: trio_ws speaks only HTTP/1.1,
  so a client that offers ``h2`` is told so during the handshake.
* :func:`~trio_ws.serve` does **not** modify a context the caller built (an
  ``SSLContext`` is shared and its ALPN list cannot be read back, so the
  server cannot tell "unset" from "deliberately set"). A context without
  ALPN works: clients then assume HTTP/1.1. If a caller's context negotiates
  anything other than ``http/1.1`` (e.g. ``h2``), the server closes that
  connection after the handshake with one log line rather than feed h2
  frames to an HTTP/1.1 parser.
"""

from __future__ import annotations

import os
import ssl

__all__ = ["ALPN_PROTOCOLS", "client_context", "server_context"]

#: The one application protocol trio_ws speaks over TLS (WebSocket rides on it).
ALPN_PROTOCOLS = ("http/1.1",)

StrPath = str | os.PathLike[str]


def server_context(
    certfile: StrPath, keyfile: StrPath | None = None, *, password: str | None = None
) -> ssl.SSLContext:
    """A server context for ``certfile`` (PEM chain, leaf first) and ``keyfile``.

    ``keyfile`` may be omitted when ``certfile`` holds the key too. Raises
    ``OSError`` (a missing file) or ``ssl.SSLError`` (a bad or mismatched key).
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile, password)
    context.set_alpn_protocols(list(ALPN_PROTOCOLS))
    return context


def client_context(cafile: StrPath | None = None) -> ssl.SSLContext:
    """A client context that verifies servers: the system trust store, or only ``cafile``.

    This is what ``connect("wss://...")`` uses when given no ``ssl_context``.
    """
    context = ssl.create_default_context(cafile=cafile)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(list(ALPN_PROTOCOLS))
    return context
