"""The disk's own durable-write latency: the floor under every fsynced acknowledgement.

A paced series of appends, each followed by fdatasync, to a file in the benchmark's
working directory: what one block commit costs the disk with nothing else of Tandem's in
the way. On a shared virtual disk its tail sets how low any p99 of a durable ack can go.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

# About one block of a half-load run (a batch or two of 100 entries of 200 bytes).
WRITE_BYTES = 25_000


def fsync_latencies_ms(
    workdir: Path, seconds: float, per_second: float, size: int = WRITE_BYTES
) -> list[float]:
    """Latency of each write+fdatasync of `size` bytes, `per_second` of them for `seconds`."""
    path = workdir / "fsync-probe.bin"
    data = os.urandom(size)
    out: list[float] = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        start = due = time.perf_counter()
        while due - start < seconds:
            now = time.perf_counter()
            if due > now:
                time.sleep(due - now)
            t = time.perf_counter()
            os.write(fd, data)
            os.fdatasync(fd)
            out.append((time.perf_counter() - t) * 1000.0)
            due += 1.0 / per_second
    finally:
        os.close(fd)
        path.unlink()
    return out
