"""Block commits of the real store at a steady rate, with the sequencer's maintenance beside.

`bench.disk` times the disk alone. This times what a durable ack waits for inside
Tandem: `Store.write` of pre-cut blocks, paced, while `service.maintain` checkpoints the
block WAL and flushes and merges the id index exactly as in the server. Its tail, against
the disk's, is what maintenance I/O on the same disk adds to a block commit (large index
writes can queue commits behind them). No grpc, no clients: the CPU noise
of a shared machine moves it far less than the end-to-end half-load figure.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import trio

from rollup_client.protocol import codec
from rollup_client.protocol.keys import SigningKey
from sequencer import service
from sequencer.core import Batch, Block, Sequencer
from sequencer.store import Store

NAMESPACE = "bench"


def commit_latencies_ms(
    workdir: Path, seconds: float, per_second: float, entries: int, entry_bytes: int
) -> list[float]:
    """Latency of each `Store.write`, `per_second` blocks of `entries` for `seconds`."""
    path = workdir / "commit-probe"
    path.mkdir(parents=True)
    store = Store(path / "blocks.sqlite")
    try:
        key = SigningKey.generate()
        core = Sequencer(key, store.recover(key.public), max(entries, 1))
        blocks = [
            core.cut([_batch(entries, entry_bytes)], 1000 + h, {}).block
            for h in range(max(1, int(seconds * per_second)))
        ]
        return trio.run(_timed, store, blocks, per_second)
    finally:
        store.close()
        shutil.rmtree(path)


def _batch(entries: int, entry_bytes: int) -> Batch:
    datas = [os.urandom(entry_bytes) for _ in range(entries)]
    return Batch([NAMESPACE] * entries, datas, [codec.entry_id(NAMESPACE, d) for d in datas])


async def _timed(store: Store, blocks: Sequence[Block], per_second: float) -> list[float]:
    threads = trio.CapacityLimiter(service.SHELL_THREADS)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(service.maintain, store, threads)
        out = await trio.to_thread.run_sync(_write_paced, store, blocks, per_second)
        nursery.cancel_scope.cancel()
    return out


def _write_paced(store: Store, blocks: Sequence[Block], per_second: float) -> list[float]:
    out: list[float] = []
    start = time.perf_counter()
    for i, blk in enumerate(blocks):
        delay = start + i / per_second - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        t = time.perf_counter()
        store.write(blk)
        out.append((time.perf_counter() - t) * 1000.0)
    return out
