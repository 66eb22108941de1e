"""A replica's store mirrors the chain committed in etcd: caught up, then followed, checked
block by block; a store of another history is refused, never served."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from rollup_client.protocol.errors import FailedPrecondition, VerificationError
from rollup_client.protocol.keys import SigningKey
from sequencer.core import Block, Head
from sequencer.replication import record
from sequencer.replication.keys import Head as CommittedHead
from sequencer.replication.keys import Keys, Leader
from sequencer.replication.mirror import Mirror
from sequencer.store import Store
from tests.replication.chain import KEY, seal
from tests.replication.conftest import Running

WAIT_S = 20.0


class Leading:
    """A stand-in leader that commits sealed blocks to etcd through the real transactions."""

    def __init__(self, etcd: Running, keys: Keys) -> None:
        self.client = etcd.client()
        self.keys = keys
        lease = self.client.grant(30)
        r = self.client.txn(keys.campaign(Leader("lead", "x"), lease.id))
        assert r.succeeded
        self.term = r.header.revision
        self.head: Head | None = None

    def commit(self, blk: Block) -> None:
        parent = None if self.head is None else CommittedHead(self.head.height, self.head.hash)
        head = CommittedHead(blk.header.height, blk.hash)
        assert self.client.txn(
            self.keys.commit(self.term, parent, head, record.encode(blk))
        ).succeeded
        self.head = blk.head

    def commit_new(self, n: int, key: SigningKey = KEY) -> list[Block]:
        out = []
        for i in range(n):
            blk = seal(self.head, [("rollup-a", b"%d" % i)] * (i % 3), key)
            self.commit(blk)
            out.append(blk)
        return out


def mirror(
    etcd: Running, keys: Keys, path: Path, on_block: Callable[[Head], object] = lambda _: None
) -> Mirror:
    store = Store(path)
    return Mirror(etcd.client(), keys, store, KEY.public, store.recover(KEY.public), on_block)


def test_catch_up_then_follow(etcd: Running, tmp_path: Path) -> None:
    keys = Keys("mirror")
    lead = Leading(etcd, keys)
    first = lead.commit_new(5)
    reached = threading.Event()

    def on_block(head: Head) -> None:
        if head.height == 7:
            reached.set()

    m = mirror(etcd, keys, tmp_path / "r1" / "blocks.sqlite", on_block)
    revision = m.catch_up()
    assert m.head == first[-1].head
    watch = m.watch(revision)
    follower = threading.Thread(target=m.follow, args=(watch,))
    follower.start()
    try:
        later = lead.commit_new(3)
        assert reached.wait(WAIT_S)
    finally:
        watch.cancel()
        follower.join(WAIT_S)
    assert not follower.is_alive()
    assert m.head == later[-1].head
    m.store.close()
    again = Store(tmp_path / "r1" / "blocks.sqlite")
    assert again.recover(KEY.public) == later[-1].head  # durable in the replica's own store
    again.close()


def test_a_store_of_another_history_is_refused(etcd: Running, tmp_path: Path) -> None:
    keys = Keys("other-history")
    Leading(etcd, keys).commit_new(3)
    path = tmp_path / "r2" / "blocks.sqlite"
    store = Store(path)
    for blk in [seal(None, [("rollup-b", b"mine")])]:
        store.write(blk)
    store.close()
    m = mirror(etcd, keys, path)
    with pytest.raises(FailedPrecondition, match="differs from the one committed"):
        m.catch_up()


def test_a_store_ahead_of_etcd_is_refused(etcd: Running, tmp_path: Path) -> None:
    keys = Keys("ahead")
    lead = Leading(etcd, keys)
    blocks = lead.commit_new(1)
    path = tmp_path / "r3" / "blocks.sqlite"
    store = Store(path)
    store.write(blocks[0])
    store.write(seal(blocks[0].head, []))
    store.close()
    with pytest.raises(FailedPrecondition, match="not of this cluster's chain"):
        mirror(etcd, keys, path).catch_up()


def test_a_block_signed_by_another_key_is_not_stored(etcd: Running, tmp_path: Path) -> None:
    keys = Keys("forged")
    lead = Leading(etcd, keys)
    lead.commit_new(2)
    lead.commit_new(1, SigningKey.generate())
    m = mirror(etcd, keys, tmp_path / "r4" / "blocks.sqlite")
    with pytest.raises(VerificationError, match="signature"):
        m.catch_up()
    assert m.head is not None
    assert m.head.height == 1
