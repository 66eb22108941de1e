"""The node's store and its thread seam, without sockets or trio."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from rollup_client.node.apply import BlockRecord
from rollup_client.node.bridge import Head, NodeView, Submission, SubmitQueue
from rollup_client.node.store import NodeStore, StoreReader
from rollup_client.protocol.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    ResourceExhausted,
    Unavailable,
)
from rollup_client.protocol.statemachine import BLOCK_START, Receipt


def _record(h: int, outbox: list[tuple[bytes, str, bytes]] | None = None) -> BlockRecord:
    receipts = [
        Receipt(bytes([h]) * 32, h, 0, True, "", "transfer"),
        Receipt(b"\xee" * 32, h, BLOCK_START, False, "deadline", "abort", b"\xee" * 32),
    ]
    return BlockRecord(h, 1000 + h, bytes([h]) * 32, receipts, outbox or [])


def test_store_round_trip_snapshots_and_outbox(tmp_path: Path) -> None:
    store = NodeStore(tmp_path / "n.sqlite")
    reader = StoreReader(tmp_path / "n.sqlite")
    try:
        assert store.progress() is None
        assert store.snapshots() == []
        store.write([_record(0), _record(1, [(b"\x01" * 32, "swap", b"vote")])], (1, b"s1"))
        for h in (2, 3, 4):
            store.write([_record(h)], (h, b"s%d" % h))
        p = store.progress()
        assert p is not None
        assert (p.height, p.time_ms, p.state_root) == (4, 1004, b"\x04" * 32)
        assert store.snapshots() == [(4, b"s4"), (3, b"s3")]  # the two newest are kept
        assert reader.root_at(1) == (1001, b"\x01" * 32)
        assert reader.root_at(9) is None
        r = reader.receipt(b"\x02" * 32)
        assert r is not None
        assert (r.height, r.index, r.ok, r.kind) == (2, 0, True, "transfer")
        first_abort = reader.receipt(b"\xee" * 32)
        assert first_abort is not None
        assert first_abort.height == 0
        assert first_abort.swap_id == b"\xee" * 32
        assert store.outbox() == [(b"\x01" * 32, "swap", b"vote")]
        store.write([_record(5)], None, drop=[b"\x01" * 32])  # acknowledged: forgotten
        assert store.outbox() == []
        vote, acked = (b"\x05" * 32, "swap", b"v5"), [b"\x05" * 32]
        store.write([_record(6, [vote])], None, drop=acked)  # written and acked at once
        assert store.outbox() == []
    finally:
        reader.close()
        store.close()
    reopened = NodeStore(tmp_path / "n.sqlite")
    try:
        assert reopened.snapshots()[0] == (4, b"s4")
        p = reopened.progress()
        assert p is not None
        assert p.height == 6
    finally:
        reopened.close()


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    store = NodeStore(tmp_path / "n.sqlite")
    try:
        store.write([_record(0)], None)
        unbindable = Receipt(b"\x01" * 32, 1, 0, False, ["not", "text"], "transfer")  # type: ignore[arg-type]
        bad = BlockRecord(1, 1001, b"\x01" * 32, [unbindable], [])
        with pytest.raises(sqlite3.ProgrammingError):
            store.write([bad], (1, b"snap"))
        p = store.progress()
        assert p is not None
        assert p.height == 0
        assert store.snapshots() == []
    finally:
        store.close()


def test_queue_wakes_once_per_drain_and_refuses_beyond_its_limit() -> None:
    wakes: list[int] = []
    q = SubmitQueue(lambda: wakes.append(1), max_items=3)
    subs = [Submission(b"d%d" % i, bytes([i]) * 32) for i in range(3)]
    for s in subs:
        q.put(s)
    assert len(wakes) == 1
    with pytest.raises(ResourceExhausted):
        q.put(Submission(b"x", b"\x09" * 32))
    assert q.drain() == subs
    late = Submission(b"y", b"\x08" * 32)
    q.put(late)
    assert len(wakes) == 2
    assert q.close() == [late]
    with pytest.raises(Unavailable, match="shutting down"):
        q.put(Submission(b"z", b"\x07" * 32))


def test_submission_outcomes() -> None:
    s = Submission(b"d", b"\x01" * 32)
    with pytest.raises(DeadlineExceeded):
        s.wait(0.01)
    threading.Thread(target=s.resolve, args=((7, 3), False)).start()
    assert s.wait(5) == ((7, 3), False)
    s.fail(Unavailable("too late"))  # an outcome, once given, stays
    assert s.wait(5) == ((7, 3), False)
    f = Submission(b"d", b"\x02" * 32)
    f.fail(FailedPrecondition("bad nonce"))
    with pytest.raises(FailedPrecondition, match="bad nonce"):
        f.wait(5)


def test_view_tracks_pending_sequenced_and_executed() -> None:
    v = NodeView()
    a, b = b"\x0a" * 32, b"\x0b" * 32
    v.pending(a)
    v.pending(b)
    assert v.inflight(a) == (True, None)
    v.sequenced(a, 5, 2)
    assert v.inflight(a) == (True, (5, 2))
    v.forget(a)  # forgetting only drops what was never sequenced
    v.forget(b)
    assert v.inflight(a) == (True, (5, 2))
    assert v.inflight(b) == (False, None)
    waiter = threading.Thread(target=v.wait_block, args=(-1, 5.0))
    waiter.start()
    v.publish(Head(5, 1005, b"r" * 32, 9), [a])
    waiter.join(5)
    assert not waiter.is_alive()
    assert v.inflight(a) == (False, None)
    assert v.head.lag == 4
    v.saw_sequencer(12)
    v.saw_sequencer(10)  # the head seen never goes back
    assert (v.head.height, v.head.sequencer_height, v.head.lag) == (5, 12, 7)
    v.sequenced(b, 3, 0)  # already applied by the time the ack came back
    assert v.inflight(b) == (False, None)


def test_a_damaged_store_is_set_aside_and_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "n.sqlite"
    store = NodeStore(path)
    store.write([_record(h) for h in range(50)], (49, b"snap" * 1000))
    store.close()
    data = bytearray(path.read_bytes())
    data[len(data) // 2 :] = b"\xff" * (len(data) - len(data) // 2)  # a torn second half
    path.write_bytes(bytes(data))

    rebuilt = NodeStore(path)
    try:
        assert rebuilt.damaged is not None
        aside, why = rebuilt.damaged
        assert aside == tmp_path / "n.sqlite.damaged"
        assert aside.read_bytes() == bytes(data)
        assert "malformed" in why or "corrupt" in why or "not a database" in why
        assert rebuilt.progress() is None
        assert rebuilt.snapshots() == []
    finally:
        rebuilt.close()
    again = NodeStore(path)
    try:
        assert again.damaged is None
    finally:
        again.close()
