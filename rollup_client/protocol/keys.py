"""Ed25519 keys as PKCS8 / SubjectPublicKeyInfo PEM files, and signing helpers.

Keys travel as files, never as raw secrets on a command line. Public keys on the wire and
in the log are the 32 raw bytes; signatures are the 64 raw bytes.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from rollup_client.protocol.errors import InvalidArgument

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64


class SigningKey:
    """An Ed25519 private key with its raw public key at hand."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public: bytes = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        """Deterministic key from 32 bytes (tests and reproducible fixtures only)."""
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def to_pem(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def save(self, path: Path) -> None:
        """Write the key as PKCS8 PEM readable by the owner only."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(self.to_pem())

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        try:
            key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise InvalidArgument(f"{path}: not a PKCS8 PEM private key ({exc})") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise InvalidArgument(f"{path}: not an Ed25519 key")
        return cls(key)


def verify(public: bytes, signature: bytes, message: bytes) -> bool:
    """True when `signature` by raw key `public` is valid for `message`."""
    key = load_public(public)
    return key is not None and verify_with(key, signature, message)


def verify_with(key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    """`verify` with the key already loaded: a verifier that checks many signatures of one
    key (the sequencer, per registered client) keeps the key object instead of rebuilding
    it per signature."""
    if len(signature) != SIGNATURE_BYTES:
        return False
    try:
        key.verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def load_public(public: bytes) -> Ed25519PublicKey | None:
    """The key object of raw public key `public`, or None when it is not a valid key."""
    if len(public) != PUBLIC_KEY_BYTES:
        return None
    try:
        return Ed25519PublicKey.from_public_bytes(public)
    except ValueError:
        return None
