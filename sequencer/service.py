"""The trio shell: owns the core and the store, cuts blocks by group commit, serves gRPC.

`serve(config)` has the hypercorn shape: it reports the bound port through
`task_status.started(port)` and shuts down gracefully when cancelled (health goes
NOT_SERVING, new submits get UNAVAILABLE, queued batches are still sealed and
acknowledged, then the server and the store close).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from functools import partial

import trio

from rollup_client.errors import FailedPrecondition, Unavailable
from rollup_client.genesis import Genesis
from rollup_client.keys import SigningKey
from sequencer.config import Config
from sequencer.core import Cut, Sequencer
from sequencer.edge import Edge
from sequencer.events import EventLog
from sequencer.handlers import Handlers
from sequencer.headwatch import HeadWatch
from sequencer.intake import Intake, Ticket
from sequencer.metrics import Metrics
from sequencer.store import IdIndex, Store

SHUTDOWN_GRACE_S = 2.0
# How often the id index checks whether its in-memory tail is due for a flush.
INDEX_CHECK_S = 0.5


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Committer:
    """Group commit: seal everything queued into one block, fsync, release its handlers.

    `seal` runs in a worker thread while the trio loop awaits it, so the core and the
    writer connection are only ever touched by one thread at a time.
    """

    def __init__(
        self,
        core: Sequencer,
        store: Store,
        intake: Intake,
        watch: HeadWatch,
        metrics: Metrics,
        log: EventLog,
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

    def seal(self, tickets: Sequence[Ticket]) -> int:
        """Cut, write and acknowledge one block from the leading tickets; returns how many."""
        batches = [t.batch for t in tickets[: self.core.take([t.batch for t in tickets])]]
        known = self.store.known(it.id for b in batches for it in b.items)
        cut = self.core.cut(batches, self.clock(), known)
        t0 = time.perf_counter()
        try:
            self.store.write(cut.block)
        except BaseException:
            self.intake.finish(
                tickets[: cut.taken], [Unavailable("the block store failed")] * cut.taken
            )
            raise
        self.metrics.fsync.observe(time.perf_counter() - t0)
        self.intake.finish(tickets[: cut.taken], cut.outcomes)
        self._published(cut)
        return cut.taken

    def _published(self, cut: Cut) -> None:
        blk = cut.block
        self.watch.publish(blk.head)
        n = blk.header.entry_count
        self.metrics.height.set(blk.header.height)
        self.metrics.entries.inc(n)
        self.metrics.blocks.inc()
        self.metrics.block_size.observe(n)

    async def run(self, heartbeat_ms: int) -> None:
        """Cut a block whenever work is queued (back to back under load), else heartbeat."""
        token = trio.lowlevel.current_trio_token()
        heartbeat = heartbeat_ms / 1000
        last_cut = trio.current_time()
        while True:
            if not self._pending:
                woken = trio.Event()
                self._pending = self.intake.take(partial(_wake, token, woken))
                if not self._pending:
                    with trio.move_on_at(last_cut + heartbeat):
                        await woken.wait()
                    self._pending = self.intake.take()
                    if not self._pending and trio.current_time() < last_cut + heartbeat:
                        continue
            else:
                self._pending += self.intake.take()
            await self._seal_pending()
            last_cut = trio.current_time()

    async def drain(self) -> None:
        """Refuse new submissions, then seal and acknowledge everything already queued."""
        self.intake.close()
        self._pending += self.intake.take()
        while self._pending:
            await self._seal_pending()

    async def _seal_pending(self) -> None:
        taken = await trio.to_thread.run_sync(self.seal, self._pending)
        self._pending = self._pending[taken:]


def _wake(token: trio.lowlevel.TrioToken, event: trio.Event) -> None:
    with contextlib.suppress(trio.RunFinishedError):
        token.run_sync_soon(event.set)


async def _keep_indexing(index: IdIndex) -> None:
    """Move newly sealed ids into the durable index in large batches, off the ack path."""
    while True:
        await trio.sleep(INDEX_CHECK_S)
        if index.due():
            await trio.to_thread.run_sync(index.flush)


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
    store = await trio.to_thread.run_sync(Store, config.db_path)
    reader = store.reader()
    try:
        head = await trio.to_thread.run_sync(store.recover, genesis.sequencer_key)
        core = Sequencer(key, head, config.max_block_entries, genesis.time_ms)
        metrics = Metrics()
        intake = Intake(config.limits.max_inflight_batches_per_client, config.max_queue_entries)
        if head is None:
            first = core.cut([], wall_ms(), {})
            await trio.to_thread.run_sync(store.write, first.block)
            head = first.block.head
            log("genesis_block", height=0, hash=head.hash.hex())
        watch = HeadWatch(head)
        metrics.height.set(head.height)
        committer = Committer(core, store, intake, watch, metrics, log)
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
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_keep_indexing, committer.store.index)
                await committer.run(config.heartbeat_ms)
        finally:
            with trio.CancelScope(shield=True):
                edge.draining()
                log("draining", height=committer.watch.head.height)
                await committer.drain()
                await trio.to_thread.run_sync(committer.store.index.flush)
    finally:
        committer.watch.close()
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(edge.stop, SHUTDOWN_GRACE_S)
            if httpd is not None:
                httpd.shutdown()
                httpd.server_close()
