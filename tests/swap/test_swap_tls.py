"""The coordinator behind mutual TLS, on the shared swap network."""

from __future__ import annotations

import datetime
import ipaddress
from functools import partial
from pathlib import Path

import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from rollup_client.protocol import swap
from rollup_client.protocol.errors import Unavailable
from rollup_client.rpc import TlsFiles
from swap_coordinator.client import SwapClient
from swap_coordinator.config import Config
from swap_coordinator.service import serve
from tests.network import Net
from tests.swap.e2e import ALICE, BOB

pytestmark = pytest.mark.processes

Issuer = tuple[x509.Certificate, ec.EllipticCurvePrivateKey]


def _cert(name: str, issuer: Issuer | None) -> Issuer:
    k = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(k.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer is not None:
        san = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return b.sign(issuer[1] if issuer else k, hashes.SHA256()), k


def _tls(d: Path, name: str, cert: Issuer, ca: Issuer) -> TlsFiles:
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


async def test_mutual_tls_on_the_coordinator(net: Net, tmp_path: Path) -> None:
    """The hypercorn-shaped serve() in this process: only CA-signed clients are served."""
    ca = _cert("swap-ca", None)
    server = _tls(tmp_path, "coordinator", _cert("coordinator", ca), ca)
    user = _tls(tmp_path, "user", _cert("user", ca), ca)
    cfg = Config(
        net.sequencer,
        "127.0.0.1:0",
        tmp_path / "tls-coordinator",
        net.genesis_path,
        net.key_paths["coordinator"],
        tls=server,
    )

    def calls(target: str) -> None:
        with SwapClient(target, credentials=user.channel_credentials(), timeout=5) as c:
            assert c.propose([swap.Leg("delta", ALICE.public, BOB.public, "lead", 1)], timeout_ms=9)
        with SwapClient(target, timeout=5) as c, pytest.raises(Unavailable):
            c.list()

    async with trio.open_nursery() as nursery:
        ends = await nursery.start(partial(serve, cfg))
        await trio.to_thread.run_sync(calls, ends.listen)
        nursery.cancel_scope.cancel()
