"""The coordinator process: `serve(config)` runs the shell, its edge and its tasks.

`serve` has the hypercorn shape: it reports where it serves through
`task_status.started(Endpoints)` and stops when cancelled.
"""

from __future__ import annotations

import trio

from rollup_client.protocol.errors import FailedPrecondition
from rollup_client.protocol.genesis import SWAP_NAMESPACE, Genesis
from rollup_client.protocol.keys import SigningKey
from rollup_client.rpc import Endpoints, EventLog
from rollup_client.sdk import TrioSequencerClient
from swap_coordinator.config import Config
from swap_coordinator.core import Coordinator
from swap_coordinator.edge import Edge
from swap_coordinator.hops import Hops
from swap_coordinator.metrics import Metrics
from swap_coordinator.shell import DEFAULT_MAX_BATCH, Shell
from swap_coordinator.store import Store

SHUTDOWN_GRACE_S = 2.0


def _load(config: Config) -> tuple[Genesis, SigningKey]:
    genesis = Genesis.load(config.genesis)
    key = SigningKey.load(config.key)
    client = genesis.client(key.public)
    if client is None or not client.may_write(SWAP_NAMESPACE):
        raise FailedPrecondition(
            f"key {config.key} is not a genesis client allowed to write {SWAP_NAMESPACE!r}"
        )
    return genesis, key


async def serve(
    config: Config,
    *,
    task_status: trio.TaskStatus[Endpoints] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the coordinator until cancelled; `task_status.started(Endpoints)` once serving."""
    genesis, key = _load(config)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    log = EventLog(config.log_path)
    store = Store(config.db_path)
    link = TrioSequencerClient(
        config.sequencer,
        key,
        chain_id=genesis.chain_id,
        sequencer_key=genesis.sequencer_key,
        timeout=config.call_timeout_s,
        credentials=config.sequencer_tls.channel_credentials() if config.sequencer_tls else None,
    )
    try:
        core = Coordinator(genesis, store.checkpoint(genesis))
        for signed in store.proposals():
            core.add(signed)
        status = await link.status()
        shell = Shell(core, store, link, log, Metrics())
        shell.caught_up_at = status.height
        if status.limits.max_batch_entries:
            shell.max_batch = min(DEFAULT_MAX_BATCH, status.limits.max_batch_entries)
        await _run(config, shell, log, task_status)
    finally:
        link.close()
        store.close()
        log("stopped")
        log.close()


async def _run(
    config: Config,
    shell: Shell,
    log: EventLog,
    task_status: trio.TaskStatus[Endpoints],
) -> None:
    try:
        hops = Hops(shell, trio.lowlevel.current_trio_token())
        edge = Edge(hops, config.listen, config.workers, config.max_message_bytes, config.tls)
    except RuntimeError as exc:
        raise FailedPrecondition(f"cannot listen on {config.listen}: {exc}") from exc
    metrics_addr, httpd = "", None
    try:
        if config.metrics_listen:
            metrics_addr, httpd = shell.metrics.serve(config.metrics_listen)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(log.flusher)
            nursery.start_soon(shell.saver)
            nursery.start_soon(shell.follow)
            nursery.start_soon(shell.submit)
            edge.start()
            log(
                "ready",
                listen=edge.listen,
                metrics=metrics_addr,
                height=shell.core.height,
                proposals=len(shell.core.proposals),
            )
            log.flush()  # in the file before anyone hears the coordinator is ready
            task_status.started(Endpoints(edge.listen, metrics_addr))
    finally:
        shell.touched.close()
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(edge.stop, SHUTDOWN_GRACE_S)
            await shell.checkpoint()
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
