"""The trio shell: owns the core and the store, cuts blocks by group commit, serves gRPC.

`serve(config)` has the hypercorn shape: it reports the bound port through
`task_status.started(port)` and shuts down gracefully when cancelled (health goes
NOT_SERVING, new submits get UNAVAILABLE, queued batches are still sealed and
acknowledged, then the server and the store close).
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import trio

from rollup_client.errors import FailedPrecondition, TandemError, Unavailable
from rollup_client.genesis import Genesis
from rollup_client.keys import SigningKey
from sequencer.config import Config
from sequencer.core import Cut, Position, Sequencer
from sequencer.edge import Edge
from sequencer.events import EventLog
from sequencer.handlers import Handlers
from sequencer.headwatch import HeadWatch
from sequencer.intake import Intake, Ticket
from sequencer.metrics import Metrics
from sequencer.store import Store

SHUTDOWN_GRACE_S = 2.0
# Worker threads of the shell (cutter, writer, maintenance), never shared with whatever
# else runs in the same trio run: a caller's blocked threads must not starve the commit.
SHELL_THREADS = 4
# How often the store checkpoints its WAL and the id index checks whether it is due.
MAINTENANCE_S = 0.5


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class _Sealed:
    """A cut block on its way to disk, with the tickets it answers."""

    cut: Cut
    tickets: list[Ticket]


class Committer:
    """Group commit in two overlapping stages: cut block N+1 while block N is fsynced.

    The cutter takes everything queued, looks up known ids, and has the core seal a block;
    the writer commits it and releases every handler of the block at once. Each stage is
    one thread for the life of the server, woken by the intake and handing blocks over
    directly: no trio hop per block, which on a busy host cost more than the fsync. The
    core and the writer connection are each only touched by one thread. Ids of a block
    that is cut but not yet written are kept in `_unwritten` so the next cut still dedups
    against them.
    """

    def __init__(
        self,
        core: Sequencer,
        store: Store,
        intake: Intake,
        watch: HeadWatch,
        metrics: Metrics,
        log: EventLog,
        threads: trio.CapacityLimiter,
        clock: Callable[[], int] = wall_ms,
    ) -> None:
        self.core = core
        self.store = store
        self.intake = intake
        self.watch = watch
        self.metrics = metrics
        self.log = log
        self.clock = clock
        self._pending: list[Ticket] = []
        # Height -> {id: index} of each block cut but not yet written.
        self._unwritten: dict[int, dict[bytes, int]] = {}
        self._handoff: _Sealed | None = None
        # Blocks go to the writer one at a time; the cutter waits until each is taken.
        self._to_writer: queue.Queue[_Sealed | None] = queue.Queue(maxsize=1)
        self._writer_idle = True
        self._stopping = False
        self._woken = threading.Event()
        self.threads = threads

    def stop(self) -> None:
        """Stop taking new submissions; everything queued is still sealed and answered."""
        self._stopping = True
        self.intake.close()
        self._woken.set()

    async def run(self, heartbeat_ms: int) -> None:
        """Run both stages until `stop()` and everything queued is durable and indexed.

        Shielded: a cancel must not strand a block that is cut (the core has moved past
        it) but not yet written. Call `stop()` to end it.
        """
        with trio.CancelScope(shield=True):
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(
                        partial(trio.to_thread.run_sync, self._write_all, limiter=self.threads)
                    )
                    await trio.to_thread.run_sync(
                        self._cut_all, heartbeat_ms / 1000, limiter=self.threads
                    )
            except BaseException as exc:
                self._fail_waiting(exc)
                raise
            await trio.to_thread.run_sync(self.store.index.flush, limiter=self.threads)

    def _fail_waiting(self, exc: BaseException) -> None:
        """The store failed: answer every batch not yet durable with why, never leave it."""
        self.intake.close()
        error = _first_tandem_error(exc)
        waiting = self._pending + self.intake.take()
        if self._handoff is not None:
            waiting += self._handoff.tickets
        self.intake.finish(waiting, [error] * len(waiting))

    def _cut_all(self, heartbeat: float) -> None:
        """The cutter thread: group commit, plus an empty block at each idle heartbeat.

        A block is cut when the writer is free to take it, so everything that arrived
        during the previous write lands in one block (one fsync), or earlier when a full
        block is already waiting, so its cut overlaps the write. Cutting whenever anything
        was queued made blocks of one batch each, one fsync per batch.
        """
        last_cut = time.monotonic()
        try:
            while True:
                self._woken.clear()
                self._pending += self.intake.take(self._woken.set)
                now = time.monotonic()
                if self._pending and (self._writer_idle or self._full(self._pending)):
                    self._cut_and_hand_over()
                    last_cut = time.monotonic()
                elif not self._pending and self._stopping:
                    return
                elif not self._pending and self._writer_idle and now >= last_cut + heartbeat:
                    self._cut_and_hand_over()
                    last_cut = time.monotonic()
                elif self._pending:
                    self._woken.wait()
                else:
                    self._woken.wait(max(0.0, last_cut + heartbeat - now))
        finally:
            self._to_writer.put(None)

    def _full(self, tickets: Sequence[Ticket]) -> bool:
        """True when `tickets` fill the next block: waiting cannot make it bigger."""
        return self.core.take([t.batch for t in tickets]) < len(tickets)

    def _cut_and_hand_over(self) -> None:
        sealed = self._cut(self._pending)
        self._pending = self._pending[len(sealed.tickets) :]
        self._handoff = sealed
        self._writer_idle = False
        self._to_writer.put(sealed)
        self._to_writer.join()
        self._handoff = None

    def _write_all(self) -> None:
        """The writer thread: each handed-over block durably, until the cutter ends.

        After a failed write it keeps taking blocks (failing their batches with the same
        error) so the cutter is never left waiting, then raises the failure.
        """
        failure: BaseException | None = None
        while True:
            sealed = self._to_writer.get()
            self._to_writer.task_done()
            if sealed is None:
                break
            if failure is not None:
                error = _first_tandem_error(failure)
                self.intake.finish(sealed.tickets, [error] * len(sealed.tickets))
            else:
                try:
                    self._write(sealed)
                except BaseException as exc:
                    failure = exc
                    self.stop()
            self._writer_idle = True
            self._woken.set()
        if failure is not None:
            raise failure

    def _cut(self, tickets: Sequence[Ticket]) -> _Sealed:
        """Seal the next block from the leading tickets (worker thread)."""
        batches = [t.batch for t in tickets[: self.core.take([t.batch for t in tickets])]]
        ids = set(itertools.chain.from_iterable(b.ids for b in batches))
        # Look in `_unwritten` before the store: the writer puts a block's ids into the
        # store's index before dropping them from `_unwritten`, so none slips between.
        known: dict[bytes, Position] = {}
        for height, at in list(self._unwritten.items()):
            for eid in at.keys() & ids:
                known[eid] = (height, at[eid])
        known.update(self.store.positions(ids.difference(known)))
        cut = self.core.cut(batches, self.clock(), known)
        blk = cut.block
        self._unwritten[blk.header.height] = dict(zip(blk.ids, range(len(blk.ids)), strict=True))
        return _Sealed(cut, list(tickets[: cut.taken]))

    def _write(self, sealed: _Sealed) -> None:
        """Commit one block durably, then answer its handlers (worker thread)."""
        cut, tickets = sealed.cut, sealed.tickets
        t0 = time.perf_counter()
        try:
            self.store.write(cut.block)
        except BaseException as exc:
            self.log("store_failed", height=cut.block.header.height, error=str(exc))
            self.intake.finish(tickets, [_first_tandem_error(exc)] * len(tickets))
            raise
        self.metrics.fsync.observe(time.perf_counter() - t0)
        del self._unwritten[cut.block.header.height]
        self.intake.finish(tickets, cut.outcomes)
        blk = cut.block
        self.watch.publish(blk.head)
        n = blk.header.entry_count
        self.metrics.height.set(blk.header.height)
        self.metrics.entries.inc(n)
        self.metrics.blocks.inc()
        self.metrics.block_size.observe(n)


def _first_tandem_error(exc: BaseException) -> TandemError:
    """The Tandem error behind `exc` (through exception groups), else a generic one."""
    found = _tandem_error_in(exc)
    return found if found is not None else Unavailable(f"the sequencer stopped: {exc!r}")


def _tandem_error_in(exc: BaseException) -> TandemError | None:
    if isinstance(exc, TandemError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for sub in exc.exceptions:
            found = _tandem_error_in(sub)
            if found is not None:
                return found
    return None


async def _maintain(store: Store, threads: trio.CapacityLimiter) -> None:
    """Off the ack path: checkpoint the block WAL, move sealed ids into the id index."""
    while True:
        await trio.sleep(MAINTENANCE_S)
        await trio.to_thread.run_sync(store.checkpoint, limiter=threads)
        if store.index.due():
            await trio.to_thread.run_sync(store.index.flush, limiter=threads)


def _load_identity(config: Config) -> tuple[Genesis, SigningKey]:
    genesis = Genesis.load(config.genesis_path)
    key = SigningKey.load(config.key_path)
    if key.public != genesis.sequencer_key:
        raise FailedPrecondition(
            f"key {config.key_path} is not the sequencer key named in {config.genesis_path}"
        )
    return genesis, key


async def serve(
    config: Config,
    *,
    on_ready: Callable[[str, str], None] | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the sequencer until cancelled; `on_ready(listen, metrics)` fires once SERVING."""
    genesis, key = _load_identity(config)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    log = EventLog(config.log_path)
    threads = trio.CapacityLimiter(SHELL_THREADS)
    store = await trio.to_thread.run_sync(Store, config.db_path, limiter=threads)
    reader = store.reader()
    try:
        head = await trio.to_thread.run_sync(store.recover, genesis.sequencer_key, limiter=threads)
        core = Sequencer(key, head, config.max_block_entries, genesis.time_ms)
        metrics = Metrics()
        intake = Intake(config.limits.max_inflight_batches_per_client, config.max_queue_entries)
        if head is not None:
            log("recovered", height=head.height, hash=head.hash.hex(), time_ms=head.time_ms)
        else:
            first = core.cut([], wall_ms(), {})
            await trio.to_thread.run_sync(store.write, first.block, limiter=threads)
            head = first.block.head
            log("genesis_block", height=0, hash=head.hash.hex())
        watch = HeadWatch(head)
        metrics.height.set(head.height)
        committer = Committer(core, store, intake, watch, metrics, log, threads)
        handlers = Handlers(config, genesis, intake, reader, watch, metrics)
        await _run(config, handlers, committer, log, on_ready, task_status)
    finally:
        reader.close()
        store.close()
        log("stopped")
        log.close()


async def _run(
    config: Config,
    handlers: Handlers,
    committer: Committer,
    log: EventLog,
    on_ready: Callable[[str, str], None] | None,
    task_status: trio.TaskStatus[int],
) -> None:
    try:
        edge = Edge(handlers, config.listen, config.grpc_workers)
    except RuntimeError as exc:
        raise FailedPrecondition(f"cannot listen on {config.listen}: {exc}") from exc
    metrics_addr, httpd = "", None
    try:
        if config.metrics_listen:
            metrics_addr, httpd = handlers.metrics.serve(config.metrics_listen)
        edge.start()
        edge.serving()
        head = committer.watch.head
        log("ready", listen=edge.listen, metrics=metrics_addr, height=head.height)
        if on_ready is not None:
            on_ready(edge.listen, metrics_addr)
        task_status.started(edge.port)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_maintain, committer.store, committer.threads)
            nursery.start_soon(committer.run, config.heartbeat_ms)
            try:
                await trio.sleep_forever()
            finally:
                edge.draining()
                log("draining", height=committer.watch.head.height)
                committer.stop()
    finally:
        committer.watch.close()
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(edge.stop, SHUTDOWN_GRACE_S, limiter=committer.threads)
            if httpd is not None:
                httpd.shutdown()
                httpd.server_close()
