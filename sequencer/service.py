"""The trio shell: owns the core and the store, runs the commit engine, serves gRPC.

`serve(config)` has the hypercorn shape: it reports where it serves through
`task_status.started(Endpoints)` and shuts down gracefully when cancelled (health goes
NOT_SERVING, new submits get UNAVAILABLE, queued batches are still sealed and
acknowledged, then the server and the store close).
"""

from __future__ import annotations

import trio

from rollup_client.protocol.errors import FailedPrecondition
from rollup_client.protocol.genesis import Genesis
from rollup_client.protocol.keys import SigningKey
from rollup_client.rpc import Endpoints, EventLog
from sequencer.commit import Committer, wall_ms
from sequencer.config import Config
from sequencer.core import Sequencer
from sequencer.edge import Edge
from sequencer.handlers import Handlers
from sequencer.headwatch import HeadWatch
from sequencer.intake import Intake
from sequencer.metrics import Metrics
from sequencer.store import Store

SHUTDOWN_GRACE_S = 2.0
# Worker threads of the shell (cutter, writer, maintenance), never shared with whatever
# else runs in the same trio run: a caller's blocked threads must not starve the commit.
SHELL_THREADS = 4
# How often the store checkpoints its WAL and the id index checks whether it is due:
# often, so each pass writes little and a block commit never queues behind a large write
# on the same disk.
MAINTENANCE_S = 0.1
# The pause between passes while index upkeep is behind: each pass moves one merge step
# (idindex.MERGE_STEP_IDS), and a sustained ingest needs several rewrites per id, so the
# passes come this often until the index has caught up.
CATCH_UP_S = 0.025


async def maintain(store: Store, threads: trio.CapacityLimiter) -> None:
    """Off the ack path: checkpoint the block WAL, move sealed ids into the id index.

    While the index has more upkeep due after a pass (merges behind a sustained load need
    several rewrites per id), the next pass comes sooner: one small step at a time, but
    enough of them that the number of runs stays bounded."""
    wait = MAINTENANCE_S
    while True:
        await trio.sleep(wait)
        await trio.to_thread.run_sync(store.checkpoint, limiter=threads)
        wait = MAINTENANCE_S
        if store.index.due():
            await trio.to_thread.run_sync(store.index.flush, limiter=threads)
            if store.index.due():
                wait = CATCH_UP_S


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
    task_status: trio.TaskStatus[Endpoints] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the sequencer until cancelled; `task_status.started(Endpoints)` once SERVING."""
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
        handlers = Handlers(config, genesis, intake, committer.drive, reader, watch, metrics)
        await _run(config, handlers, committer, log, task_status)
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
    task_status: trio.TaskStatus[Endpoints],
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
        task_status.started(Endpoints(edge.listen, metrics_addr))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(maintain, committer.store, committer.threads)
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
