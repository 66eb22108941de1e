"""State-root attestations: a rollup's signed claim "after block h my state root is R".

A rollup node posts one to the `settlement` namespace every K blocks; `tandem verify`
re-executes the log and checks each one. The attested root at height h is the state root
after applying block h completely, so an attestation is always ordered in a later block.

Entry bytes: 0x01 | u16 len | rollup | u64 height | root(32) | signature(64), the
signature by the rollup's genesis key over TAG followed by the same fields.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from rollup_client.protocol import codec, keys
from rollup_client.protocol.errors import InvalidArgument

KIND_ATTESTATION = 1
_TAG = b"tandem.v1.attestation\x00"


def _fields(rollup: str, height: int, state_root: bytes) -> bytes:
    r = rollup.encode()
    return struct.pack(">H", len(r)) + r + struct.pack(">Q", height) + state_root


@dataclass(frozen=True, slots=True)
class Attestation:
    """`rollup`'s signed state root after block `height`."""

    rollup: str
    height: int
    state_root: bytes
    signature: bytes

    @classmethod
    def make(cls, rollup: str, height: int, state_root: bytes, key: keys.SigningKey) -> Attestation:
        """Sign a root with the rollup's key."""
        if len(state_root) != codec.HASH_BYTES or height < 0:
            raise InvalidArgument("attestation needs a 32-byte root and a height >= 0")
        return cls(rollup, height, state_root, key.sign(_TAG + _fields(rollup, height, state_root)))

    def encode(self) -> bytes:
        """The entry data for the `settlement` namespace."""
        return (
            bytes([KIND_ATTESTATION])
            + _fields(self.rollup, self.height, self.state_root)
            + self.signature
        )

    def verify(self, rollup_key: bytes) -> bool:
        """True when the signature is the rollup key's over these fields."""
        return keys.verify(
            rollup_key, self.signature, _TAG + _fields(self.rollup, self.height, self.state_root)
        )


def decode(data: bytes) -> Attestation:
    """Parse entry bytes; raise InvalidArgument saying what is malformed."""
    try:
        if data[0] != KIND_ATTESTATION:
            raise InvalidArgument(f"not an attestation: kind {data[0]:02x}")
        (rlen,) = struct.unpack_from(">H", data, 1)
        rollup = data[3 : 3 + rlen].decode()
        (height,) = struct.unpack_from(">Q", data, 3 + rlen)
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"malformed attestation: truncated or bad text ({exc})") from exc
    pos = 11 + rlen
    expected = pos + codec.HASH_BYTES + keys.SIGNATURE_BYTES
    if len(data) != expected:
        raise InvalidArgument(f"malformed attestation: {len(data)} bytes, expected {expected}")
    return Attestation(rollup, height, data[pos : pos + 32], data[pos + 32 :])
