"""What every process reports: its structured event log, and the endpoints it serves.

The log is one JSON object per line, `{"ts": ..., "event": ..., **fields}`, one file per
process. Without a `flusher` task a line is in the file when the call returns. A shell that
logs several lines per request runs `flusher`: lines written from the trio thread then
gather in the file's buffer and reach the file once the trio thread gets round to it, after
the tasks ready at the time (one write syscall per line was four per swap in the
coordinator). Lines from any other thread are still written at once, so a worker thread
that logs a failure never waits on the trio thread.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where a started process serves, as its `serve` reports through `task_status.started`:
    gRPC and metrics HOST:PORT (metrics "" when off)."""

    listen: str
    metrics: str

    def print_ready(self) -> None:
        """The one line a process's `run` command prints on stdout once it serves."""
        doc = {"event": "ready", "listen": self.listen, "metrics": self.metrics}
        sys.stdout.write(json.dumps(doc) + "\n")
        sys.stdout.flush()


class EventLog:
    """Appends event lines to `path` (None: drops them); safe to call from any thread."""

    def __init__(self, path: Path | None) -> None:
        self._lock = threading.Lock()
        self._f = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._f = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()
        self._unwritten = trio.Event()
        self._flusher_thread: int | None = None

    def __call__(self, event: str, **fields: Any) -> None:
        if self._f is None:
            return
        line = json.dumps({"ts": round(time.time(), 3), "event": event, **fields}, default=str)
        with self._lock:
            self._f.write(line + "\n")
            if threading.get_ident() != self._flusher_thread:
                self._f.flush()
                return
        self._unwritten.set()

    async def flusher(self) -> None:
        """Write lines logged from the trio thread to the file whenever there are some."""
        self._flusher_thread = threading.get_ident()
        try:
            while True:
                await self._unwritten.wait()
                self.flush()
        finally:
            self._flusher_thread = None

    def flush(self) -> None:
        """Write every buffered line to the file now."""
        self._unwritten = trio.Event()
        if self._f is not None:
            with self._lock:
                self._f.flush()

    def close(self) -> None:
        if self._f is not None:
            with self._lock:
                self._f.close()
