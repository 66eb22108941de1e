"""`tandem bench NAME [--quick] [--json PATH]`: run benchmarks, write results, print a table.

Also runnable as `python -m bench`. Each benchmark starts its own servers on loopback in
a temporary directory and stops them before returning. Results (NAME.json, NAME.md,
NAME.png) go to --out; --json writes the JSON document to a file too ('-' = stdout, and
then the table is not printed). Progress goes to stderr. Exit 1 when Tandem's own
figures are missing or some of its requests failed.
"""

from __future__ import annotations

import json
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.console import Console

from bench import latency as latency_bench
from bench import recovery as recovery_bench
from bench import state as state_bench
from bench import swaps as swaps_bench
from bench import throughput
from bench.report import Report, markdown, write

app = typer.Typer(
    name="bench",
    help="Benchmarks: Tandem against the transport ceiling and its peers.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True)

Job = Callable[[Path], Report | list[Report]]
Quick = Annotated[bool, typer.Option("--quick", help="Small and fast: every benchmark in seconds")]
JsonPath = Annotated[
    Path | None, typer.Option("--json", help="Also write the JSON document here ('-' = stdout)")
]
OutDir = Annotated[Path, typer.Option("--out", envvar="TANDEM_BENCH_OUT", help="Results directory")]
WorkDir = Annotated[
    Path | None,
    typer.Option(
        "--workdir",
        envvar="TANDEM_BENCH_WORKDIR",
        help="Where the servers' data lives during a run (default: the system temp dir)",
    ),
]
DEFAULT_OUT = Path("results/bench")


def _override(params: Any, **values: Any) -> Any:
    return replace(params, **{k: v for k, v in values.items() if v is not None})


def _terminated(signum: int, frame: FrameType | None) -> None:
    """SIGTERM unwinds like Ctrl-C, so every server and worker is stopped on the way out."""
    raise SystemExit(128 + signum)


def _execute(
    jobs: list[tuple[str, Job]], out: Path, json_path: Path | None, workdir: Path | None
) -> None:
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        reports = _run(jobs, out, workdir)
    finally:
        signal.signal(signal.SIGTERM, previous)
    _publish(reports, out, json_path)


def _run(jobs: list[tuple[str, Job]], out: Path, workdir: Path | None) -> list[Report]:
    """Each job in turn in its own temporary directory; its reports written to `out`."""
    reports: list[Report] = []
    for name, job in jobs:
        console.log(f"[bold]bench {name}[/bold]: starting")
        t0 = time.monotonic()
        logs = out / "logs" / name
        shutil.rmtree(logs, ignore_errors=True)
        with tempfile.TemporaryDirectory(prefix=f"tandem-bench-{name}-", dir=workdir) as tmp:
            try:
                made = job(Path(tmp))
            except Exception as exc:
                # One broken benchmark must not cost the others their figures.
                console.print_exception()
                failure = f"failed: {type(exc).__name__}: {str(exc).strip()[:500]}"
                made = Report(name, {"benchmark": name, "error": failure}, problems=[failure])
            finally:
                if _keep_logs(Path(tmp), logs):
                    console.log(f"server and worker logs of {name} in {logs}")
        for report in made if isinstance(made, list) else [made]:
            report.doc["elapsed_s"] = round(time.monotonic() - t0, 2)
            for path in write(report, out):
                console.log(f"wrote {path}")
            reports.append(report)
    return reports


def _publish(reports: list[Report], out: Path, json_path: Path | None) -> None:
    """The combined files, the JSON or table on stdout, and the exit code."""
    doc: dict[str, Any] = reports[0].doc
    if len(reports) > 1:
        doc = {r.name: r.doc for r in reports}
        (out / "all.json").write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        (out / "all.md").write_text("\n".join(markdown(r) for r in reports))
    if json_path is not None and str(json_path) == "-":
        typer.echo(json.dumps(doc, indent=2, sort_keys=True))
    else:
        if json_path is not None:
            json_path.parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        typer.echo("\n".join(markdown(r) for r in reports))
    problems = [f"{r.name}: {p}" for r in reports for p in r.problems]
    for p in problems:
        console.print(f"[red]problem[/red] {p}")
    if problems:
        raise typer.Exit(1)


def _keep_logs(workdir: Path, dest: Path) -> int:
    """Copy the run's logs and profiles out of the temporary directory before it goes."""
    logs = [*workdir.rglob("*.log"), *workdir.rglob("*.collapsed.txt")]
    for log in logs:
        target = dest / log.relative_to(workdir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(log, target)
    return len(logs)


def _sequencer_job(quick: bool, **overrides: Any) -> Job:
    params = _override(throughput.Params.quick() if quick else throughput.Params(), **overrides)
    return lambda wd: throughput.run(params, wd)


def _latency_job(quick: bool, **overrides: Any) -> Job:
    base = latency_bench.Params.quick() if quick else latency_bench.Params()
    params = _override(base, **overrides)
    return lambda wd: latency_bench.run(params, wd)


def _recovery_job(quick: bool, **overrides: Any) -> Job:
    base = recovery_bench.Params.quick() if quick else recovery_bench.Params()
    params = _override(base, **overrides)
    return lambda wd: recovery_bench.run(params, wd)


def _state_job(quick: bool, **overrides: Any) -> Job:
    params = _override(state_bench.Params.quick() if quick else state_bench.Params(), **overrides)
    return lambda wd: state_bench.run(params, wd)


def _swaps_job(quick: bool, **overrides: Any) -> Job:
    params = _override(swaps_bench.Params.quick() if quick else swaps_bench.Params(), **overrides)
    return lambda wd: swaps_bench.run(params, wd)


@app.command()
def sequencer(
    quick: Quick = False,
    json_path: JsonPath = None,
    out: OutDir = DEFAULT_OUT,
    workdir: WorkDir = None,
    workers: Annotated[int | None, typer.Option(help="Submitter processes (M)")] = None,
    batch: Annotated[int | None, typer.Option(help="Entries per batch (B)")] = None,
    seconds: Annotated[float | None, typer.Option(help="Timed window per run (T)")] = None,
    runs: Annotated[int | None, typer.Option(help="Runs per system; the median counts")] = None,
    profile: Annotated[
        bool, typer.Option("--profile", help="Sample the sequencer with py-spy (first run)")
    ] = False,
) -> None:
    """Acknowledged entries/s: Tandem, bare grpc echo, Redis Streams, NATS JetStream."""
    job = _sequencer_job(
        quick, workers=workers, batch=batch, duration_s=seconds, runs=runs, profile=profile
    )
    _execute([("sequencer", job)], out, json_path, workdir)


@app.command()
def latency(
    quick: Quick = False,
    json_path: JsonPath = None,
    out: OutDir = DEFAULT_OUT,
    workdir: WorkDir = None,
    seconds: Annotated[float | None, typer.Option(help="Timed window per load")] = None,
    profile: Annotated[
        bool, typer.Option("--profile", help="Sample the sequencer with py-spy (both loads)")
    ] = False,
) -> None:
    """Submit-to-durable-ack latency at light and half load, against the bare echo."""
    job = _latency_job(quick, duration_s=seconds, profile=profile)
    _execute([("latency", job)], out, json_path, workdir)


@app.command()
def recovery(
    quick: Quick = False,
    json_path: JsonPath = None,
    out: OutDir = DEFAULT_OUT,
    workdir: WorkDir = None,
    entries: Annotated[int | None, typer.Option(help="Entries stored before restarting")] = None,
) -> None:
    """Sequencer restart time and RSS with N entries stored."""
    job = _recovery_job(quick, entries=entries)
    _execute([("recovery", job)], out, json_path, workdir)


@app.command()
def state(
    quick: Quick = False,
    json_path: JsonPath = None,
    out: OutDir = DEFAULT_OUT,
    workdir: WorkDir = None,
    touched: Annotated[int | None, typer.Option(help="Accounts changed per block")] = None,
) -> None:
    """State-root update time per block as accounts grow, touched keys fixed."""
    _execute([("state", _state_job(quick, touched=touched))], out, json_path, workdir)


@app.command()
def swaps(
    quick: Quick = False,
    json_path: JsonPath = None,
    out: OutDir = DEFAULT_OUT,
    workdir: WorkDir = None,
    seconds: Annotated[float | None, typer.Option(help="Timed window per load")] = None,
    inflight: Annotated[int | None, typer.Option(help="Swaps in flight per worker")] = None,
    profile: Annotated[
        bool, typer.Option("--profile", help="Sample every testnet process with py-spy (loaded)")
    ] = False,
) -> None:
    """Committed swaps/s and latency against an HTLC baseline; also writes `memory`."""
    job = _swaps_job(quick, duration_s=seconds, inflight=inflight, profile=profile)
    _execute([("swaps", job)], out, json_path, workdir)


@app.command()
def memory(
    quick: Quick = False,
    json_path: JsonPath = None,
    out: OutDir = DEFAULT_OUT,
    workdir: WorkDir = None,
) -> None:
    """Peak RSS of every testnet process under the swap load (runs the swaps benchmark)."""
    _execute([("swaps", _swaps_job(quick))], out, json_path, workdir)


@app.command("all")
def all_(
    quick: Quick = False,
    json_path: JsonPath = None,
    out: OutDir = DEFAULT_OUT,
    workdir: WorkDir = None,
) -> None:
    """Every benchmark in turn (with --quick: all of them in about a minute)."""
    jobs = [
        ("sequencer", _sequencer_job(quick)),
        ("latency", _latency_job(quick)),
        ("recovery", _recovery_job(quick)),
        ("state", _state_job(quick)),
        ("swaps", _swaps_job(quick)),
    ]
    _execute(jobs, out, json_path, workdir)
