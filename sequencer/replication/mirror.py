"""A replica's copy of the committed chain: etcd's blocks, checked, in its own block store.

Every replica, leader or follower, stores only blocks that etcd has committed, in order, so
its store is always a prefix of the one chain. Synchronous (the store and the etcd client
are); the replica's shell runs it in a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable

from rollup_client.protocol.errors import FailedPrecondition
from rollup_client.wire import etcd_rpc_pb2 as epb
from rollup_client.wire import sequencer_pb2 as pb
from sequencer import etcd as e
from sequencer.core import Head
from sequencer.replication import record
from sequencer.replication.keys import Head as CommittedHead
from sequencer.replication.keys import Keys
from sequencer.store import Store

PAGE = 64  # blocks read from etcd per range request while catching up


class Mirror:
    def __init__(
        self,
        client: e.EtcdClient,
        keys: Keys,
        store: Store,
        sequencer_key: bytes,
        head: Head | None,
        on_block: Callable[[Head], object] = lambda _: None,
    ) -> None:
        self.client = client
        self.keys = keys
        self.store = store
        self.sequencer_key = sequencer_key
        self.head = head
        self.on_block = on_block

    def committed(self) -> tuple[CommittedHead | None, int]:
        """etcd's head (None before block 0) and the store revision it was read at."""
        r = self.client.range(self.keys.head)
        head = CommittedHead.decode(r.kvs[0].value) if r.kvs else None
        return head, r.header.revision

    def catch_up(self) -> int:
        """Store every committed block above ours; returns the etcd revision read up to.

        FailedPrecondition when our newest block is not the committed one at its height:
        this store holds another history and must not be served.
        """
        target, revision = self.committed()
        self._check_agrees(target, revision)
        while target is not None and (self.head is None or self.head.height < target.height):
            start = 0 if self.head is None else self.head.height + 1
            r = self.client.range(
                self.keys.block(start),
                e.prefix_end(self.keys.blocks),
                limit=PAGE,
                revision=revision,
            )
            if not r.kvs:
                raise FailedPrecondition(
                    f"etcd no longer holds block {start} (committed up to {target.height}): "
                    "this replica is further behind than etcd keeps; catch it up from a peer"
                )
            for kv in r.kvs:
                self._apply(self.keys.height_of(kv.key), kv.value)
        return revision

    def watch(self, after_revision: int) -> e.Watch:
        """The blocks etcd commits after `after_revision` (`catch_up`'s answer)."""
        return self.client.watch(
            self.keys.blocks, e.prefix_end(self.keys.blocks), after_revision + 1
        )

    def follow(self, watch: e.Watch) -> None:
        """Store each block `watch` brings, until the watch is cancelled (from any thread)."""
        for events in watch:
            for ev in events:
                if ev.type == epb.Event.PUT:
                    self._apply(self.keys.height_of(ev.kv.key), ev.kv.value)

    def _apply(self, height: int, raw: bytes) -> None:
        expected = 0 if self.head is None else self.head.height + 1
        if height < expected:
            return  # seen already (a watch that overlaps the catch-up)
        if height > expected:
            raise FailedPrecondition(
                f"etcd committed block {height} but this replica's next is {expected}"
            )
        blk = record.decode(raw, self.sequencer_key, self.head)
        self.store.write(blk)
        self.head = blk.head
        self.on_block(blk.head)

    def _check_agrees(self, target: CommittedHead | None, revision: int) -> None:
        if self.head is None:
            return
        if target is None or target.height < self.head.height:
            committed = "nothing" if target is None else f"up to block {target.height}"
            raise FailedPrecondition(
                f"this replica stores blocks up to {self.head.height} but etcd has committed "
                f"{committed}: its store is not of this cluster's chain"
            )
        kv = self.client.range(self.keys.block(self.head.height), revision=revision).kvs
        if kv and pb.FilteredBlock.FromString(kv[0].value).header.hash != self.head.hash:
            raise FailedPrecondition(
                f"block {self.head.height} in this replica's store differs from the one "
                "committed in etcd: move its data directory aside and restart to rebuild it"
            )
