"""`tandem bench recovery`: how fast a sequencer holding N entries is back, and its RSS;
how fast a rollup node is back from its snapshot, against a full replay.

The store is filled through the real submit path (M workers, batches of B). The filling
server is then killed with SIGKILL, so the first restart is a crash recovery: it verifies
the head and rebuilds the entry ids not yet flushed to the id index from the blocks. The
later restarts follow a SIGTERM, which flushes the index on the way down. Restart time
runs from spawning the process to its ready line (SERVING), and RSS is read from /proc
right after.
"""

from __future__ import annotations

import os
import signal
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import rollup_recovery
from bench.loadgen import Load, run_load
from bench.peers import tandem
from bench.procs import rss_bytes, running
from bench.report import Cell, Chart, Report, machine, now_utc
from bench.stats import median

TARGETS = {
    "sequencer_restart_s": 2.0,
    "sequencer_crash_restart_s": 2.0,
    "rss_mb_after_restart": 200.0,
}
MIN_FILL_RATE = 2_000
MB = 1024 * 1024


@dataclass(frozen=True)
class Params:
    entries: int = 1_000_000
    workers: int = 4
    batch: int = 500
    entry_bytes: int = 200
    restarts: int = 3
    rollup_transfers: int = 50_000
    snapshot_interval: int = 100

    @classmethod
    def quick(cls) -> Params:
        return cls(
            entries=10_000, restarts=1, workers=2, rollup_transfers=2_000, snapshot_interval=20
        )


def run(params: Params, workdir: Path) -> Report:
    started, host = now_utc(), machine(workdir)
    data_dir = workdir / "tandem"
    identity = tandem.init(data_dir)
    with running(tandem.server(data_dir, workdir / "tandem.log")) as seq:
        assert seq.ready_match is not None
        fill = Load(
            driver="tandem",
            target=tandem.target(seq.ready_match, identity),
            workers=params.workers,
            batch=params.batch,
            duration_s=params.entries / MIN_FILL_RATE + 60,
            warmup_s=0.0,
            entry_bytes=params.entry_bytes,
            max_entries=params.entries,
        )
        filled = run_load(fill, workdir / "workers")
        os.killpg(seq.pid, signal.SIGKILL)
    crash_s: list[float] = []
    restart_s: list[float] = []
    rss_mb: list[float] = []
    height = 0
    for i in range(params.restarts + 1):
        with running(tandem.server(data_dir, workdir / "tandem.log"), timeout_s=120) as seq:
            (crash_s if i == 0 else restart_s).append(seq.ready_at - seq.started_at)
            rss_mb.append(rss_bytes(seq.pid) / MB)
            assert seq.ready_match is not None
            with tandem.open_client(tandem.target(seq.ready_match, identity)) as client:
                height = client.status().height
    rollup = rollup_recovery.measure(workdir, params.rollup_transfers, params.snapshot_interval)
    store_mb = sum(p.stat().st_size for p in data_dir.glob("blocks.sqlite*")) / MB
    doc = {
        "benchmark": "recovery",
        "started_at": started,
        "machine": host,
        "params": asdict(params),
        "entries_stored": filled.entries,
        "fill_entries_per_s": filled.entries_per_s,
        "fill_errors": filled.errors,
        "store_mb": store_mb,
        "height": height,
        "sequencer_restart_s": median(restart_s),
        "runs_sequencer_restart_s": restart_s,
        "sequencer_crash_restart_s": crash_s[0],
        "rss_mb_after_restart": median(rss_mb),
        "rollup": rollup.doc(),
        "targets": TARGETS,
    }
    rows: list[dict[str, Cell]] = [
        {
            "what": f"sequencer restart (median of {len(restart_s)})",
            "stored": f"{filled.entries:,} entries, {store_mb:.0f} MB",
            "blocks": height + 1,
            "back in s": median(restart_s),
            "RSS MB after": median(rss_mb),
        },
        {
            "what": "sequencer restart after SIGKILL (ids rebuilt from blocks)",
            "stored": f"{filled.entries:,} entries, {store_mb:.0f} MB",
            "blocks": height + 1,
            "back in s": crash_s[0],
            "RSS MB after": rss_mb[0],
        },
        {
            "what": "rollup node restart from its snapshot",
            "stored": f"{rollup.transfers:,} transfers",
            "blocks": rollup.height + 1,
            "back in s": rollup.restart_s,
        },
        {
            "what": "rollup fresh replica, full replay",
            "stored": f"{rollup.transfers:,} transfers",
            "blocks": rollup.height + 1,
            "back in s": rollup.replay_s,
        },
    ]
    charts = [
        Chart(
            f"Sequencer restart with {filled.entries:,} entries",
            "seconds",
            {
                "after SIGKILL": {"restart": crash_s[0]},
                **{f"run {i + 1}": {"restart": s} for i, s in enumerate(restart_s)},
            },
        ),
        Chart(
            f"Rollup node back at height {rollup.height} ({rollup.transfers:,} transfers)",
            "seconds",
            {
                "restart": {"from snapshot": rollup.restart_s},
                "fresh replica": {"full replay": rollup.replay_s},
            },
        ),
    ]
    notes = [f"targets: {', '.join(f'{k} <= {v}' for k, v in TARGETS.items())}"]
    problems = [f"{filled.errors} batches failed while filling"] if filled.errors else []
    return Report("recovery", doc, rows, charts, notes, problems)
