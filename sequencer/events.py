"""Structured logs: one JSON object per line, one file per process."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any


class EventLog:
    """Appends `{"ts": ..., "event": ..., ...}` lines; safe to call from any thread."""

    def __init__(self, path: Path | None) -> None:
        self._lock = threading.Lock()
        self._f = None if path is None else open(path, "a", encoding="utf-8")  # noqa: SIM115

    def __call__(self, event: str, **fields: Any) -> None:
        if self._f is None:
            return
        line = json.dumps({"ts": round(time.time(), 3), "event": event, **fields}, default=str)
        with self._lock:
            self._f.write(line + "\n")
            self._f.flush()

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
