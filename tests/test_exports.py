"""The public API is pinned: adding or removing a name is a deliberate change here."""

from __future__ import annotations

import importlib

import trio_ws

EXPECTED_ALL = [
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


def test_all_is_pinned() -> None:
    assert sorted(trio_ws.__all__) == EXPECTED_ALL
    assert len(set(trio_ws.__all__)) == len(trio_ws.__all__)


def test_every_exported_name_is_importable() -> None:
    module = importlib.import_module("trio_ws")
    for name in trio_ws.__all__:
        assert getattr(module, name) is not None, name


#: Sans-I/O event types that the trio layer hands to users as they are.
SANSIO_EVENT_TYPES = {"Fragment"}


def test_sansio_is_not_reexported() -> None:
    """The pure core stays an implementation detail: no module, no protocol machinery."""
    assert "sansio" not in trio_ws.__all__
    from_sansio = {
        name
        for name in trio_ws.__all__
        if getattr(getattr(trio_ws, name), "__module__", "").startswith("trio_ws.sansio")
    }
    assert from_sansio <= SANSIO_EVENT_TYPES
    for name in from_sansio:
        assert getattr(trio_ws, name).__module__ == "trio_ws.sansio.events"


def test_testing_helpers_are_public_in_their_module() -> None:
    import trio_ws.testing

    assert sorted(trio_ws.testing.__all__) == [
        "MemoryListener",
        "MemoryServer",
        "SimpleResponse",
        "open_memory_client",
        "open_memory_server",
        "request",
    ]
    assert "testing" not in trio_ws.__all__


def test_version() -> None:
    assert trio_ws.__version__ == "0.1.0"
