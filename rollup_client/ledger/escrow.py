"""Funds a swap holds on the token ledger, and their canonical bytes (state root, snapshot)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from rollup_client.protocol import merkle, swap

_ESCROW_TAG = b"tandem.v1.escrow\x00"


@dataclass(frozen=True, slots=True)
class Escrow:
    """Funds a swap holds on this rollup: its legs here, paid out or refunded as a whole.

    `slot` is its leaf in the escrow tree; a freed slot is reused by the next escrow.
    """

    swap_id: bytes
    legs: tuple[swap.Leg, ...]
    slot: int

    def encode(self) -> bytes:
        """Swap id, leg count, then each leg (payer, payee, asset, amount)."""
        return (
            self.swap_id
            + struct.pack(">B", len(self.legs))
            + b"".join(
                leg.payer
                + leg.payee
                + struct.pack(">B", len(leg.asset))
                + leg.asset.encode()
                + struct.pack(">Q", leg.amount)
                for leg in self.legs
            )
        )

    def leaf(self) -> bytes:
        return merkle.leaf_hash(_ESCROW_TAG + self.encode())
