"""ServerConfig: defaults, validation, replace()."""

from __future__ import annotations

import dataclasses

import pytest

from trio_ws import ServerConfig


def test_defaults_are_safe() -> None:
    config = ServerConfig()
    assert config.max_header_size == 16 * 1024
    assert config.max_target_length == 8 * 1024
    assert config.max_body_size == 1024 * 1024
    assert config.max_drain_size <= config.max_body_size
    assert config.header_timeout == 10.0
    assert config.keepalive_timeout == 5.0
    assert config.max_requests_per_connection == 1000
    assert config.max_connections == 1024
    assert config.shutdown_timeout == 10.0
    assert config.server_header == "trio_ws"


def test_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ServerConfig().max_body_size = 1  # type: ignore[misc]


def test_replace_returns_a_validated_copy() -> None:
    config = ServerConfig()
    changed = config.replace(max_body_size=10, server_header="")
    assert changed.max_body_size == 10
    assert changed.server_header == ""
    assert config.max_body_size == 1024 * 1024
    with pytest.raises(ValueError, match="header_timeout"):
        config.replace(header_timeout=0)


@pytest.mark.parametrize(
    "field", [f.name for f in dataclasses.fields(ServerConfig) if f.type in ("int", "float")]
)
@pytest.mark.parametrize("value", [0, -1])
def test_non_positive_limits_rejected(field: str, value: int) -> None:
    with pytest.raises(ValueError, match=f"ServerConfig.{field} must be positive"):
        ServerConfig(**{field: value})  # type: ignore[arg-type]


def test_every_numeric_field_is_validated() -> None:
    numeric = [f.name for f in dataclasses.fields(ServerConfig) if f.type in ("int", "float")]
    assert len(numeric) == len(dataclasses.fields(ServerConfig)) - 1  # all but server_header


@pytest.mark.parametrize("value", ["trio_ws\r\nX-Injected: 1", "caf\u00e9", "tab\there"])
def test_server_header_must_be_printable_ascii(value: str) -> None:
    with pytest.raises(ValueError, match="server_header"):
        ServerConfig(server_header=value)
