"""Deterministic keys, genesis files and signed in-memory blocks for the rollup-core tests."""

from __future__ import annotations

from collections.abc import Sequence

from rollup_client.protocol import block, codec, keys
from rollup_client.protocol.block import LogEntry, VerifiedBlock
from rollup_client.protocol.genesis import (
    SETTLEMENT_NAMESPACE,
    SWAP_NAMESPACE,
    Client,
    Genesis,
    Rollup,
)

SEQUENCER = keys.SigningKey.from_seed(b"\xee" * 32)


def key(i: int) -> keys.SigningKey:
    """The i-th fixed test key."""
    return keys.SigningKey.from_seed(i.to_bytes(32, "big"))


def rollup_key(rollup_id: str) -> keys.SigningKey:
    return keys.SigningKey.from_seed(codec.entry_id("rollup-key", rollup_id.encode()))


def make_genesis(rollups: dict[str, dict[bytes, dict[str, int]]], assets: Sequence[str]) -> Genesis:
    """A genesis with one node client per rollup and the given balances."""
    rs = tuple(
        Rollup(rid, rollup_key(rid).public, tuple(assets), balances)
        for rid, balances in rollups.items()
    )
    clients = tuple(
        Client(r.id, r.key, frozenset({r.id, SWAP_NAMESPACE, SETTLEMENT_NAMESPACE})) for r in rs
    )
    return Genesis("test-chain", SEQUENCER.public, clients, rs, 1_000)


class Chain:
    """Signed, hash-linked blocks built in memory, read back through verify_block."""

    def __init__(self) -> None:
        self.blocks: list[VerifiedBlock] = []

    def seal(self, time_ms: int, entries: Sequence[tuple[str, bytes]]) -> VerifiedBlock:
        height = len(self.blocks)
        prev = self.blocks[-1].hash if self.blocks else codec.ZERO_HASH
        ids = [(ns, codec.entry_id(ns, data)) for ns, data in entries]
        table = block.namespace_table(ids)
        header = block.make_header(height, prev, time_ms, len(entries), table)
        by_ns: dict[str, list[tuple[int, bytes]]] = {}
        for i, (ns, data) in enumerate(entries):
            by_ns.setdefault(ns, []).append((i, data))
        fb = block.filtered_block(header, SEQUENCER.sign(header.hash), table, by_ns, None)
        vb = block.verify_block(fb, SEQUENCER.public, None)
        self.blocks.append(vb)
        return vb


def entry(namespace: str, data: bytes, height: int = 0, index: int = 0) -> LogEntry:
    """A log entry at a given position, with its real id."""
    return LogEntry(namespace, data, height, index, codec.entry_id(namespace, data))
