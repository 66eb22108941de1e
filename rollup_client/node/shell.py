"""The rollup node: a trio shell that feeds the sequencer's log into a StateMachine.

`serve(config, *, machine_factory, task_status)` (hypercorn style; the caller, e.g. the
CLI, chooses the StateMachine) restores the newest snapshot of the machine, follows
the log from the next height, applies every verified block (empty ones too: their log
time drives swap deadlines), persists each block's receipts, root and outbox in one
SQLite transaction, forwards the outbox (votes, attestations) and user transactions to
the sequencer in batches, and serves `RollupService`. It reports `started(Endpoints)` once
it is serving and caught up with the head it saw at start.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from functools import partial

import trio

from rollup_client.node.apply import Applied, apply_block
from rollup_client.node.bridge import Head, NodeView
from rollup_client.node.config import NodeConfig
from rollup_client.node.edge import NodeParts, RollupEdge
from rollup_client.node.forward import Forwarder, chunks
from rollup_client.node.link import SequencerLink, open_link
from rollup_client.node.metrics import NodeMetrics
from rollup_client.node.store import NodeStore, StoreReader
from rollup_client.protocol import codec
from rollup_client.protocol.block import VerifiedBlock
from rollup_client.protocol.errors import (
    DeadlineExceeded,
    InvalidArgument,
    ResourceExhausted,
    TandemError,
    Unavailable,
)
from rollup_client.protocol.genesis import Genesis
from rollup_client.protocol.keys import SigningKey
from rollup_client.protocol.statemachine import MachineFactory, StateMachine
from rollup_client.rpc import Endpoints, EventLog

# Outbox entries not acknowledged yet are retried after this long (the sequencer dedups).
_RETRY_S = 0.5
# Failures worth retrying an outbox batch for; anything else will never succeed.
_TRANSIENT = (Unavailable, DeadlineExceeded, ResourceExhausted)
# Longest a graceful stop waits for accepted transactions to be acknowledged.
_DRAIN_S = 5.0
# How often the node asks the sequencer for its head, so Status reports a true lag.
_HEAD_POLL_S = 1.0


class Node:
    """Owns the machine and the store; everything here runs in the trio thread."""

    def __init__(
        self,
        config: NodeConfig,
        key: SigningKey,
        machine: StateMachine,
        store: NodeStore,
        link: SequencerLink,
        view: NodeView,
        metrics: NodeMetrics,
        log: EventLog,
    ) -> None:
        self.config = config
        self.key = key
        self.machine = machine
        self.store = store
        self.link = link
        self.view = view
        self.metrics = metrics
        self.log = log
        self.head_seen = -1
        self._acked: list[tuple[int, bytes]] = []
        self._unwritten: list[Applied] = []
        self._snapshot: tuple[int, bytes] | None = None
        self._write_wake = trio.Event()
        self.written_height = machine.height
        self._written = trio.Event()
        # Unbounded: the entries are in the store already; this only paces their sending.
        self._outbox_send, self._outbox_recv = trio.open_memory_channel[
            list[tuple[int, bytes, str, bytes]]
        ](math.inf)
        # Heights whose votes other rollups answer too (`Applied.shared`): not yet sent.
        self._company: set[int] = set()

    # -- outbox ----------------------------------------------------------------------------

    async def send_outbox(self) -> None:
        """Submit votes and attestations; drop them from the store once acknowledged.

        Everything queued while the previous batch was in flight goes in the next one
        (up to the sequencer's batch limit): one round trip each, not one per block.
        """
        carry: list[tuple[int, bytes, str, bytes]] = []
        while True:
            batch = carry or await self._outbox_recv.receive()
            carry = []
            while True:
                try:
                    more = self._outbox_recv.receive_nowait()
                except trio.WouldBlock:
                    break
                if len(batch) + len(more) > self.link.max_batch_entries:
                    carry = more
                    break
                batch = batch + more
            heights = {h for h, _, _, _ in batch}
            linger = self.config.vote_linger_ms if heights & self._company else 0
            self._company -= heights
            while True:
                try:
                    await self.link.submit_batch([(n, d) for _, _, n, d in batch], linger)
                except _TRANSIENT as exc:
                    self.log("outbox_retry", error=str(exc), entries=len(batch))
                    await trio.sleep(_RETRY_S)
                    continue
                except TandemError as exc:
                    # Refused for good (e.g. the genesis does not let this key write
                    # `swap`): retrying cannot help; say so loudly and move on.
                    self.log("outbox_refused", error=str(exc), entries=len(batch))
                break
            # Dropped from the store by the next block write (see `write`).
            self._acked += [(h, i) for h, i, _, _ in batch]

    async def _wait_written(self, height: int) -> None:
        while self.written_height < height:
            await self._written.wait()

    def _queue_outbox(self, entries: list[tuple[int, bytes, str, bytes]]) -> None:
        for chunk in chunks(entries, self.link.max_batch_entries):
            self._outbox_send.send_nowait(list(chunk))

    async def resubmit_owed(self) -> None:
        """After a start: resend what the store still owes, and what the machine owes."""
        owed = {i: (n, d) for i, n, d in self.store.outbox()}
        for n, d in self.machine.owed_votes():
            owed.setdefault(codec.entry_id(n, d), (n, d))
        if owed:
            self.log("resubmit", entries=len(owed))
            self._queue_outbox([(-1, i, n, d) for i, (n, d) in owed.items()])

    # -- following the log -----------------------------------------------------------------

    def apply(self, blk: VerifiedBlock) -> Applied:
        """Run one block through the machine (`apply_block`); note votes worth holding."""
        cfg = self.config
        signer = self.key if cfg.submit else None
        a = apply_block(
            self.machine, blk, cfg.rollup_id, signer=signer, attest_every=cfg.attest_every
        )
        if a.shared and cfg.vote_linger_ms:
            self._company.add(blk.height)
        return a

    def hand_over(self, group: list[Applied]) -> None:
        """Send a group's outbox now and give its records to the writer.

        Votes and attestations go out before the group is written, not after: each is a
        pure function of the log up to its block (the machine is deterministic and the
        entry id is the hash of the entry), so a node that crashes before its write
        restarts from its last durable block, replays the same blocks, re-derives the
        same escrows and the byte-identical entries, and resubmits them
        (`resubmit_owed`); the sequencer dedups by id. A vote therefore never reports an
        escrow the log cannot rebuild, and the swap no longer waits for this fsync.
        """
        if any(a.record.height % self.config.snapshot_every == 0 for a in group):
            self._snapshot = (group[-1].record.height, self.machine.snapshot())
        outbox = [(a.record.height, *e) for a in group for e in a.record.outbox]
        if outbox:
            self._queue_outbox(outbox)
        self._unwritten += group
        self._write_wake.set()

    async def write(self) -> None:
        """Make handed-over blocks durable, all that piled up in one transaction, then
        publish them. Following the log goes on meanwhile: under load the next blocks
        are applied (and their votes sent) during this fsync instead of after it.
        """
        while True:
            await self._write_wake.wait()
            self._write_wake = trio.Event()
            group, self._unwritten = self._unwritten, []
            if not group:
                continue
            snap, self._snapshot = self._snapshot, None
            last = group[-1].record
            # Acknowledged outbox entries are forgotten in the same transaction, not one
            # of their own (a thread hop and an fsync per vote): those whose block is
            # written or in this group, so none is written back after being dropped. One
            # acknowledged but not dropped when the node stops is resent after the
            # restart, and the sequencer dedups it.
            drop = [i for h, i in self._acked if h <= last.height]
            self._acked = [(h, i) for h, i in self._acked if h > last.height]
            # The fsync runs in a worker thread; the machine is not touched there.
            records = [a.record for a in group]
            await trio.to_thread.run_sync(self.store.write, records, snap, drop)
            self.head_seen = max(self.head_seen, last.height)
            head = Head(last.height, last.time_ms, last.state_root, self.head_seen)
            self.view.publish(head, [i for a in group for i in a.executed])
            self.metrics.applied(head, sum(len(a.executed) for a in group))
            self.written_height = last.height
            self._written.set()
            self._written = trio.Event()
            if snap is not None:
                self.log("snapshot", height=last.height)

    async def watch_head(self) -> None:
        """Learn the sequencer's head now and then: blocks alone say nothing of a backlog."""
        while True:
            await trio.sleep(_HEAD_POLL_S)
            try:
                height = (await self.link.status()).height
            except TandemError:
                continue
            if height > self.head_seen:
                self.head_seen = height
                self.view.saw_sequencer(height)
                self.metrics.lag(self.view.head.lag)

    async def follow(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Apply the log from the machine's next height on; started once caught up."""
        status = await self.link.status()
        self.head_seen = max(self.head_seen, status.height)
        target = status.height
        caught_up = self.machine.height >= target
        if caught_up:
            task_status.started()
        group: list[Applied] = []
        async with self.link.subscribe(
            self.machine.namespaces(), self.machine.height + 1
        ) as blocks:
            async for blk in blocks:
                self.head_seen = max(self.head_seen, blk.height)
                group.append(self.apply(blk))
                behind = blk.height < target and len(group) < self.config.catchup_group
                if behind:
                    continue
                self.hand_over(group)
                group = []
                if not caught_up and blk.height >= target:
                    await self._wait_written(blk.height)
                    caught_up = True
                    self.log("caught_up", height=blk.height)
                    task_status.started()


def restore(store: NodeStore, fresh: Callable[[], StateMachine], log: EventLog) -> StateMachine:
    """A machine at the newest snapshot that restores cleanly (the log replays the rest).

    A damaged snapshot is skipped for the one before it, and with none left the machine
    starts from genesis: slower, never wrong.
    """
    for height, data in store.snapshots():
        machine = fresh()
        try:
            machine.restore(data)
            if machine.height != height:
                raise InvalidArgument(f"it restored to height {machine.height}")
        except TandemError as exc:
            log("snapshot_unusable", height=height, error=str(exc))
            continue
        log("restored", height=height)
        return machine
    return fresh()


async def serve(
    config: NodeConfig,
    *,
    machine_factory: MachineFactory,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    task_status: trio.TaskStatus[Endpoints] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run a rollup node of the machines `machine_factory` builds; `task_status.started(
    Endpoints)` once caught up.

    Without `shutdown_trigger` it runs until cancelled. With one (hypercorn style), once
    the trigger returns it drains: health goes NOT_SERVING, new submissions are refused,
    transactions already accepted are forwarded and answered, then it stops.
    """
    genesis = Genesis.load(config.genesis)
    key = SigningKey.load(config.key)
    log = EventLog(config.log_path)
    store = NodeStore(config.db_path)
    reader = StoreReader(config.db_path)
    view = NodeView()
    metrics = NodeMetrics(config.rollup_id)
    try:
        if store.damaged is not None:
            log("store_damaged", moved_to=store.damaged[0], error=store.damaged[1])
        fresh = partial(machine_factory, genesis, config.rollup_id, key)
        machine = restore(store, fresh, log)
        durable = store.progress()
        log(
            "start",
            rollup=config.rollup_id,
            from_height=machine.height + 1,
            durable_height=durable.height if durable else -1,
        )
        async with open_link(config, genesis, key) as link:
            node = Node(config, key, machine, store, link, view, metrics, log)
            token = trio.lowlevel.current_trio_token()
            forwarder = Forwarder(config.rollup_id, machine, link, view, config.max_queued)
            parts = NodeParts(machine, view, forwarder.queue, reader, key.public, token)
            edge = RollupEdge(config, parts)
            edge.start()
            try:
                async with trio.open_nursery() as nursery:
                    if config.submit:
                        nursery.start_soon(forwarder.run)
                        nursery.start_soon(node.send_outbox)
                        await node.resubmit_owed()
                    t0 = time.monotonic()
                    nursery.start_soon(node.write)
                    await nursery.start(node.follow)
                    nursery.start_soon(node.watch_head)
                    metrics.start_server(config.metrics_listen)
                    edge.serving()
                    log(
                        "ready",
                        listen=edge.listen,
                        metrics=metrics.listen,
                        height=view.head.height,
                        catchup_s=round(time.monotonic() - t0, 3),
                    )
                    task_status.started(Endpoints(edge.listen, metrics.listen))
                    if shutdown_trigger is not None:
                        await shutdown_trigger()
                        log("draining")
                        edge.draining()
                        if config.submit:
                            await forwarder.drain(_DRAIN_S)
                        nursery.cancel_scope.cancel()
            finally:
                edge.draining()
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(edge.stop, 1.0)
    finally:
        metrics.stop_server()
        reader.close()
        store.close()
        log.close()
