"""The rollup node's SQLite store: progress, receipts, roots per height, outbox, snapshots.

The node writes everything a block produced in one transaction, so after a crash the
store is at a block boundary and agrees with itself. Readers (the gRPC edge threads) open
their own connections: WAL lets them read committed rows while the node writes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rollup_client.node.apply import BlockRecord
from rollup_client.protocol.errors import ResourceExhausted
from rollup_client.protocol.statemachine import Receipt
from rollup_client.rpc import PerThread

_SCHEMA = """
CREATE TABLE IF NOT EXISTS progress (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    height INTEGER NOT NULL,
    time_ms INTEGER NOT NULL,
    state_root BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS roots (
    height INTEGER PRIMARY KEY,
    time_ms INTEGER NOT NULL,
    state_root BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS receipts (
    entry_id BLOB NOT NULL,
    height INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    ok INTEGER NOT NULL,
    reason TEXT NOT NULL,
    kind TEXT NOT NULL,
    swap_id BLOB,
    PRIMARY KEY (entry_id, height, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
    entry_id BLOB PRIMARY KEY,
    namespace TEXT NOT NULL,
    data BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS snapshots (
    height INTEGER PRIMARY KEY,
    data BLOB NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class Progress:
    """The last block whose effects are durable."""

    height: int
    time_ms: int
    state_root: bytes


def _connect(path: Path, readonly: bool) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    else:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(_SCHEMA)
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def _open_checked(path: Path) -> sqlite3.Connection:
    """The writer connection, after SQLite's own consistency check of the file."""
    conn = None
    try:
        conn = _connect(path, readonly=False)
        verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
        if verdict != "ok":
            raise sqlite3.DatabaseError(verdict)
    except sqlite3.DatabaseError:
        if conn is not None:
            conn.close()
        raise
    return conn


def _set_aside(path: Path) -> Path:
    """Move a damaged store (and its WAL) out of the way; return where it went."""
    n = 0
    while (aside := path.with_name(f"{path.name}.damaged{n or ''}")).exists():
        n += 1
    for suffix in ("", "-wal", "-shm"):
        src = path.with_name(path.name + suffix)
        if src.exists():
            src.rename(aside.with_name(aside.name + suffix))
    return aside


class NodeStore:
    """The writer: owned by the node's trio task, one transaction per block or group.

    Everything in it can be recomputed from the log, so a store SQLite finds damaged
    (torn or corrupted by a crash, a full disk or a bad disk) is set aside and rebuilt by
    replay instead of stopping the node; `damaged` says where it went.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.damaged: tuple[Path, str] | None = None
        try:
            self._db = _open_checked(path)
        except sqlite3.DatabaseError as exc:
            self.damaged = (_set_aside(path), str(exc))
            self._db = _open_checked(path)

    def close(self) -> None:
        self._db.close()

    def progress(self) -> Progress | None:
        row = self._db.execute("SELECT height, time_ms, state_root FROM progress").fetchone()
        return Progress(row[0], row[1], bytes(row[2])) if row else None

    def snapshots(self) -> list[tuple[int, bytes]]:
        """Every kept snapshot as (height, data), newest first."""
        rows = self._db.execute("SELECT height, data FROM snapshots ORDER BY height DESC")
        return [(h, bytes(d)) for h, d in rows]

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; a disk that is full or failing raises ResourceExhausted
        naming the file, for every write path alike."""
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            raise ResourceExhausted(f"cannot write the rollup store {self.path}: {exc}") from exc

    def write(
        self,
        blocks: Iterable[BlockRecord],
        snapshot: tuple[int, bytes] | None,
        drop: Sequence[bytes] = (),
    ) -> None:
        """Persist a group of applied blocks (and maybe a snapshot) in one transaction,
        forgetting the outbox entries `drop` the sequencer acknowledged."""
        with self._transaction() as db:
            last: BlockRecord | None = None
            for b in blocks:
                db.execute(
                    "INSERT OR REPLACE INTO roots VALUES (?, ?, ?)",
                    (b.height, b.time_ms, b.state_root),
                )
                db.executemany(
                    "INSERT OR REPLACE INTO receipts VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (r.entry_id, r.height, r.index, int(r.ok), r.reason, r.kind, r.swap_id)
                        for r in b.receipts
                    ],
                )
                db.executemany("INSERT OR IGNORE INTO outbox VALUES (?, ?, ?)", b.outbox)
                last = b
            db.executemany("DELETE FROM outbox WHERE entry_id = ?", [(i,) for i in drop])
            if last is not None:
                db.execute(
                    "INSERT OR REPLACE INTO progress VALUES (0, ?, ?, ?)",
                    (last.height, last.time_ms, last.state_root),
                )
            if snapshot is not None:
                db.execute("INSERT OR REPLACE INTO snapshots VALUES (?, ?)", snapshot)
                # Keep the two newest: one good snapshot survives even a bad newest one.
                db.execute(
                    "DELETE FROM snapshots WHERE height NOT IN "
                    "(SELECT height FROM snapshots ORDER BY height DESC LIMIT 2)"
                )

    def outbox(self) -> list[tuple[bytes, str, bytes]]:
        """Entries written by applied blocks and not yet acknowledged by the sequencer."""
        return [
            (bytes(i), n, bytes(d))
            for i, n, d in self._db.execute("SELECT entry_id, namespace, data FROM outbox")
        ]


class StoreReader:
    """Read-only access for the gRPC threads: one connection per thread, no trio hop.

    Receipts and roots are immutable once committed, so reading them needs no lock.
    """

    def __init__(self, path: Path) -> None:
        self._conns = PerThread(lambda: _connect(path, readonly=True))

    def _db(self) -> sqlite3.Connection:
        return self._conns.get()

    def close(self) -> None:
        self._conns.close()

    def receipt(self, entry_id: bytes) -> Receipt | None:
        """The first receipt recorded for `entry_id` (a transaction id or a swap id)."""
        row = (
            self._db()
            .execute(
                "SELECT height, idx, ok, reason, kind, swap_id FROM receipts "
                "WHERE entry_id = ? ORDER BY height, idx LIMIT 1",
                (entry_id,),
            )
            .fetchone()
        )
        if row is None:
            return None
        swap = bytes(row[5]) if row[5] is not None else None
        return Receipt(entry_id, row[0], row[1], bool(row[2]), row[3], row[4], swap)

    def root_at(self, height: int) -> tuple[int, bytes] | None:
        """(time_ms, state root) after block `height`, if applied."""
        row = (
            self._db()
            .execute("SELECT time_ms, state_root FROM roots WHERE height = ?", (height,))
            .fetchone()
        )
        return (row[0], bytes(row[1])) if row else None
