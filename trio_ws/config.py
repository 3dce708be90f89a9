"""Server limits and timeouts: one frozen dataclass with safe defaults.

Every bound trio_ws enforces on a peer lives here, so that a later server-wide
memory budget or a multi-process front end can read and adjust one object. The
defaults follow nginx where it has an equivalent (``client_header_timeout``,
``keepalive_timeout``, ``keepalive_requests``, ``client_max_body_size``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["ServerConfig"]


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Limits and timeouts of a server (seconds and bytes).

    ``max_connections``: past it the accept loop stops accepting; further
    clients wait in the kernel's listen backlog (``backlog``) until a
    connection ends, and the kernel refuses or drops connections past that.
    Nothing is accepted that cannot be served.
    """

    #: Request line plus headers, in bytes (h11's incomplete-event limit) → 431.
    max_header_size: int = 16 * 1024
    #: Length of the request-target → 414.
    max_target_length: int = 8 * 1024
    #: Default cap for ``await request.body()`` → 413.
    max_body_size: int = 1024 * 1024
    #: An unread request body up to this size is drained to keep the connection alive.
    max_drain_size: int = 64 * 1024
    #: Time to receive a complete request head once it started (or from accept) → 408.
    header_timeout: float = 10.0
    #: Idle time allowed between two requests on a keep-alive connection.
    keepalive_timeout: float = 5.0
    #: Time a single write may block on a peer that does not read.
    send_timeout: float = 60.0
    #: Requests served on one connection before it is closed (``Connection: close``).
    max_requests_per_connection: int = 1000
    #: Concurrent connections across all listeners.
    max_connections: int = 1024
    #: Listen backlog passed to ``listen()``.
    backlog: int = 1024
    #: Grace period of a graceful shutdown before in-flight work is cancelled.
    shutdown_timeout: float = 10.0
    #: TLS handshake deadline (used when the server has an ``ssl_context``).
    tls_handshake_timeout: float = 10.0
    #: Bytes asked of the socket per read.
    receive_size: int = 64 * 1024
    #: ``Server`` header value; empty to omit.
    server_header: str = "trio_ws"

    def replace(self, **changes: object) -> ServerConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        if any(ord(ch) < 0x20 or ord(ch) > 0x7E for ch in self.server_header):
            raise ValueError(f"ServerConfig.server_header must be printable ASCII: {self.server_header!r}")
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, int | float) and not isinstance(value, bool) and value <= 0:
                raise ValueError(f"ServerConfig.{field.name} must be positive, got {value!r}")
