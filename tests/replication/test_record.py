"""The etcd block record: what a replica reads back is the block the leader committed, and
anything else is refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rollup_client.protocol import block, codec
from rollup_client.protocol.errors import VerificationError
from rollup_client.protocol.keys import SigningKey
from sequencer.core import Block, Head
from sequencer.replication import record

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


@given(entries, entries)
def test_a_record_reads_back_as_the_block(
    first: list[tuple[str, bytes]], second: list[tuple[str, bytes]]
) -> None:
    b0 = seal(None, first)
    b1 = seal(b0.head, second)
    assert record.decode(record.encode(b0), KEY.public, None) == b0
    assert record.decode(record.encode(b1), KEY.public, b0.head) == b1


def test_a_block_that_does_not_follow_the_parent_is_refused() -> None:
    b0 = seal(None, [("rollup-a", b"x")])
    other = seal(None, [("rollup-a", b"y")])
    b1 = seal(other.head, [])
    with pytest.raises(VerificationError, match="does not follow"):
        record.decode(record.encode(b1), KEY.public, b0.head)
    with pytest.raises(VerificationError, match="where block 1 belongs"):
        record.decode(record.encode(b0), KEY.public, b0.head)


def test_another_key_or_altered_bytes_are_refused() -> None:
    b0 = seal(None, [("rollup-a", b"x")], SigningKey.generate())
    with pytest.raises(VerificationError, match="signature"):
        record.decode(record.encode(b0), KEY.public, None)
    raw = record.encode(seal(None, [("rollup-a", b"payload")]))
    tampered = raw.replace(b"payload", b"PAYLOAD")
    with pytest.raises(VerificationError):
        record.decode(tampered, KEY.public, None)
    with pytest.raises(VerificationError, match="does not parse"):
        record.decode(b"\xff\xff\xff", KEY.public, None)
