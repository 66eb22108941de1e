"""User transactions of the reference token ledger: signed transfers and their bytes.

A transfer names the rollup it is meant for, so a signature made for one rollup can
never be replayed on another that happens to hold the same account and asset; the
per-account nonce stops replays within a rollup.

Entry bytes (the data of an entry in the rollup's namespace):

    0x01 | u16 len | rollup | sender(32) | to(32) | u8 len | asset | u64 amount | u64 nonce
         | signature(64)

The signature is Ed25519 by `sender` over TAG followed by the same fields.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from rollup_client.protocol import codec, keys
from rollup_client.protocol.errors import InvalidArgument, Unauthenticated

KIND_TRANSFER = 1
MAX_AMOUNT = 2**63 - 1
"""Largest amount and largest balance: every amount fits a signed 64-bit integer."""
MAX_NONCE = 2**64 - 1
ASSET_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,31}$")

_TAG = b"tandem.v1.transfer\x00"
_AMOUNTS = struct.Struct(">QQ")


def check_asset(asset: str) -> str:
    """Return `asset` if it is a valid asset name, else raise InvalidArgument."""
    if not ASSET_RE.match(asset):
        raise InvalidArgument(
            f"asset {asset!r} is invalid: use 1-32 chars of A-Z a-z 0-9 _ . - "
            "starting with a letter or digit"
        )
    return asset


@dataclass(frozen=True, slots=True)
class Transfer:
    """Move `amount` of `asset` from `sender` to `to` (raw Ed25519 public keys) on `rollup`.

    `nonce` must equal the sender's current nonce on the rollup when it executes.
    """

    sender: bytes
    to: bytes
    asset: str
    amount: int
    nonce: int
    rollup: str

    def _fields(self) -> bytes:
        r, a = self.rollup.encode(), self.asset.encode()
        try:
            return (
                struct.pack(">H", len(r))
                + r
                + self.sender
                + self.to
                + struct.pack(">B", len(a))
                + a
                + _AMOUNTS.pack(self.amount, self.nonce)
            )
        except struct.error as exc:
            raise InvalidArgument(f"transfer field out of range: {exc}") from exc

    def signing_bytes(self) -> bytes:
        """What the sender signs: a domain tag and every field."""
        return _TAG + self._fields()

    def sign(self, key: keys.SigningKey) -> SignedTransfer:
        """This transfer signed by `key` (which must be the sender's)."""
        return SignedTransfer(self, key.sign(self.signing_bytes()))


@dataclass(frozen=True, slots=True)
class SignedTransfer:
    """A transfer with the sender's signature: what goes into the log."""

    tx: Transfer
    signature: bytes

    def encode(self) -> bytes:
        """The entry data for the rollup's namespace."""
        return bytes([KIND_TRANSFER]) + self.tx._fields() + self.signature

    @property
    def entry_id(self) -> bytes:
        """The id the sequencer will give this entry (for receipts and dedup)."""
        return codec.entry_id(self.tx.rollup, self.encode())


def decode(data: bytes) -> SignedTransfer:
    """Parse entry bytes; raise InvalidArgument saying what is malformed."""
    try:
        if not data or data[0] != KIND_TRANSFER:
            raise InvalidArgument(
                f"malformed transaction: unknown kind {data[:1].hex() or 'none'}, "
                f"expected {KIND_TRANSFER:02x}"
            )
        (rlen,) = struct.unpack_from(">H", data, 1)
        pos = 3
        rollup = data[pos : pos + rlen].decode()
        pos += rlen
        sender, to = data[pos : pos + 32], data[pos + 32 : pos + 64]
        pos += 64
        alen = data[pos]
        asset = data[pos + 1 : pos + 1 + alen].decode()
        pos += 1 + alen
        amount, nonce = _AMOUNTS.unpack_from(data, pos)
        pos += _AMOUNTS.size
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"malformed transaction: truncated or bad text ({exc})") from exc
    signature = data[pos:]
    if len(signature) != keys.SIGNATURE_BYTES:
        raise InvalidArgument(
            f"malformed transaction: {len(data)} bytes, expected {pos + keys.SIGNATURE_BYTES}"
        )
    stx = SignedTransfer(Transfer(sender, to, asset, amount, nonce, rollup), signature)
    if stx.encode() != data:
        raise InvalidArgument("malformed transaction: not in canonical form")
    return stx


def check(stx: SignedTransfer, *, signature: bool = True) -> None:
    """Stateless validation: names, amount bounds and (unless told not to) the signature.

    Raises InvalidArgument for a bad field and Unauthenticated for a bad signature.
    `signature=False` is for bytes whose signature this process has already verified.
    """
    tx = stx.tx
    codec.check_namespace(tx.rollup)
    check_asset(tx.asset)
    if len(tx.sender) != keys.PUBLIC_KEY_BYTES or len(tx.to) != keys.PUBLIC_KEY_BYTES:
        raise InvalidArgument("sender and recipient must be 32-byte Ed25519 public keys")
    if not 0 < tx.amount <= MAX_AMOUNT:
        raise InvalidArgument(f"amount {tx.amount} out of range: must be 1..{MAX_AMOUNT}")
    if not 0 <= tx.nonce <= MAX_NONCE:
        raise InvalidArgument(f"nonce {tx.nonce} out of range: must be 0..{MAX_NONCE}")
    if signature and not keys.verify(tx.sender, stx.signature, tx.signing_bytes()):
        raise Unauthenticated(f"transfer signature does not verify for sender {tx.sender.hex()}")


def parse(data: bytes) -> SignedTransfer:
    """Decode and check entry bytes: the one call a node needs at submission time."""
    stx = decode(data)
    check(stx)
    return stx
