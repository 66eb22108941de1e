"""Blocks for the replication tests, sealed as the sequencer core seals them."""

from __future__ import annotations

from hypothesis import strategies as st

from rollup_client.protocol import block, codec
from rollup_client.protocol.keys import SigningKey
from sequencer.core import Block, Head

KEY = SigningKey.generate()
entries = st.lists(
    st.tuples(st.sampled_from(["rollup-a", "rollup-b", "swap"]), st.binary(max_size=40)),
    max_size=12,
)


def seal(parent: Head | None, items: list[tuple[str, bytes]], key: SigningKey = KEY) -> Block:
    namespaces = [ns for ns, _ in items]
    datas = [d for _, d in items]
    ids = [codec.entry_id(ns, d) for ns, d in items]
    table = tuple(block.table_of(namespaces, ids))
    height, prev, time_ms = (
        (0, b"\0" * 32, 1000)
        if parent is None
        else (
            parent.height + 1,
            parent.hash,
            parent.time_ms + 5,
        )
    )
    header = block.make_header(height, prev, time_ms, len(items), table)
    return Block(header, header.hash, key.sign(header.hash), table, namespaces, datas, ids)
