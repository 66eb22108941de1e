"""The coordinator's SQLite store: proposals with their signatures, and a log checkpoint.

Proposals are the only thing the log cannot give back (terms nobody has submitted yet,
signatures still being collected); a complete intent the sequencer acknowledged promptly
is not written here at all, the log holds it (see `Shell._durable`). The checkpoint
(the swap tracker's snapshot at a height) only saves replay time: losing it means
replaying `swap` from height 0.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from rollup_client.protocol import swap
from rollup_client.protocol.errors import FailedPrecondition, InvalidArgument
from rollup_client.protocol.genesis import Genesis

_SCHEMA = """
CREATE TABLE IF NOT EXISTS proposals (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    swap_id BLOB NOT NULL UNIQUE,
    intent BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoint (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    height INTEGER NOT NULL,
    tracker BLOB NOT NULL
);
"""


class Store:
    """One connection, used from one thread at a time (the trio thread's worker hops)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise FailedPrecondition(f"coordinator store {path} is unusable: {exc}") from exc

    def close(self) -> None:
        self._db.close()

    def save_proposal(self, signed: swap.SignedIntent) -> None:
        """Insert or update (more signatures) one proposal, durably."""
        self.save_proposals([signed])

    def save_proposals(self, signed: Sequence[swap.SignedIntent]) -> None:
        """Insert or update many proposals in one transaction: one fsync for all of them."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT INTO proposals (swap_id, intent) VALUES (?, ?) "
                "ON CONFLICT (swap_id) DO UPDATE SET intent = excluded.intent",
                [(s.swap_id, swap.encode_intent(s)) for s in signed],
            )
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def proposals(self) -> list[swap.SignedIntent]:
        """Every proposal, oldest first."""
        out = []
        for (data,) in self._db.execute("SELECT intent FROM proposals ORDER BY seq"):
            item = swap.decode_swap_entry(bytes(data))
            if not isinstance(item, swap.SignedIntent):
                raise InvalidArgument("coordinator store holds a vote where a proposal belongs")
            out.append(item)
        return out

    def save_checkpoint(self, tracker: swap.SwapTracker) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO checkpoint (id, height, tracker) VALUES (0, ?, ?)",
            (tracker.height, tracker.to_bytes()),
        )

    def checkpoint(self, genesis: Genesis) -> swap.SwapTracker | None:
        row = self._db.execute("SELECT tracker FROM checkpoint WHERE id = 0").fetchone()
        return None if row is None else swap.SwapTracker.from_bytes(bytes(row[0]), genesis)
