"""Both clients over mutual TLS (`credentials=`), against the in-process fake."""

from __future__ import annotations

import datetime
import ipaddress
import itertools
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from rollup_client.protocol.errors import Unavailable
from rollup_client.rpc import TlsFiles
from rollup_client.sdk import SequencerClient, TrioSequencerClient
from rollup_client.wire import sequencer_pb2_grpc as pb_grpc
from tests.sdk.fake import BLOCKS, Fake

pytestmark = pytest.mark.processes

Issued = tuple[x509.Certificate, ec.EllipticCurvePrivateKey]


def _issue(name: str, ca: Issued | None) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca[0].subject if ca else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca is None, path_length=None), critical=True)
    )
    if ca is not None:
        san = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(ca[1] if ca else key, hashes.SHA256()), key


def _files(d: Path, name: str, cert: Issued, ca: Issued) -> TlsFiles:
    files = TlsFiles(d / "ca.pem", d / f"{name}.crt", d / f"{name}.key")
    files.ca.write_bytes(ca[0].public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert[0].public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        cert[1].private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


@pytest.fixture
def tls_fake(tmp_path: Path) -> Iterator[tuple[str, TlsFiles]]:
    """A fake sequencer requiring client certificates; its address and a client's files."""
    ca = _issue("tandem-ca", None)
    server_files = _files(tmp_path, "server", _issue("sequencer", ca), ca)
    client_files = _files(tmp_path, "client", _issue("client", ca), ca)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4), options=[("grpc.so_reuseport", 0)]
    )
    pb_grpc.add_SequencerServiceServicer_to_server(Fake(), server)
    port = server.add_secure_port("127.0.0.1:0", server_files.server_credentials())
    server.start()
    try:
        yield f"127.0.0.1:{port}", client_files
    finally:
        server.stop(None).wait(5)


def test_sync_client_over_mutual_tls(tls_fake: tuple[str, TlsFiles]) -> None:
    target, files = tls_fake
    with SequencerClient(target, credentials=files.channel_credentials(), timeout=5) as client:
        assert client.status().height == BLOCKS[-1].header.height
        assert [b.height for b in itertools.islice(client.subscribe(["a"]), 2)] == [0, 1]
    with SequencerClient(target, timeout=2) as plain, pytest.raises(Unavailable):
        plain.status()


async def test_trio_client_over_mutual_tls(tls_fake: tuple[str, TlsFiles]) -> None:
    target, files = tls_fake
    creds = files.channel_credentials()
    async with TrioSequencerClient(target, credentials=creds, timeout=5) as client:
        assert (await client.status()).chain_id == "fake"
        async with client.subscribe(["a"]) as blocks:
            assert (await blocks.__anext__()).height == 0
