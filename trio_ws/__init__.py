"""trio_ws: a trio-native HTTP/1.1 and WebSocket server and client.

Re-exports only; ``tests/test_exports.py`` pins ``__all__``.
"""

from .app import App
from .chat import Broadcast, ChatRoom
from .client import connect
from .config import ServerConfig
from .exceptions import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    HandshakeError,
    HandshakeRejected,
    HTTPError,
    InvalidHandshake,
    LocalProtocolError,
    NegotiationError,
    ProtocolError,
    RemoteProtocolError,
    RequestBodyTooLarge,
    TrioWSError,
)
from .request import BodyProducer, BodySink, Request, Response
from .server import Server, serve
from .static import StaticFiles
from .websocket import Fragment, WebSocket, WebSocketConfig
from .ws_endpoint import WebSocketRequest

__version__ = "0.1.0"

__all__ = [
    "App",
    "BodyProducer",
    "BodySink",
    "Broadcast",
    "ChatRoom",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "Fragment",
    "HTTPError",
    "HandshakeError",
    "HandshakeRejected",
    "InvalidHandshake",
    "LocalProtocolError",
    "NegotiationError",
    "ProtocolError",
    "RemoteProtocolError",
    "Request",
    "RequestBodyTooLarge",
    "Response",
    "Server",
    "ServerConfig",
    "StaticFiles",
    "TrioWSError",
    "WebSocket",
    "WebSocketConfig",
    "WebSocketRequest",
    "connect",
    "serve",
]
