"""`tandem bench recovery`: how fast a sequencer holding N entries is back, and its RSS.

The store is filled through the real submit path (M workers, batches of B), the server
is stopped with SIGTERM and started again; restart time runs from spawning the process
to its ready line (SERVING), and RSS is read from /proc right after.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from bench.loadgen import Load, run_load
from bench.peers import tandem
from bench.procs import rss_bytes, running
from bench.report import Cell, Chart, Report, machine, now_utc
from bench.stats import median

TARGETS = {"sequencer_restart_s": 2.0, "rss_mb_after_restart": 200.0}
MIN_FILL_RATE = 2_000
MB = 1024 * 1024


@dataclass(frozen=True)
class Params:
    entries: int = 1_000_000
    workers: int = 4
    batch: int = 500
    entry_bytes: int = 200
    restarts: int = 3

    @classmethod
    def quick(cls) -> Params:
        return cls(entries=10_000, restarts=1, workers=2)


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
    restart_s: list[float] = []
    rss_mb: list[float] = []
    height = 0
    for _ in range(params.restarts):
        with running(tandem.server(data_dir, workdir / "tandem.log"), timeout_s=120) as seq:
            restart_s.append(seq.ready_at - seq.started_at)
            rss_mb.append(rss_bytes(seq.pid) / MB)
            assert seq.ready_match is not None
            with tandem.open_client(tandem.target(seq.ready_match, identity)) as client:
                height = client.status().height
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
        "rss_mb_after_restart": median(rss_mb),
        "targets": TARGETS,
    }
    rows: list[dict[str, Cell]] = [
        {
            "entries stored": filled.entries,
            "store MB": store_mb,
            "blocks": height + 1,
            "restart s (median)": median(restart_s),
            "RSS MB after restart": median(rss_mb),
        }
    ]
    charts = [
        Chart(
            f"Sequencer restart with {filled.entries:,} entries",
            "seconds",
            {f"run {i + 1}": {"restart": s} for i, s in enumerate(restart_s)},
        )
    ]
    notes = [f"targets: {', '.join(f'{k} <= {v}' for k, v in TARGETS.items())}"]
    problems = [f"{filled.errors} batches failed while filling"] if filled.errors else []
    return Report("recovery", doc, rows, charts, notes, problems)
