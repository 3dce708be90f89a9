"""HTTPS: serve(ssl_context=...) with a throwaway self-signed certificate."""

from __future__ import annotations

import datetime
import functools
import ipaddress
import ssl
from pathlib import Path

import pytest
import trio

import trio_ws
from trio_ws import Request, Response, ServerConfig

from .conftest import DEADLINE, H11Client, assert_no_errors, connect, make_app, read_until_eof

cryptography = pytest.importorskip(
    "cryptography", reason="needs the cryptography package to make a certificate"
)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def contexts(certificate: tuple[Path, Path]) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    cert_path, key_path = certificate
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cafile=str(cert_path))
    return server, client


async def test_https_request(certificate: tuple[Path, Path], caplog: pytest.LogCaptureFixture) -> None:
    server_ctx, client_ctx = contexts(certificate)
    app = make_app()

    @app.route("/scheme")
    async def scheme(request: Request) -> Response:
        return Response.text(request.scheme)

    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                functools.partial(trio_ws.serve, app, "127.0.0.1", 0, ssl_context=server_ctx)
            )
            assert server.urls == [f"https://127.0.0.1:{server.port}/"]
            tcp = await connect(server.port)
            tls = trio.SSLStream(tcp, client_ctx, server_hostname="127.0.0.1", https_compatible=True)
            client = H11Client(tls)
            assert (await client.request("GET", "/scheme")).body == b"https"
            assert (await client.request("POST", "/echo", body=b"secret")).body == b"secret"
            await tls.aclose()
            nursery.cancel_scope.cancel()
    assert_no_errors(caplog)


async def test_tls_handshake_failure_and_timeout(
    certificate: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    server_ctx, client_ctx = contexts(certificate)
    config = ServerConfig(tls_handshake_timeout=0.3)
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                functools.partial(
                    trio_ws.serve, make_app(), "127.0.0.1", 0, ssl_context=server_ctx, config=config
                )
            )
            # plain HTTP to a TLS port: the handshake fails, the connection closes
            plain = await connect(server.port)
            await plain.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            await read_until_eof(plain)
            # a client that never starts the handshake is dropped after tls_handshake_timeout
            silent = await connect(server.port)
            started = trio.current_time()
            assert await read_until_eof(silent) == b""
            assert trio.current_time() - started < 3
            # the server still serves TLS
            tls = trio.SSLStream(await connect(server.port), client_ctx, server_hostname="127.0.0.1")
            client = H11Client(tls)
            assert (await client.request("GET", "/")).status == 200
            await tls.aclose()
            nursery.cancel_scope.cancel()
    assert_no_errors(caplog)
    messages = [r.getMessage() for r in caplog.records if r.name == "trio_ws.server"]
    assert any("TLS handshake failed" in m for m in messages)
    assert any("TLS handshake timed out" in m for m in messages)
