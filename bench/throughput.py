"""`tandem bench sequencer`: acknowledged entries per second, Tandem against its peers.

Every system gets the same load in the same run: M worker processes, each sending
batches of B entries of 200 bytes and waiting for each batch's durable ack, for T
seconds after a warm-up. The rate per system is the median over the runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.floors import beyond_reach, transport_ceilings
from bench.loadgen import Load, LoadResult, run_load
from bench.procs import peak_rss_bytes
from bench.profile import note, sampling
from bench.report import Chart, Report, machine, now_utc
from bench.stats import latency_summary, median, ratio
from bench.systems import Unavailable, durability, measure

SYSTEMS = ("tandem", "grpc_echo", "redis_streams", "nats_jetstream")
PEER_RATIOS = {
    "grpc_echo": "vs_grpc_echo",
    "redis_streams": "vs_redis_streams",
    "nats_jetstream": "vs_nats_jetstream",
}
MB = 1024 * 1024
TARGETS = {"vs_grpc_echo": 0.5, "vs_redis_streams": 2.0, "vs_nats_jetstream": 5.0}


@dataclass(frozen=True)
class Params:
    workers: int = 4
    batch: int = 100
    entry_bytes: int = 200
    duration_s: float = 10.0
    warmup_s: float = 1.0
    runs: int = 3
    # Sample the sequencer with py-spy during Tandem's first run.
    profile: bool = False

    @classmethod
    def quick(cls) -> Params:
        return cls(duration_s=1.0, warmup_s=0.2, runs=1, workers=2)


@dataclass
class Measured:
    results: list[LoadResult]
    peak_rss_bytes: int
    profile: dict[str, Any] | None = None


def summarise(name: str, outcome: Measured | Unavailable) -> dict[str, Any]:
    """One system's row of the JSON: median rate over runs, batch latency, errors, memory."""
    if isinstance(outcome, Unavailable):
        return {**outcome.row(), "durability": durability(name)}
    results = outcome.results
    rates = [r.entries_per_s for r in results]
    errors = [r.first_error for r in results if r.first_error]
    return {
        "available": True,
        "durability": durability(name),
        "entries_per_s": median(rates),
        "runs_entries_per_s": rates,
        "errors": sum(r.errors for r in results),
        "first_error": errors[0] if errors else None,
        "batch_latency": latency_summary([x for r in results for x in r.latencies_ms]),
        "server_peak_rss_mb": outcome.peak_rss_bytes / MB,
        **({"profile": outcome.profile} if outcome.profile is not None else {}),
    }


def run(params: Params, workdir: Path, systems: tuple[str, ...] = SYSTEMS) -> Report:
    """Measure every system in turn with the same load shape."""
    started, host = now_utc(), machine(workdir)

    def session(name: str) -> Callable[[dict[str, Any], Path], Measured]:
        def go(target: dict[str, Any], logs: Path) -> Measured:
            load = Load(
                driver=name,
                target=target,
                workers=params.workers,
                batch=params.batch,
                duration_s=params.duration_s,
                warmup_s=params.warmup_s,
                entry_bytes=params.entry_bytes,
            )
            profile = None
            results = []
            for i in range(params.runs):
                if i == 0 and params.profile and name == "tandem":
                    window = params.warmup_s + params.duration_s + 30
                    stacks = logs.parent / "sequencer.collapsed.txt"
                    shown = f"logs/sequencer/{name}/{stacks.name}"
                    with sampling(target["pid"], window, stacks, shown) as profile:
                        results.append(run_load(load, logs))
                else:
                    results.append(run_load(load, logs))
            return Measured(results, peak_rss_bytes(target["pid"]), profile)

        return go

    rows = {name: summarise(name, measure(name, workdir, session(name))) for name in systems}
    tandem_rate = rows.get("tandem", {}).get("entries_per_s")
    ratios = {
        key: ratio(tandem_rate, rows.get(peer, {}).get("entries_per_s"))
        for peer, key in PEER_RATIOS.items()
    }
    ceilings = transport_ceilings(
        {name: row.get("entries_per_s") for name, row in rows.items()}, PEER_RATIOS
    )
    doc = {
        "benchmark": "sequencer",
        "started_at": started,
        "machine": host,
        "params": asdict(params),
        "entries_per_s": tandem_rate,
        "systems": rows,
        "ratios": ratios,
        "targets": TARGETS,
        "transport_ceilings": ceilings,
    }
    table = [
        {
            "system": name,
            "entries/s": row.get("entries_per_s"),
            "ratio Tandem/peer": ratio(tandem_rate, row.get("entries_per_s")),
            "batch p50 ms": row.get("batch_latency", {}).get("p50_ms"),
            "batch p99 ms": row.get("batch_latency", {}).get("p99_ms"),
            "errors": row.get("errors"),
            "server peak RSS MB": row.get("server_peak_rss_mb"),
            "durability": row["durability"],
            "note": row.get("reason", ""),
        }
        for name, row in rows.items()
    ]
    charts = [
        Chart(
            "Acknowledged entries per second",
            "entries/s",
            {"entries/s": {n: r.get("entries_per_s") for n, r in rows.items()}},
        ),
        Chart(
            "Batch latency",
            "ms",
            {
                q: {n: r.get("batch_latency", {}).get(f"{q}_ms") for n, r in rows.items()}
                for q in ("p50", "p99")
            },
            log_scale=True,
        ),
    ]
    known = ", ".join(f"{k} {v:.2f}" for k, v in ceilings.items() if v is not None)
    notes = [f"targets: {', '.join(f'{k} >= {v}' for k, v in TARGETS.items())}"]
    if known:
        notes.append(f"transport ceilings (the bare echo's rate over each peer's): {known}")
    notes += beyond_reach(TARGETS, ceilings, at_most=False)
    notes += note("sequencer", rows.get("tandem", {}).get("profile") or {})
    return Report("sequencer", doc, table, charts, notes, problems(rows.get("tandem")))


def problems(row: dict[str, Any] | None) -> list[str]:
    """Why Tandem's row cannot be trusted: missing, or some batches failed."""
    if row is None:
        return []
    if not row["available"]:
        return [f"tandem was not measured: {row['reason']}"]
    if row["errors"]:
        return [f"tandem: {row['errors']} failed batches, first: {row['first_error']}"]
    return []
