"""A connection per thread to one SQLite file, for readers that run in grpc's threads.

A sqlite3 connection must not be shared between threads that use it at once, and opening
one per call costs more than the read; so each thread keeps its own, and all of them are
closed together when the owner closes. Used by the sequencer's block store and id index
and by the rollup node's store reader.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable


class PerThread:
    """One connection per thread, opened by `open_conn` on the thread's first `get`."""

    def __init__(self, open_conn: Callable[[], sqlite3.Connection]) -> None:
        self._open = open_conn
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def get(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = self._open()
            self._local.db = db
            with self._lock:
                self._all.append(db)
        return db

    def close(self) -> None:
        with self._lock:
            for db in self._all:
                db.close()
            self._all.clear()
