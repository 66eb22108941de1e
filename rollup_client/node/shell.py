"""The rollup node: a trio shell that feeds the sequencer's log into a StateMachine.

`serve(config, *, task_status)` (hypercorn style) restores the newest snapshot, follows
the log from the next height, applies every verified block (empty ones too: their log
time drives swap deadlines), persists each block's receipts, root and outbox in one
SQLite transaction, forwards the outbox (votes, attestations) and user transactions to
the sequencer in batches, and serves `RollupService`. It reports `started(Endpoints)` once
it is serving and caught up with the head it saw at start.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import trio

from rollup_client.ledger import TokenLedger
from rollup_client.node.bridge import Head, NodeView, Submission, SubmitQueue
from rollup_client.node.config import NodeConfig
from rollup_client.node.edge import RollupEdge
from rollup_client.node.link import SequencerLink, open_link
from rollup_client.node.metrics import NodeMetrics
from rollup_client.node.store import BlockRecord, NodeStore, StoreReader
from rollup_client.protocol import attestation, codec, swap
from rollup_client.protocol.block import VerifiedBlock
from rollup_client.protocol.errors import (
    DeadlineExceeded,
    InvalidArgument,
    ResourceExhausted,
    TandemError,
    Unavailable,
)
from rollup_client.protocol.genesis import SETTLEMENT_NAMESPACE, SWAP_NAMESPACE, Genesis
from rollup_client.protocol.keys import SigningKey
from rollup_client.protocol.statemachine import StateMachine

T = TypeVar("T")
MachineFactory = Callable[[Genesis, str, SigningKey], StateMachine]
log = logging.getLogger("tandem.rollup")

# Outbox entries not acknowledged yet are retried after this long (the sequencer dedups).
_RETRY_S = 0.5
# Failures worth retrying an outbox batch for; anything else will never succeed.
_TRANSIENT = (Unavailable, DeadlineExceeded, ResourceExhausted)
# The leading byte of an intent in the swap namespace (votes and others are skipped by it).
_INTENT_KIND = bytes([swap.KIND_INTENT])
# Longest a graceful stop waits for accepted transactions to be acknowledged.
_DRAIN_S = 5.0
# How often the node asks the sequencer for its head, so Status reports a true lag.
_HEAD_POLL_S = 1.0


def token_ledger(genesis: Genesis, rollup_id: str, key: SigningKey) -> StateMachine:
    """The reference execution environment: the token ledger."""
    return TokenLedger(genesis, rollup_id, signer=key)


def _event(event: str, **fields: object) -> None:
    doc = {"ts": round(time.time(), 3), "event": event, **fields}
    log.info(json.dumps(doc, sort_keys=True, default=str))


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where a started node serves: gRPC and metrics HOST:PORT ("" when metrics are off)."""

    listen: str
    metrics: str


@dataclass(frozen=True, slots=True)
class Applied:
    """One block run through the machine, not yet durable."""

    record: BlockRecord
    executed: list[bytes]
    txs: int


class Node:
    """Owns the machine and the store; everything here runs in the trio thread."""

    def __init__(
        self,
        config: NodeConfig,
        genesis: Genesis,
        key: SigningKey,
        machine: StateMachine,
        store: NodeStore,
        link: SequencerLink,
        view: NodeView,
        metrics: NodeMetrics,
    ) -> None:
        self.config = config
        self.genesis = genesis
        self.key = key
        self.machine = machine
        self.store = store
        self.link = link
        self.view = view
        self.metrics = metrics
        self.head_seen = -1
        self._wakeup = trio.Event()
        self._draining = False
        self._forwarded = trio.Event()
        self._acked: list[tuple[int, bytes]] = []
        self._unwritten: list[Applied] = []
        self._snapshot: tuple[int, bytes] | None = None
        self._write_wake = trio.Event()
        self.written_height = machine.height
        self._written = trio.Event()
        self._token = trio.lowlevel.current_trio_token()
        self.queue = SubmitQueue(self._wake_from_thread, max_items=config.max_queued)
        # Unbounded: the entries are in the store already; this only paces their sending.
        self._outbox_send, self._outbox_recv = trio.open_memory_channel[
            list[tuple[int, bytes, str, bytes]]
        ](math.inf)
        # Heights whose votes other rollups answer too (see `_shared_votes`): not yet sent.
        self._company: set[int] = set()

    # -- user submissions ------------------------------------------------------------------

    def _wake_from_thread(self) -> None:
        try:
            self._token.run_sync_soon(self._wake)
        except trio.RunFinishedError as exc:
            raise Unavailable("the rollup node is shutting down") from exc

    def _wake(self) -> None:
        self._wakeup.set()

    async def forward_submissions(self) -> None:
        """Drain the queue once per wake-up: check nonces, forward one batch, release all.

        Returns once draining and the queue is empty. On the way out every waiting
        handler is released with Unavailable, so no handler thread outlives the node.
        """
        good: list[Submission] = []
        try:
            while not self._draining or self.queue.waiting():
                await self._wakeup.wait()
                self._wakeup = trio.Event()
                good = []
                for sub in self.queue.drain():
                    try:
                        self.machine.check_state(sub.data)
                    except TandemError as exc:
                        self.view.forget(sub.tx_id)
                        sub.fail(exc)
                    else:
                        good.append(sub)
                for chunk in _chunks(good, self.link.max_batch_entries):
                    await self._forward(chunk)
        finally:
            for sub in good + self.queue.close():
                sub.fail(Unavailable("the rollup node is shutting down: resubmit"))
            self._forwarded.set()

    async def drain(self, grace_s: float) -> None:
        """Refuse new submissions; wait (at most `grace_s`) until accepted ones are answered."""
        self._draining = True
        self.queue.close_intake()
        self._wake()
        with trio.move_on_after(grace_s):
            await self._forwarded.wait()

    async def _forward(self, subs: Sequence[Submission]) -> None:
        ns = self.config.rollup_id
        try:
            acks = await self.link.submit_batch([(ns, s.data) for s in subs])
        except TandemError as exc:
            for s in subs:
                self.view.forget(s.tx_id)
                s.fail(exc)
            return
        for s, (height, index, duplicate) in zip(subs, acks, strict=True):
            self.view.sequenced(s.tx_id, height, index)
            s.resolve((height, index), duplicate)

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
                    _event("outbox_retry", error=str(exc), entries=len(batch))
                    await trio.sleep(_RETRY_S)
                    continue
                except TandemError as exc:
                    # Refused for good (e.g. the genesis does not let this key write
                    # `swap`): retrying cannot help; say so loudly and move on.
                    _event("outbox_refused", error=str(exc), entries=len(batch))
                break
            # Dropped from the store by the next block write (see `write`).
            self._acked += [(h, i) for h, i, _, _ in batch]

    async def _wait_written(self, height: int) -> None:
        while self.written_height < height:
            await self._written.wait()

    def _queue_outbox(self, entries: list[tuple[int, bytes, str, bytes]]) -> None:
        for chunk in _chunks(entries, self.link.max_batch_entries):
            self._outbox_send.send_nowait(list(chunk))

    async def resubmit_owed(self) -> None:
        """After a start: resend what the store still owes, and what the machine owes."""
        owed = {i: (n, d) for i, n, d in self.store.outbox()}
        for n, d in self.machine.owed_votes():
            owed.setdefault(codec.entry_id(n, d), (n, d))
        if owed:
            _event("resubmit", entries=len(owed))
            self._queue_outbox([(-1, i, n, d) for i, (n, d) in owed.items()])

    # -- following the log -----------------------------------------------------------------

    def apply(self, blk: VerifiedBlock) -> Applied:
        """Run one block through the machine; collect what must be persisted and sent."""
        m = self.machine
        receipts = list(m.begin_block(blk.height, blk.time_ms))
        executed: list[bytes] = []
        txs = 0
        for entry in blk.entries:
            r = m.apply(entry)
            if entry.namespace == self.config.rollup_id:
                executed.append(entry.id)
                txs += 1
            if r is not None:
                receipts.append(r)
        root = m.state_root()
        outbox = [(codec.entry_id(n, d), n, d) for n, d in m.take_outbox()]
        linger = self.config.submit and self.config.vote_linger_ms
        if linger and any(n == SWAP_NAMESPACE for _, n, _ in outbox) and self._shared_votes(blk):
            self._company.add(blk.height)
        every = self.config.attest_every
        if self.config.submit and every and blk.height % every == 0:
            data = attestation.Attestation.make(
                self.config.rollup_id, blk.height, root, self.key
            ).encode()
            outbox.append((codec.entry_id(SETTLEMENT_NAMESPACE, data), SETTLEMENT_NAMESPACE, data))
        if not self.config.submit:
            outbox = []
        record = BlockRecord(blk.height, blk.time_ms, root, receipts, outbox)
        return Applied(record, executed, txs)

    def _shared_votes(self, blk: VerifiedBlock) -> bool:
        """True when an intent in `blk` that this rollup votes on has other rollups voting
        too: their votes are on their way, so this node's may wait for them (linger_ms)
        and all land in one block. A swap on this rollup alone must not wait."""
        me = self.config.rollup_id
        for entry in blk.entries:
            if entry.namespace != SWAP_NAMESPACE or entry.data[:1] != _INTENT_KIND:
                continue
            try:
                item = swap.decode_swap_entry(entry.data)
            except InvalidArgument:
                continue
            rollups = item.intent.rollups() if isinstance(item, swap.SignedIntent) else ()
            if me in rollups and len(rollups) > 1:
                return True
        return False

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
            self.metrics.applied(head, sum(a.txs for a in group))
            self.written_height = last.height
            self._written.set()
            self._written = trio.Event()
            if snap is not None:
                _event("snapshot", height=last.height)

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
                    _event("caught_up", height=blk.height)
                    task_status.started()


def _chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def restore(store: NodeStore, fresh: Callable[[], StateMachine]) -> StateMachine:
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
            _event("snapshot_unusable", height=height, error=str(exc))
            continue
        _event("restored", height=height)
        return machine
    return fresh()


async def serve(
    config: NodeConfig,
    *,
    machine_factory: MachineFactory = token_ledger,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    task_status: trio.TaskStatus[Endpoints] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run a rollup node; `task_status.started(Endpoints)` once caught up.

    Without `shutdown_trigger` it runs until cancelled. With one (hypercorn style), once
    the trigger returns it drains: health goes NOT_SERVING, new submissions are refused,
    transactions already accepted are forwarded and answered, then it stops.
    """
    genesis = Genesis.load(config.genesis)
    key = SigningKey.load(config.key)
    store = NodeStore(config.db_path)
    reader = StoreReader(config.db_path)
    view = NodeView()
    metrics = NodeMetrics(config.rollup_id)
    try:
        if store.damaged is not None:
            _event("store_damaged", moved_to=store.damaged[0], error=store.damaged[1])
        machine = restore(store, lambda: machine_factory(genesis, config.rollup_id, key))
        durable = store.progress()
        _event(
            "start",
            rollup=config.rollup_id,
            from_height=machine.height + 1,
            durable_height=durable.height if durable else -1,
        )
        async with open_link(config, genesis, key) as link:
            node = Node(config, genesis, key, machine, store, link, view, metrics)
            edge = RollupEdge(config, node, reader, trio.lowlevel.current_trio_token())
            edge.start()
            try:
                async with trio.open_nursery() as nursery:
                    if config.submit:
                        nursery.start_soon(node.forward_submissions)
                        nursery.start_soon(node.send_outbox)
                        await node.resubmit_owed()
                    t0 = time.monotonic()
                    nursery.start_soon(node.write)
                    await nursery.start(node.follow)
                    nursery.start_soon(node.watch_head)
                    metrics.start_server(config.metrics_listen)
                    edge.serving()
                    _event(
                        "ready",
                        listen=edge.listen,
                        metrics=metrics.listen,
                        height=view.head.height,
                        catchup_s=round(time.monotonic() - t0, 3),
                    )
                    task_status.started(Endpoints(edge.listen, metrics.listen))
                    if shutdown_trigger is not None:
                        await shutdown_trigger()
                        _event("draining")
                        edge.draining()
                        if config.submit:
                            await node.drain(_DRAIN_S)
                        nursery.cancel_scope.cancel()
            finally:
                edge.draining()
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(edge.stop, 1.0)
    finally:
        metrics.stop_server()
        reader.close()
        store.close()
