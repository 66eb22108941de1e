"""Signed, hash-linked blocks built in memory with the library's own builders (no server)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rollup_client.protocol import block, codec
from rollup_client.protocol.keys import SigningKey
from rollup_client.wire import sequencer_pb2 as pb

SEQUENCER = SigningKey.from_seed(b"\x07" * 32)


@dataclass(frozen=True)
class Sealed:
    """One block as a sequencer would hold it: header, signature, table and entries."""

    header: block.Header
    signature: bytes
    table: list[block.NsRow]
    entries: list[tuple[str, bytes]]

    def filtered(self, namespaces: Sequence[str] | None) -> pb.FilteredBlock:
        """The wire block for `namespaces` (None: all), with its proofs."""
        by_ns: dict[str, list[tuple[int, bytes]]] = {}
        for i, (ns, data) in enumerate(self.entries):
            by_ns.setdefault(ns, []).append((i, data))
        return block.filtered_block(self.header, self.signature, self.table, by_ns, namespaces)

    def entry(self, index: int) -> pb.GetEntryResponse:
        """The GetEntry answer for the entry at block `index`."""
        ns, data = self.entries[index]
        ids = [(i, codec.entry_id(n, d)) for i, (n, d) in enumerate(self.entries) if n == ns]
        leaf, pos, path = block.entry_proof(self.table, ns, ids, index)
        h = self.header
        return pb.GetEntryResponse(
            entry=pb.Entry(namespace=ns, data=data),
            position=pb.Position(height=h.height, index=index),
            header=pb.SignedHeader(header=h.to_pb(), hash=h.hash, signature=self.signature),
            namespace_proof=leaf,
            entry_leaf_index=pos,
            entry_path=path,
        )


def seal(
    height: int,
    prev_hash: bytes,
    time_ms: int,
    entries: Sequence[tuple[str, bytes]],
    key: SigningKey = SEQUENCER,
) -> Sealed:
    table = block.namespace_table([(ns, codec.entry_id(ns, d)) for ns, d in entries])
    header = block.make_header(height, prev_hash, time_ms, len(entries), table)
    return Sealed(header, key.sign(header.hash), table, list(entries))


def chain(
    blocks: Sequence[Sequence[tuple[str, bytes]]], key: SigningKey = SEQUENCER
) -> list[Sealed]:
    """Blocks 0..n-1 holding `blocks[i]`, linked from the zero hash, 10 ms apart."""
    out: list[Sealed] = []
    prev = codec.ZERO_HASH
    for height, entries in enumerate(blocks):
        out.append(seal(height, prev, 1_000 + 10 * height, entries, key))
        prev = out[-1].header.hash
    return out
