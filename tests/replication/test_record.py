"""The etcd block record: what a replica reads back is the block the leader committed, and
anything else is refused."""

from __future__ import annotations

import pytest
from hypothesis import given

from rollup_client.protocol.errors import VerificationError
from rollup_client.protocol.keys import SigningKey
from sequencer.replication import record
from tests.replication.chain import KEY, entries, seal


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
