"""The token ledger's snapshot layout: canonical bytes of its whole state, and back.

Layout: tag, rollup, height, time, assets, accounts in slot order (key, nonce, balances),
escrow slots in order (empty ones too: slot reuse must replay alike), refused swaps, the
swap tracker's own snapshot, the state root, SHA-256 of all. Decoding checks the layout,
the checksum and that accounts are unique with no negative balance; the ledger checks the
rest (rollup, assets, root) against itself.
"""

from __future__ import annotations

import hashlib
import struct
from array import array
from dataclasses import dataclass

from rollup_client.ledger.escrow import Escrow
from rollup_client.protocol import swap
from rollup_client.protocol.errors import InvalidArgument

_SNAP_TAG = b"tandem.v1.ledger-snapshot\x00"


@dataclass(frozen=True, slots=True)
class LedgerState:
    """Everything a snapshot holds, as plain values."""

    rollup_id: str
    height: int
    time_ms: int
    assets: tuple[str, ...]
    keys: list[bytes]
    """Accounts in slot order; `nonces` and each of `balances` (one per asset) align."""
    nonces: array[int]
    balances: list[array[int]]
    escrows: list[Escrow | None]
    """Escrow tree slots in order, None where a slot is free."""
    refused: set[bytes]
    tracker: bytes
    root: bytes


def encode_state(s: LedgerState) -> bytes:
    rid = s.rollup_id.encode()
    rec = struct.Struct(f">32sQ{len(s.balances)}q")
    body = b"".join(
        [
            _SNAP_TAG,
            struct.pack(">H", len(rid)) + rid,
            struct.pack(">qQH", s.height, s.time_ms, len(s.assets)),
            b"".join(struct.pack(">B", len(a)) + a.encode() for a in s.assets),
            struct.pack(">Q", len(s.keys)),
            b"".join(
                rec.pack(k, s.nonces[i], *(b[i] for b in s.balances)) for i, k in enumerate(s.keys)
            ),
            struct.pack(">I", len(s.escrows)),
            b"".join(b"\x00" if e is None else b"\x01" + e.encode() for e in s.escrows),
            struct.pack(">I", len(s.refused)) + b"".join(sorted(s.refused)),
            struct.pack(">Q", len(s.tracker)) + s.tracker,
            s.root,
        ]
    )
    return body + hashlib.sha256(body).digest()


def decode_state(data: bytes) -> LedgerState:
    """The state in `data`; InvalidArgument if the checksum or the layout is wrong."""
    body = data[:-32]
    if len(data) < 64 or hashlib.sha256(body).digest() != data[-32:]:
        raise InvalidArgument("corrupt ledger snapshot: checksum does not match")
    try:
        return _read(_Reader(body[:-32]), body[-32:])
    except (struct.error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidArgument(f"corrupt ledger snapshot: {exc}") from exc


def _read(r: _Reader, root: bytes) -> LedgerState:
    if r.take(len(_SNAP_TAG)) != _SNAP_TAG:
        raise ValueError("not a ledger snapshot")
    rid = r.take(r.uint(">H")).decode()
    height, time_ms = r.uint(">q"), r.uint(">Q")
    assets = tuple(r.take(r.uint(">B")).decode() for _ in range(r.uint(">H")))
    n = r.uint(">Q")
    rec = struct.Struct(f">32sQ{len(assets)}q")
    keys, nonces, balances = [], array("Q"), [array("q") for _ in assets]
    for k, nonce, *bals in rec.iter_unpack(r.take(n * rec.size)):
        keys.append(k)
        nonces.append(nonce)
        for b, v in zip(balances, bals, strict=True):
            b.append(v)
    if len(set(keys)) != n or any(v < 0 for b in balances for v in b):
        raise ValueError("duplicate account or negative balance")
    escrows: list[Escrow | None] = []
    for slot in range(r.uint(">I")):
        if r.uint(">B") == 0:
            escrows.append(None)
            continue
        sid = r.take(32)
        legs = tuple(
            swap.Leg(rid, r.take(32), r.take(32), r.take(r.uint(">B")).decode(), r.uint(">Q"))
            for _ in range(r.uint(">B"))
        )
        escrows.append(Escrow(sid, legs, slot))
    refused = {r.take(32) for _ in range(r.uint(">I"))}
    tracker = r.take(r.uint(">Q"))
    if r.pos != len(r.data):
        raise ValueError(f"{len(r.data) - r.pos} bytes left over")
    return LedgerState(
        rid, height, time_ms, assets, keys, nonces, balances, escrows, refused, tracker, root
    )


class _Reader:
    """Sequential reads over snapshot bytes; short reads raise ValueError."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError("truncated")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def uint(self, fmt: str) -> int:
        (v,) = struct.unpack(fmt, self.take(struct.calcsize(fmt)))
        return int(v)
