"""The block store: SQLite (WAL, synchronous=FULL), one transaction per block.

A block's header and its entries commit together, and `write` returns only after the
commit is on disk, so an acknowledgement never outruns durability. The writer connection
belongs to the shell's sealing thread; every reading thread gets its own connection via
`Reader`, since sealed blocks are immutable and need no coordination beyond the head.
"""

from __future__ import annotations

import sqlite3
import struct
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rollup_client import block, codec, keys
from rollup_client.errors import FailedPrecondition
from sequencer.core import Ack, Block, Head

SCHEMA = """
CREATE TABLE IF NOT EXISTS headers (
    height INTEGER PRIMARY KEY,
    hash BLOB NOT NULL,
    prev_hash BLOB NOT NULL,
    time_ms INTEGER NOT NULL,
    entry_count INTEGER NOT NULL,
    namespace_count INTEGER NOT NULL,
    namespace_root BLOB NOT NULL,
    signature BLOB NOT NULL,
    namespace_table BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS entries (
    height INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    namespace TEXT NOT NULL,
    data BLOB NOT NULL,
    id BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS entries_by_id ON entries (id);
CREATE INDEX IF NOT EXISTS entries_by_block ON entries (height, namespace, idx);
"""
_LOOKUP_CHUNK = 900


def encode_table(table: Iterable[block.NsRow]) -> bytes:
    """Compact namespace table blob: (u16 len, name, u32 count, 32-byte root) per row."""
    out = bytearray()
    for r in table:
        ns = r.namespace.encode()
        out += struct.pack(">H", len(ns)) + ns + struct.pack(">I", r.count) + r.entries_root
    return bytes(out)


def decode_table(blob: bytes) -> tuple[block.NsRow, ...]:
    rows = []
    i = 0
    while i < len(blob):
        (n,) = struct.unpack_from(">H", blob, i)
        ns = blob[i + 2 : i + 2 + n].decode()
        (count,) = struct.unpack_from(">I", blob, i + 2 + n)
        root = blob[i + 6 + n : i + 6 + n + codec.HASH_BYTES]
        rows.append(block.NsRow(ns, count, root))
        i += 6 + n + codec.HASH_BYTES
    return tuple(rows)


@dataclass(frozen=True, slots=True)
class StoredHeader:
    """A sealed header as stored, with its namespace table."""

    header: block.Header
    hash: bytes
    signature: bytes
    table: tuple[block.NsRow, ...]


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


class Store:
    """The writer side. Use from one thread at a time."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = _connect(self.path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def write(self, blk: Block) -> None:
        """Append `blk` and its entries in one transaction; return once it is fsynced."""
        h = blk.header
        height = h.height
        db = self._db
        db.execute("BEGIN")
        try:
            db.execute(
                "INSERT INTO headers VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    height,
                    blk.hash,
                    h.prev_hash,
                    h.time_ms,
                    h.entry_count,
                    h.namespace_count,
                    h.namespace_root,
                    blk.signature,
                    encode_table(blk.table),
                ),
            )
            db.executemany(
                "INSERT INTO entries VALUES (?,?,?,?,?)",
                [(height, i, it.namespace, it.data, it.id) for i, it in enumerate(blk.items)],
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def known(self, ids: Iterable[bytes]) -> dict[bytes, Ack]:
        """Original positions of those `ids` already in the log."""
        want = list(set(ids))
        found: dict[bytes, Ack] = {}
        for i in range(0, len(want), _LOOKUP_CHUNK):
            chunk = want[i : i + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            q = f"SELECT id, height, idx FROM entries WHERE id IN ({marks})"
            for eid, height, idx in self._db.execute(q, chunk):
                found[eid] = Ack(eid, height, idx, True)
        return found

    def recover(self, sequencer_key: bytes) -> Head | None:
        """The verified head, or None for an empty store.

        Raises FailedPrecondition when the chain on disk is damaged: a gap in heights, a
        head whose hash, signature or entries do not check out, or a broken link to its
        parent. A sequencer must never serve such a chain.
        """
        count, top = self._db.execute("SELECT COUNT(*), MAX(height) FROM headers").fetchone()
        if count == 0:
            return None
        if top != count - 1:
            raise FailedPrecondition(
                f"block store {self.path} is damaged: {count} headers but head height {top}"
            )
        reader = Reader(self.path)
        try:
            head = reader.header(top)
            _verify_stored(reader, head, sequencer_key)
            if top > 0 and reader.header(top - 1).hash != head.header.prev_hash:
                raise FailedPrecondition(f"block {top} does not link to block {top - 1}")
        finally:
            reader.close()
        return Head(top, head.hash, head.header.time_ms)


def _verify_stored(reader: Reader, sh: StoredHeader, sequencer_key: bytes) -> None:
    h = sh.header
    where = f"block {h.height} in {reader.path}"
    if h.hash != sh.hash:
        raise FailedPrecondition(f"{where}: header hash does not match its fields")
    if not keys.verify(sequencer_key, sh.signature, sh.hash):
        raise FailedPrecondition(f"{where}: signature does not verify with the genesis key")
    rows = reader.block_ids(h.height)
    per_ns = reader.entries(h.height, None)
    data = {i: codec.entry_id(ns, d) for ns, es in per_ns.items() for i, d in es}
    table = tuple(block.namespace_table([(ns, eid) for _, ns, eid in rows]))
    if (
        [i for i, _, _ in rows] != list(range(len(rows)))
        or any(data.get(i) != eid for i, _, eid in rows)
        or table != sh.table
    ):
        raise FailedPrecondition(f"{where}: entries do not match the namespace table")
    if block.make_header(h.height, h.prev_hash, h.time_ms, len(rows), table) != h:
        raise FailedPrecondition(f"{where}: namespace root or entry count is wrong")


class Reader:
    """Read-only access to sealed blocks with one SQLite connection per thread."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = _connect(self.path)
            db.execute("PRAGMA query_only=1")
            self._local.db = db
            with self._lock:
                self._all.append(db)
        return db

    def close(self) -> None:
        with self._lock:
            for db in self._all:
                db.close()
            self._all.clear()

    def header(self, height: int) -> StoredHeader:
        row = (
            self._db()
            .execute(
                "SELECT height, prev_hash, time_ms, entry_count, namespace_count, "
                "namespace_root, hash, signature, namespace_table FROM headers WHERE height=?",
                (height,),
            )
            .fetchone()
        )
        if row is None:
            raise FailedPrecondition(f"block {height} is not in the store")
        return StoredHeader(block.Header(*row[:6]), row[6], row[7], decode_table(row[8]))

    def entries(
        self, height: int, namespaces: Sequence[str] | None
    ) -> dict[str, list[tuple[int, bytes]]]:
        """(index, data) of each namespace's entries in block `height` (None: all)."""
        db = self._db()
        if namespaces is None:
            cur = db.execute(
                "SELECT namespace, idx, data FROM entries WHERE height=? ORDER BY namespace, idx",
                (height,),
            )
        else:
            marks = ",".join("?" * len(namespaces))
            cur = db.execute(
                "SELECT namespace, idx, data FROM entries "
                f"WHERE height=? AND namespace IN ({marks}) ORDER BY namespace, idx",
                (height, *namespaces),
            )
        out: dict[str, list[tuple[int, bytes]]] = {}
        for ns, idx, data in cur:
            out.setdefault(ns, []).append((idx, data))
        return out

    def block_ids(self, height: int) -> list[tuple[int, str, bytes]]:
        """(index, namespace, id) of every entry in block `height`, in index order."""
        return (
            self._db()
            .execute(
                "SELECT idx, namespace, id FROM entries WHERE height=? ORDER BY idx", (height,)
            )
            .fetchall()
        )

    def entry(self, eid: bytes) -> tuple[int, int, str, bytes] | None:
        """(height, index, namespace, data) of entry `eid`, if stored."""
        row = (
            self._db()
            .execute("SELECT height, idx, namespace, data FROM entries WHERE id=?", (eid,))
            .fetchone()
        )
        return None if row is None else (row[0], row[1], row[2], row[3])

    def namespace_ids(self, height: int, namespace: str) -> list[tuple[int, bytes]]:
        """(index, id) of namespace `namespace`'s entries in block `height`, in order."""
        return (
            self._db()
            .execute(
                "SELECT idx, id FROM entries WHERE height=? AND namespace=? ORDER BY idx",
                (height, namespace),
            )
            .fetchall()
        )
