"""Load generation: M worker processes, one load shape, counts and latency samples back.

Each worker is `python -m bench.worker`, a separate process so the clients do not share a
GIL with each other or with the harness. The parent hands each one its spec on stdin,
waits until every worker has connected, starts them together and collects one JSON
result line from each. Workers are killed on any failure or timeout.
"""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from bench.procs import end_group


class LoadFailed(Exception):
    """A worker could not connect, crashed, or did not finish in time."""


@dataclass(frozen=True)
class Load:
    """The load shape every system in one benchmark gets.

    Closed loop (each worker sends a batch and waits for its durable ack) unless
    `rate_entries_per_s` paces the workers; then latency counts from each batch's
    scheduled send time, so a slow server cannot hide queueing (no coordinated omission).
    `max_entries` (total) ends the run early once that many entries are acknowledged.
    """

    driver: str
    target: dict[str, Any]
    workers: int
    batch: int
    duration_s: float
    warmup_s: float
    entry_bytes: int = 200
    single: bool = False
    rate_entries_per_s: float | None = None
    max_entries: int | None = None

    def worker_spec(self, index: int) -> dict[str, Any]:
        spec = asdict(self)
        spec["worker"] = index
        if self.rate_entries_per_s is not None:
            spec["rate_entries_per_s"] = self.rate_entries_per_s / self.workers
        if self.max_entries is not None:
            spec["max_entries"] = -(-self.max_entries // self.workers)
        return spec


@dataclass
class LoadResult:
    """Everything the workers measured in their timed window, merged."""

    entries: int
    batches: int
    errors: int
    entries_per_s: float
    latencies_ms: list[float] = field(repr=False)
    first_error: str | None = None


def merge(results: list[dict[str, Any]]) -> LoadResult:
    """Sum the workers' counts; the rate is the sum of each worker's own rate."""
    errors = [r["first_error"] for r in results if r.get("first_error")]
    return LoadResult(
        entries=sum(r["entries"] for r in results),
        batches=sum(r["batches"] for r in results),
        errors=sum(r["errors"] for r in results),
        entries_per_s=sum(r["entries"] / r["elapsed_s"] for r in results if r["elapsed_s"] > 0),
        latencies_ms=[x for r in results for x in r["latencies_ms"]],
        first_error=errors[0] if errors else None,
    )


def _lines(stream: IO[bytes], index: int, out: queue.Queue[tuple[int, str]]) -> None:
    with stream:
        for raw in stream:
            out.put((index, raw.decode(errors="replace").strip()))
    out.put((index, ""))


def run_load(load: Load, log_dir: Path, connect_timeout_s: float = 60.0) -> LoadResult:
    """Run `load` with its workers, all started at once; returns the merged result."""
    log_dir.mkdir(parents=True, exist_ok=True)
    lines: queue.Queue[tuple[int, str]] = queue.Queue()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for i in range(load.workers):
            with open(log_dir / f"{load.driver}-worker{i}.log", "ab") as err:
                p = subprocess.Popen(
                    [sys.executable, "-m", "bench.worker"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=err,
                    start_new_session=True,
                )
            procs.append(p)
            assert p.stdin is not None
            assert p.stdout is not None
            p.stdin.write(json.dumps(load.worker_spec(i)).encode() + b"\n")
            p.stdin.flush()
            threading.Thread(target=_lines, args=(p.stdout, i, lines), daemon=True).start()
        _expect(lines, "ready", procs, time.monotonic() + connect_timeout_s, log_dir)
        for p in procs:
            assert p.stdin is not None
            p.stdin.write(b"go\n")
            p.stdin.flush()
        budget = load.warmup_s + load.duration_s + 30.0
        docs = _expect(lines, "result", procs, time.monotonic() + budget, log_dir)
        return merge(docs)
    finally:
        for p in procs:
            end_group(p, grace_s=5.0)
            if p.stdin is not None:
                with contextlib.suppress(OSError):
                    p.stdin.close()


def _expect(
    lines: queue.Queue[tuple[int, str]],
    kind: str,
    procs: list[subprocess.Popen[bytes]],
    deadline: float,
    log_dir: Path,
) -> list[dict[str, Any]]:
    """Wait for one `kind` message from each worker in `procs` before `deadline`."""
    count = len(procs)
    got: dict[int, dict[str, Any]] = {}
    while len(got) < count:
        try:
            index, line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise LoadFailed(
                f"{count - len(got)} worker(s) sent no {kind} in time (see {log_dir.name} logs)"
            ) from None
        if not line and index in got:
            continue  # a worker that already answered has exited
        if not line:
            with contextlib.suppress(subprocess.TimeoutExpired):
                procs[index].wait(timeout=5.0)
            raise LoadFailed(
                f"worker {index} exited (code {procs[index].returncode}) before its {kind} "
                f"(see {log_dir.name} logs)"
            )
        doc = json.loads(line)
        if doc.get("event") == kind:
            got[index] = doc
    return [got[i] for i in sorted(got)]
