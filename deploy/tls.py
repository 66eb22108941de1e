"""Certificates for mutual TLS inside one testnet: a CA, and a certificate per process.

Every process both serves and dials (a rollup node serves users and dials the sequencer), so
each certificate is good for both ends, names the address its process advertises, and is
signed by the testnet's own CA, the only root any process trusts. A client without such a
certificate is refused. Generated once per directory, like the keys.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from deploy.config import NetworkConfig
from deploy.layout import COORDINATOR, SEQUENCER, Layout
from deploy.state import TestnetState
from rollup_client.protocol.errors import FailedPrecondition
from rollup_client.rpc import TlsFiles

VALID_DAYS = 365
# Certificate for people and tools talking to the testnet (the CLI, the demo, tests).
CLIENT = "client"


def directory(layout: Layout) -> Path:
    return layout.root / "tls"


def files(layout: Layout, name: str) -> TlsFiles:
    return _files_in(directory(layout), name)


def _files_in(d: Path, name: str) -> TlsFiles:
    return TlsFiles(d / "ca.pem", d / f"{name}.crt", d / f"{name}.key")


def client_files(testnet: TestnetState) -> TlsFiles | None:
    """The client certificate for talking to `testnet`; None when it runs plaintext."""
    return _files_in(Path(testnet.tls_dir), CLIENT) if testnet.tls_dir else None


def client_credentials(testnet: TestnetState) -> grpc.ChannelCredentials | None:
    """Channel credentials for `testnet`'s servers: mutual TLS when it runs it, else None."""
    found = client_files(testnet)
    return found.channel_credentials() if found else None


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


def _builder(
    subject: str, issuer: x509.Name, public: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
    )


def _ca(layout: Layout, chain_id: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The testnet's CA, created on first use."""
    ca_files = files(layout, "ca")
    key_path = ca_files.ca.with_suffix(".key")
    if ca_files.ca.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(ca_files.ca.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise FailedPrecondition(f"{key_path} is not the EC key of a testnet CA")
        return cert, key
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{chain_id} testnet CA")])
    cert = (
        _builder(f"{chain_id} testnet CA", name, key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    ca_files.ca.parent.mkdir(parents=True, exist_ok=True)
    _write_key(key_path, key)
    ca_files.ca.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def issue(layout: Layout, chain_id: str, name: str, hosts: list[str]) -> TlsFiles:
    """A certificate for `name`, valid for `hosts`, signed by the testnet CA (kept if present)."""
    out = files(layout, name)
    if out.cert.exists() and out.key.exists():
        return out
    ca_cert, ca_key = _ca(layout, chain_id)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _builder(name, ca_cert.subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([_san(h) for h in hosts]), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(out.key, key)
    out.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return out


def issue_all(cfg: NetworkConfig, layout: Layout) -> dict[str, TlsFiles]:
    """A certificate for every process of `cfg` and one for clients; name -> files."""
    made = {
        SEQUENCER: issue(layout, cfg.chain_id, SEQUENCER, [cfg.sequencer.host]),
        COORDINATOR: issue(layout, cfg.chain_id, COORDINATOR, [cfg.coordinator.host]),
    }
    for r in cfg.rollups:
        made[r.id] = issue(layout, cfg.chain_id, r.id, [r.place.host])
    made[CLIENT] = issue(layout, cfg.chain_id, CLIENT, [cfg.host])
    return made
