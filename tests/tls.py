"""Certificates for the mutual-TLS tests: a CA, certificates it signs, and the files a
server or client is given."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from rollup_client.rpc import TlsFiles

Issued = tuple[x509.Certificate, ec.EllipticCurvePrivateKey]


def issue(name: str, ca: Issued | None) -> Issued:
    """A self-signed CA when `ca` is None, else a certificate `ca` signs for localhost."""
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


def write(d: Path, name: str, cert: Issued, ca: Issued) -> TlsFiles:
    """`ca`'s certificate and `cert` with its key as PEM files in `d`."""
    d.mkdir(parents=True, exist_ok=True)
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
