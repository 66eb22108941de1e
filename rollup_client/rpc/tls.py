"""Mutual TLS for every Tandem process: one CA, and this process's certificate and key (PEM).

The same files serve both directions: a server (sequencer, rollup node, coordinator)
requires a client certificate signed by the CA, and the process presents its own
certificate when it dials another (a rollup node or the coordinator dialling the sequencer).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc

from rollup_client.protocol.errors import InvalidArgument


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: the network's CA certificate, this process's certificate and its key."""

    ca: Path
    cert: Path
    key: Path

    def _read(self) -> tuple[bytes, bytes, bytes]:
        try:
            return self.ca.read_bytes(), self.cert.read_bytes(), self.key.read_bytes()
        except OSError as exc:
            raise InvalidArgument(f"cannot read TLS file: {exc}") from exc

    def server_credentials(self) -> grpc.ServerCredentials:
        """Server side: present the certificate, require clients signed by the CA."""
        ca, cert, key = self._read()
        return grpc.ssl_server_credentials(
            [(key, cert)], root_certificates=ca, require_client_auth=True
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """Client side: trust only the CA, present the certificate."""
        ca, cert, key = self._read()
        return grpc.ssl_channel_credentials(
            root_certificates=ca, private_key=key, certificate_chain=cert
        )


def tls_files(ca: Path | None, cert: Path | None, key: Path | None) -> TlsFiles | None:
    """TlsFiles when all three are given, None when none is; anything else is an error."""
    given = [p for p in (ca, cert, key) if p is not None]
    if not given:
        return None
    if ca is None or cert is None or key is None:
        raise InvalidArgument(
            "TLS needs all three of the CA, the certificate and the key "
            "(--tls-ca, --tls-cert, --tls-key; tls_ca, tls_cert, tls_key in a TOML config)"
        )
    return TlsFiles(ca, cert, key)
