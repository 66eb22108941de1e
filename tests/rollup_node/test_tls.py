"""Mutual TLS on the node's server: a client with a CA-signed certificate is served; one
without a certificate, with a certificate from another CA, or without TLS is refused."""

from __future__ import annotations

import datetime
import ipaddress
from functools import partial
from pathlib import Path

import grpc
import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from rollup_client.ledger import TokenLedger
from rollup_client.node import NodeConfig, serve
from rollup_client.protocol.errors import Unavailable
from rollup_client.rpc import TlsFiles, tls_files
from rollup_client.sdk import TrioRollupClient
from tests.keys import key
from tests.network import Net

from .conftest import FUNDS, GOLD

Issuer = tuple[x509.Certificate, ec.EllipticCurvePrivateKey]


def _cert(name: str, issuer: Issuer | None, *, ca: bool = False) -> Issuer:
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
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        b = b.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return b.sign(issuer[1] if issuer else k, hashes.SHA256()), k


def _write(d: Path, name: str, cert: Issuer, ca: Issuer) -> TlsFiles:
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


def test_tls_files_need_all_three(tmp_path: Path) -> None:
    assert tls_files(None, None, None) is None
    with pytest.raises(Exception, match="all three"):
        tls_files(tmp_path / "ca.pem", None, tmp_path / "k.pem")


async def test_mutual_tls(net: Net, sequencer: str, tmp_path: Path) -> None:
    ca, rogue = _cert("tandem-ca", None, ca=True), _cert("rogue-ca", None, ca=True)
    (tmp_path / "rogue").mkdir()
    node_files = _write(tmp_path, "node", _cert("alpha", ca), ca)
    user_files = _write(tmp_path, "user", _cert("user", ca), ca)
    rogue_files = _write(tmp_path / "rogue", "user", _cert("user", rogue), ca)
    cfg = NodeConfig(
        rollup_id="alpha",
        sequencer=sequencer,
        data_dir=net.dir / "alpha",
        genesis=net.genesis_path,
        key=net.key_paths["alpha"],
        tls=node_files,
    )
    alice = key("alice").public
    async with trio.open_nursery() as nursery:
        ends = await nursery.start(partial(serve, cfg, machine_factory=TokenLedger))
        creds = user_files.channel_credentials()
        async with TrioRollupClient(ends.listen, credentials=creds) as c:
            assert await c.balance(alice, GOLD) == FUNDS
        refused: list[grpc.ChannelCredentials | None] = [
            grpc.ssl_channel_credentials(
                root_certificates=ca[0].public_bytes(serialization.Encoding.PEM)
            ),
            rogue_files.channel_credentials(),
            None,
        ]
        for bad in refused:
            async with TrioRollupClient(ends.listen, credentials=bad, timeout=5) as c:
                with pytest.raises(Unavailable):
                    await c.balance(alice, GOLD)
        nursery.cancel_scope.cancel()
