"""`tandem bench latency`: submit to durable acknowledgement, Tandem and the bare echo.

Light load: one client, one entry at a time (Submit), for T seconds; the grpc echo is
measured the same way in the same run. Half load: M workers paced at half the rate the
same workers reach flat out, with batches of B, taking turns so the batches arrive
evenly; latency counts from each batch's scheduled send time. During the half load a
subscriber follows the namespace and records each block's delivery lag (arrival minus
the block's log time). First, the disk alone is timed (`bench.disk`): its fdatasync tail
is a floor under any durable ack's; then the store's block commits with maintenance
running beside them (`bench.commits`): what index and checkpoint I/O add to that floor.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.commits import commit_latencies_ms
from bench.disk import WRITE_BYTES, fsync_latencies_ms
from bench.floors import beyond_reach, light_floor, measure_ack_costs
from bench.loadgen import Load, LoadResult, run_load
from bench.peers import tandem
from bench.profile import note, sampling
from bench.report import Chart, Report, machine, now_utc
from bench.stats import latency_summary, ratio
from bench.systems import Unavailable, measure

TARGETS = {"light_p50_vs_grpc_echo": 1.5, "light_p99_vs_grpc_echo": 2.0, "half_load_p99_ms": 20.0}


@dataclass(frozen=True)
class Params:
    duration_s: float = 10.0
    warmup_s: float = 1.0
    saturation_s: float = 5.0
    workers: int = 4
    batch: int = 100
    entry_bytes: int = 200
    # The disk probe: paced write+fdatasync pairs, about a half-load run's block rate.
    disk_s: float = 5.0
    disk_per_s: float = 100.0
    # Block commits of the store with maintenance running: a half-load run's block rate.
    commits_s: float = 10.0
    commits_per_s: float = 150.0
    # The steps a signed, durable ack adds to the echo's round trip, each timed alone.
    floor_rounds: int = 2000
    floor_fsync_s: float = 2.0
    # Sample the sequencer with py-spy during the light and the half-load runs.
    profile: bool = False

    @classmethod
    def quick(cls) -> Params:
        return cls(
            duration_s=1.0,
            warmup_s=0.2,
            saturation_s=0.5,
            workers=2,
            disk_s=0.3,
            commits_s=0.3,
            floor_rounds=100,
            floor_fsync_s=0.2,
        )


@dataclass
class Sessions:
    light: LoadResult
    saturated: LoadResult | None = None
    half: LoadResult | None = None
    lag_ms: list[float] | None = None
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)


def light_load(name: str, target: dict[str, Any], params: Params) -> Load:
    return Load(
        driver=name,
        target=target,
        workers=1,
        batch=1,
        single=True,
        duration_s=params.duration_s,
        warmup_s=params.warmup_s,
        entry_bytes=params.entry_bytes,
    )


def light_only(name: str, params: Params) -> Callable[[dict[str, Any], Path], Sessions]:
    def go(target: dict[str, Any], logs: Path) -> Sessions:
        return Sessions(run_load(light_load(name, target, params), logs))

    return go


def light_and_half(params: Params) -> Callable[[dict[str, Any], Path], Sessions]:
    """Tandem: light load, then flat out to find the maximum, then half of it, paced."""

    def go(target: dict[str, Any], logs: Path) -> Sessions:
        def sampled(label: str) -> contextlib.AbstractContextManager[dict[str, Any]]:
            if not params.profile:
                return contextlib.nullcontext({})
            stacks = logs.parent / f"{label}.collapsed.txt"
            window = params.warmup_s + params.duration_s + 30
            return sampling(target["pid"], window, stacks, f"logs/latency/tandem/{stacks.name}")

        with sampled("light") as light_profile:
            light = run_load(light_load("tandem", target, params), logs)
        flat_out = replace(
            light_load("tandem", target, params),
            workers=params.workers,
            batch=params.batch,
            single=False,
            duration_s=params.saturation_s,
        )
        saturated = run_load(flat_out, logs)
        paced = replace(
            flat_out,
            duration_s=params.duration_s,
            rate_entries_per_s=saturated.entries_per_s / 2,
        )
        with tandem.LagProbe(target) as probe, sampled("half_load") as half_profile:
            half = run_load(paced, logs)
        profiles = {"light": light_profile, "half_load": half_profile} if params.profile else {}
        return Sessions(light, saturated, half, probe.lags_ms, profiles)

    return go


def _light_row(outcome: Sessions | Unavailable) -> dict[str, Any]:
    if isinstance(outcome, Unavailable):
        return outcome.row()
    return {
        "available": True,
        "errors": outcome.light.errors,
        "first_error": outcome.light.first_error,
        **latency_summary(outcome.light.latencies_ms),
    }


def _half_row(outcome: Sessions | Unavailable) -> dict[str, Any]:
    if isinstance(outcome, Unavailable) or outcome.half is None or outcome.saturated is None:
        return {"available": False}
    return {
        "available": True,
        "max_entries_per_s": outcome.saturated.entries_per_s,
        "target_entries_per_s": outcome.saturated.entries_per_s / 2,
        "entries_per_s": outcome.half.entries_per_s,
        "errors": outcome.half.errors,
        **latency_summary(outcome.half.latencies_ms),
        "subscription_lag": latency_summary(outcome.lag_ms or []),
    }


def run(params: Params, workdir: Path) -> Report:
    started, host = now_utc(), machine(workdir)
    disk = latency_summary(fsync_latencies_ms(workdir, params.disk_s, params.disk_per_s))
    commits = latency_summary(
        commit_latencies_ms(
            workdir, params.commits_s, params.commits_per_s, params.batch, params.entry_bytes
        )
    )
    costs = measure_ack_costs(workdir, params.floor_rounds, params.floor_fsync_s)
    tandem = measure("tandem", workdir, light_and_half(params))
    echo = measure("grpc_echo", workdir, light_only("grpc_echo", params))
    light, echo_light, half = _light_row(tandem), _light_row(echo), _half_row(tandem)
    ratios = {
        "light_p50_vs_grpc_echo": ratio(light.get("p50_ms"), echo_light.get("p50_ms")),
        "light_p99_vs_grpc_echo": ratio(light.get("p99_ms"), echo_light.get("p99_ms")),
    }
    floor = light_floor(echo_light.get("p50_ms"), costs)
    profiles = tandem.profiles if isinstance(tandem, Sessions) else {}
    doc = {
        "benchmark": "latency",
        "started_at": started,
        "machine": host,
        "params": asdict(params),
        "light": light,
        "grpc_echo_light": echo_light,
        "half_load": half,
        "disk_fsync": disk,
        "store_commit_with_maintenance": commits,
        "light_floor": floor,
        **({"profiles": profiles} if profiles else {}),
        "ratios": ratios,
        "targets": TARGETS,
    }
    rows = [
        {"load": "light (1 entry at a time)", "system": "tandem", **_cells(light)},
        {"load": "light (1 entry at a time)", "system": "grpc_echo", **_cells(echo_light)},
        {"load": "half of max, batches", "system": "tandem", **_cells(half)},
        {
            "load": "half of max: subscription lag",
            "system": "tandem",
            **_cells(half.get("subscription_lag", {})),
        },
        {"load": f"disk alone: {WRITE_BYTES:,} B write + fdatasync", "system": "", **_cells(disk)},
        {
            "load": f"block commits, {params.commits_per_s:.0f}/s of {params.batch}, "
            "maintenance running",
            "system": "tandem store",
            **_cells(commits),
        },
    ]
    charts = [
        Chart(
            "Light load: submit to durable ack",
            "ms",
            {
                q: {"tandem": light.get(f"{q}_ms"), "grpc_echo": echo_light.get(f"{q}_ms")}
                for q in ("p50", "p99", "p999")
            },
            log_scale=True,
        ),
        Chart(
            "Half load (Tandem)",
            "ms",
            {
                q: {
                    "batch submit to ack": half.get(f"{q}_ms"),
                    "subscription lag": half.get("subscription_lag", {}).get(f"{q}_ms"),
                }
                for q in ("p50", "p99", "p999")
            },
        ),
    ]
    notes = [
        f"half load: {half.get('target_entries_per_s') or 0:,.0f} entries/s asked, "
        f"{half.get('entries_per_s') or 0:,.0f} achieved",
        f"targets: {', '.join(f'{k} <= {v}' for k, v in TARGETS.items())}",
        "every durable ack waits for at least one fdatasync: the disk's own tail is a floor "
        "under Tandem's p99",
        f"light p50 floor {floor['p50_ms'] or 0:.3f} ms: the echo's p50 plus client sign "
        f"{costs.client_sign_ms:.3f}, verify {costs.verify_ms:.3f}, header sign "
        f"{costs.header_sign_ms:.3f} and a page's fdatasync {costs.fsync_ms:.3f} ms (medians)",
        *beyond_reach(
            {"light_p50_vs_grpc_echo": TARGETS["light_p50_vs_grpc_echo"]},
            {"light_p50_vs_grpc_echo": floor["p50_vs_grpc_echo"]},
            at_most=True,
        ),
        *[line for k, v in profiles.items() for line in note(f"sequencer ({k})", v)],
    ]
    problems = [
        f"{what}: {row.get('reason') or row.get('first_error') or 'not measured'}"
        for what, row in (("tandem light load", light), ("tandem half load", half))
        if not row["available"] or row.get("errors")
    ]
    return Report("latency", doc, rows, charts, notes, problems)


def _cells(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "p50 ms": row.get("p50_ms"),
        "p99 ms": row.get("p99_ms"),
        "p99.9 ms": row.get("p999_ms"),
        "samples": row.get("samples"),
        "note": row.get("reason", ""),
    }
