"""Testnet certificates: a chain to the testnet CA, the right names, and mutual TLS that
serves a client with a certificate and refuses one without, or with another CA's."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from deploy import config, tls
from deploy.layout import Layout
from rollup_client.rpc import TlsFiles


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_every_process_gets_a_certificate_from_the_ca(tmp_path: Path) -> None:
    cfg = config.load()
    made = tls.issue_all(cfg, Layout(tmp_path))
    assert set(made) == {"sequencer", "coordinator", "client", *(r.id for r in cfg.rollups)}
    ca = _load(made["sequencer"].ca)
    for name, files in made.items():
        cert = _load(files.cert)
        cert.verify_directly_issued_by(ca)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"], name
        assert oct(files.key.stat().st_mode & 0o777) == "0o600"
    # Idempotent: a second call keeps every file.
    before = {n: f.cert.read_bytes() for n, f in made.items()}
    again = tls.issue_all(cfg, Layout(tmp_path))
    assert {n: f.cert.read_bytes() for n, f in again.items()} == before


@pytest.fixture
def mtls_server(tmp_path: Path) -> Iterator[tuple[str, dict[str, TlsFiles]]]:
    made = tls.issue_all(config.load(), Layout(tmp_path / "net"))
    creds = made["sequencer"].server_credentials()
    server = grpc.server(futures.ThreadPoolExecutor(2), options=[("grpc.so_reuseport", 0)])
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_secure_port("127.0.0.1:0", creds)
    server.start()
    try:
        yield f"127.0.0.1:{port}", made
    finally:
        server.stop(0).wait()


def _check(target: str, creds: grpc.ChannelCredentials) -> int:
    with grpc.secure_channel(target, creds) as ch:
        # types-grpcio-health-checking's HealthStub declares no Check (grpcio sets it per stub).
        resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)  # type: ignore[attr-defined]
    return int(resp.status)


@pytest.mark.processes
def test_mutual_tls_serves_only_certified_clients(
    mtls_server: tuple[str, dict[str, TlsFiles]], tmp_path: Path
) -> None:
    target, made = mtls_server
    client = made["client"]
    assert _check(target, client.channel_credentials()) == health_pb2.HealthCheckResponse.SERVING

    anonymous = grpc.ssl_channel_credentials(client.ca.read_bytes())
    with pytest.raises(grpc.RpcError):
        _check(target, anonymous)

    stranger = tls.issue_all(config.load(), Layout(tmp_path / "other"))["client"]
    foreign = grpc.ssl_channel_credentials(
        client.ca.read_bytes(), stranger.key.read_bytes(), stranger.cert.read_bytes()
    )
    with pytest.raises(grpc.RpcError):
        _check(target, foreign)
