"""`python -m bench.worker`: one load-generator process.

Protocol with bench.loadgen on stdin/stdout, one JSON object per line: the spec arrives,
the worker connects and prints {"event": "ready"}, waits for "go", runs the warm-up and
the timed window, prints {"event": "result", ...} and exits.
"""

from __future__ import annotations

import importlib
import json
import os
import struct
import sys
import time
from collections.abc import Callable
from typing import Any, Protocol

DRIVERS = {
    "grpc_echo": "bench.peers.grpc_echo",
    "redis_streams": "bench.peers.redis_streams",
    "nats_jetstream": "bench.peers.nats_jetstream",
    "tandem": "bench.peers.tandem",
    "testnet": "bench.peers.testnet",
}
MAX_ERRORS = 100
_HEADER = struct.Struct(">8sIQ")


class Driver(Protocol):
    """A client of one system: `send` returns once every payload is durably acknowledged."""

    def send(self, payloads: list[bytes]) -> None: ...

    def close(self) -> None: ...


def open_driver(name: str, target: dict[str, Any], single: bool) -> Driver:
    """Import the peer module for `name` (only that one) and connect its client."""
    module = importlib.import_module(DRIVERS[name])
    driver: Driver = module.connect(target, single)
    return driver


class Payloads:
    """Unique entries of a fixed size: a per-process nonce, the worker index, a counter."""

    def __init__(self, worker: int, size: int, nonce: bytes) -> None:
        if size < _HEADER.size:
            raise ValueError(f"entries must be at least {_HEADER.size} bytes")
        self.worker = worker
        self.nonce = nonce
        self.pad = b"x" * (size - _HEADER.size)
        self.seq = 0

    def batch(self, n: int) -> list[bytes]:
        out = []
        for _ in range(n):
            out.append(_HEADER.pack(self.nonce, self.worker, self.seq) + self.pad)
            self.seq += 1
        return out


def drive(
    spec: dict[str, Any],
    send: Callable[[list[bytes]], None],
    payloads: Payloads,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Warm up, then send batches for the timed window; counts only the window."""
    batch = spec["batch"]
    warm_end = clock() + spec["warmup_s"]
    errors = 0
    first_error: str | None = None
    while clock() < warm_end:
        try:
            send(payloads.batch(batch))
        except Exception as exc:
            errors += 1
            first_error = first_error or repr(exc)
            if errors >= MAX_ERRORS:
                break
    rate = spec.get("rate_entries_per_s")
    interval = batch / rate if rate else 0.0
    cap = spec.get("max_entries")
    entries = batches = 0
    latencies: list[float] = []
    start = clock()
    end = start + spec["duration_s"]
    # Paced workers take turns, worker i at i/M of the interval: together an even stream,
    # not a burst of M batches at once that every interval would start with.
    due = start + interval * spec.get("worker", 0) / spec.get("workers", 1)
    while errors < MAX_ERRORS and (cap is None or entries < cap):
        now = clock()
        if interval:
            if due > now:
                sleep(due - now)
            sent_at, due = due, due + interval
        else:
            sent_at = now
        if sent_at >= end:
            break
        try:
            send(payloads.batch(batch))
        except Exception as exc:
            errors += 1
            first_error = first_error or repr(exc)
            continue
        latencies.append((clock() - sent_at) * 1000.0)
        entries += batch
        batches += 1
    return {
        "event": "result",
        "entries": entries,
        "batches": batches,
        "errors": errors,
        "first_error": first_error,
        "elapsed_s": clock() - start,
        "latencies_ms": latencies,
    }


def _emit(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()


def main() -> None:
    spec = json.loads(sys.stdin.readline())
    target = {**spec["target"], "worker": spec["worker"]}
    driver = open_driver(spec["driver"], target, spec["single"])
    try:
        _emit({"event": "ready"})
        if sys.stdin.readline().strip() != "go":
            return
        payloads = Payloads(spec["worker"], spec["entry_bytes"], os.urandom(8))
        _emit(drive(spec, driver.send, payloads))
    finally:
        driver.close()


if __name__ == "__main__":
    main()
