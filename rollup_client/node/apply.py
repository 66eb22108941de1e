"""Applying one block to a StateMachine: the rollup node's pure core.

A verified block and a machine in; what the block leaves behind out: its receipts, the
state root after it, and the entries the node must submit (votes, attestations). No trio,
no I/O: the shell persists and sends what this returns, so replaying the same blocks into
the same machine gives the same records, byte for byte.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rollup_client.protocol import attestation, codec
from rollup_client.protocol.block import VerifiedBlock
from rollup_client.protocol.genesis import SETTLEMENT_NAMESPACE
from rollup_client.protocol.keys import SigningKey
from rollup_client.protocol.statemachine import Receipt, StateMachine


@dataclass(frozen=True, slots=True)
class BlockRecord:
    """What one applied block leaves in the store."""

    height: int
    time_ms: int
    state_root: bytes
    receipts: Sequence[Receipt]
    outbox: Sequence[tuple[bytes, str, bytes]]
    """(entry id, namespace, data) the node still has to submit."""


@dataclass(frozen=True, slots=True)
class Applied:
    """One block run through the machine, not yet durable.

    `executed` are the ids of the rollup's own entries in the block (in order); `shared`
    is True when a vote in the outbox answers a swap other rollups vote on too, so the
    node may hold it for their company (their votes are on their way).
    """

    record: BlockRecord
    executed: list[bytes]
    shared: bool


def apply_block(
    machine: StateMachine,
    blk: VerifiedBlock,
    rollup_id: str,
    *,
    signer: SigningKey | None,
    attest_every: int,
) -> Applied:
    """Run `blk` through `machine` (at height `blk.height - 1`).

    With `signer` (the rollup's key) the outbox holds the machine's entries plus, every
    `attest_every` blocks (0: never), an attestation of the root; without one (a
    read-only replica) the outbox is emptied and nothing is submitted.
    """
    receipts = list(machine.begin_block(blk.height, blk.time_ms))
    executed: list[bytes] = []
    for entry in blk.entries:
        r = machine.apply(entry)
        if entry.namespace == rollup_id:
            executed.append(entry.id)
        if r is not None:
            receipts.append(r)
    root = machine.state_root()
    outgoing = machine.take_outbox()
    if signer is None:
        return Applied(BlockRecord(blk.height, blk.time_ms, root, receipts, []), executed, False)
    outbox = [(codec.entry_id(o.namespace, o.data), o.namespace, o.data) for o in outgoing]
    if attest_every and blk.height % attest_every == 0:
        data = attestation.Attestation.make(rollup_id, blk.height, root, signer).encode()
        outbox.append((codec.entry_id(SETTLEMENT_NAMESPACE, data), SETTLEMENT_NAMESPACE, data))
    shared = any(o.peers for o in outgoing)
    return Applied(BlockRecord(blk.height, blk.time_ms, root, receipts, outbox), executed, shared)
