"""SQLite files as the sequencer uses them: WAL, synchronous=FULL, mmap reads, one
transaction per write, a read connection per thread, and storage failures as errors that
say what happened. Shared by the block store and the id index.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from rollup_client.protocol.errors import Unavailable
from rollup_client.rpc import PerThread

MMAP_BYTES = 1 << 30


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout=5000")
    # Reads through the OS page cache (shared by every connection) instead of read() calls.
    conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
    return conn


def writer(path: Path, schema: str) -> sqlite3.Connection:
    db = connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(schema)
    return db


Statement = tuple[str, tuple[object, ...]]


def transaction(db: sqlite3.Connection, path: Path, statements: Sequence[Statement]) -> None:
    """Run `statements` atomically; a storage failure becomes an error that says why."""
    try:
        db.execute("BEGIN")
        try:
            for sql, args in statements:
                db.execute(sql, args)
            db.execute("COMMIT")
        except BaseException:
            # SQLite may have rolled back already (e.g. on a full disk).
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        raise storage_failed(path, exc) from exc


def storage_failed(path: Path, exc: sqlite3.Error) -> Unavailable:
    """The error for a store that cannot be written (full disk, I/O error): say so."""
    return Unavailable(f"cannot write {path}: {exc}; nothing past the last ack was lost")


def readers(path: Path) -> PerThread:
    """Read-only connections to `path`, one per thread."""

    def open_conn() -> sqlite3.Connection:
        db = connect(path)
        db.execute("PRAGMA query_only=1")
        return db

    return PerThread(open_conn)
