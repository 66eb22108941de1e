"""The block store: SQLite (WAL, synchronous=FULL), one transaction per block.

A block's header and its entries commit together, and `write` returns only after the
commit is on disk, so an acknowledgement never outruns durability. Entries are stored
one row per (block, namespace), the unit every reader asks for, packed as
(u32 index, u32 length, data) records: Python's sqlite3 drops and retakes the GIL for
every row, and with gRPC threads busy that per-row handover, not the disk, was the cost.

The id index (entry id -> position, for dedup and GetEntry, sequencer/idindex.py) lives in
its own file and is written in sorted runs by `IdIndex.flush`, off the acknowledgement
path; ids of blocks sealed since the last flush are held in memory and rebuilt from the
block store after a crash. The writer connection belongs to one thread at a time; every reading
thread gets its own connection, since sealed blocks are immutable.
"""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rollup_client.protocol import block, codec, keys
from rollup_client.protocol.errors import FailedPrecondition
from sequencer.core import Ack, Block, Head, Item, Position
from sequencer.idindex import IdIndex
from sequencer.sqlite_files import connect, readers, storage_failed, transaction, writer

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
    namespace TEXT NOT NULL,
    records BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS entries_by_block ON entries (height, namespace);
"""
# What reading damaged bytes of the store can raise.
DAMAGE = (sqlite3.DatabaseError, ValueError, struct.error)
_REC = struct.Struct(">II")  # index, data length


def pack_columns(indices: Sequence[int], datas: Sequence[bytes]) -> bytes:
    """Entries indices[k] with data datas[k] as one blob of (u32 index, u32 length, data)
    records; every per-entry step is a C loop."""
    parts: list[bytes] = [b""] * (2 * len(datas))
    parts[::2] = map(_REC.pack, indices, map(len, datas))
    parts[1::2] = datas
    return b"".join(parts)


def unpack_records(blob: bytes) -> list[tuple[int, bytes]]:
    out = []
    at = 0
    while at < len(blob):
        i, n = _REC.unpack_from(blob, at)
        at += _REC.size
        out.append((i, blob[at : at + n]))
        at += n
    return out


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


@dataclass(frozen=True, slots=True)
class StoredEntry:
    height: int
    index: int
    namespace: str
    data: bytes


class Store:
    """The writer side: one thread at a time writes blocks; `reader()` serves any thread."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = writer(self.path, SCHEMA)
        except sqlite3.DatabaseError as exc:
            # A WAL that lost frames the file already holds (a lying fsync, a partial
            # restore) does not even open: refuse with what to do, not a traceback.
            raise FailedPrecondition(
                f"{self.path} is damaged ({exc}); restore the data directory from a backup "
                "or a replica"
            ) from exc
        # Checkpoints run from `checkpoint`, off the acknowledgement path.
        self._db.execute("PRAGMA wal_autocheckpoint=0")
        self._checkpointer = connect(self.path)
        self.index = IdIndex(self.path.with_suffix(".ids.sqlite"))

    def checkpoint(self) -> None:
        """Copy committed WAL frames into the database without blocking the writer."""
        try:
            self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:
            raise storage_failed(self.path, exc) from exc

    def reader(self) -> Reader:
        return Reader(self.path, self.index)

    def close(self) -> None:
        self.index.close()
        self._checkpointer.close()
        self._db.close()

    def write(self, blk: Block) -> None:
        """Append `blk` and its entries in one transaction; return once it is fsynced."""
        h = blk.header
        n = len(blk.ids)
        per_ns: dict[str, bytes] = {}
        if n and blk.namespaces.count(blk.namespaces[0]) == n:
            per_ns[blk.namespaces[0]] = pack_columns(range(n), blk.datas)
        else:
            at: dict[str, list[int]] = {}
            for i, ns in enumerate(blk.namespaces):
                at.setdefault(ns, []).append(i)
            for ns, idx in at.items():
                per_ns[ns] = pack_columns(idx, [blk.datas[i] for i in idx])
        header = (
            h.height,
            blk.hash,
            h.prev_hash,
            h.time_ms,
            h.entry_count,
            h.namespace_count,
            h.namespace_root,
            blk.signature,
            encode_table(blk.table),
        )
        transaction(
            self._db,
            self.path,
            [("INSERT INTO headers VALUES (?,?,?,?,?,?,?,?,?)", header)]
            + [
                ("INSERT INTO entries VALUES (?,?,?)", (h.height, ns, records))
                for ns, records in per_ns.items()
            ],
        )
        self.index.add(h.height, blk.ids)

    def known(self, ids: Iterable[bytes]) -> dict[bytes, Ack]:
        """Original positions of those `ids` already in the log."""
        return {eid: Ack(eid, h, i, True) for eid, (h, i) in self.index.lookup(ids).items()}

    def positions(self, ids: Iterable[bytes]) -> dict[bytes, Position]:
        """(height, index) of those `ids` already in the log: `known` without an object each."""
        return self.index.lookup(ids)

    def recover(self, sequencer_key: bytes) -> Head | None:
        """The verified head (None for an empty store), with the id index caught up.

        Ids of blocks above the index's watermark are rebuilt into its in-memory tail and
        left for the next flush: flushing them here doubled the time to come back.

        Raises FailedPrecondition when the chain on disk is damaged: a gap in heights, a
        head whose hash, signature or entries do not check out, or a broken link to its
        parent. A sequencer must never serve such a chain.
        """
        count, top = self._db.execute("SELECT COUNT(*), MAX(height) FROM headers").fetchone()
        top = -1 if top is None else top
        if top != count - 1:
            raise FailedPrecondition(
                f"block store {self.path} is damaged: {count} headers but head height {top}"
            )
        mark = self.index.watermark()
        if mark > top:
            raise FailedPrecondition(
                f"id index {self.index.path} covers height {mark} beyond the head {top}: "
                "it belongs to another block store"
            )
        if count == 0:
            return None
        reader = self.reader()
        try:
            head = reader.header(top)
            verify_stored(reader, head, sequencer_key)
            if top > 0 and reader.header(top - 1).hash != head.header.prev_hash:
                raise FailedPrecondition(f"block {top} does not link to block {top - 1}")
            for height in range(mark + 1, top + 1):
                try:
                    items = reader.items(height)
                except DAMAGE as exc:
                    raise FailedPrecondition(
                        f"block {height} in {self.path} does not decode ({exc}): restore "
                        "the data directory from a replica or a backup"
                    ) from exc
                self.index.add(height, [it.id for it in items])
        finally:
            reader.close()
        return Head(top, head.hash, head.header.time_ms)


def verify_stored(reader: Reader, sh: StoredHeader, sequencer_key: bytes) -> None:
    """Raise FailedPrecondition unless the stored block checks out against its header."""
    h = sh.header
    where = f"block {h.height} in {reader.path}"
    if h.hash != sh.hash:
        raise FailedPrecondition(f"{where}: header hash does not match its fields")
    if not keys.verify(sequencer_key, sh.signature, sh.hash):
        raise FailedPrecondition(f"{where}: signature does not verify with the genesis key")
    try:
        items = reader.items(h.height)
    except DAMAGE as exc:
        raise FailedPrecondition(f"{where}: entries do not decode ({exc})") from exc
    table = tuple(block.table_of([it.namespace for it in items], [it.id for it in items]))
    if table != sh.table:
        raise FailedPrecondition(f"{where}: entries do not match the namespace table")
    if block.make_header(h.height, h.prev_hash, h.time_ms, len(items), table) != h:
        raise FailedPrecondition(f"{where}: namespace root or entry count is wrong")


class Reader:
    """Read-only access to sealed blocks with one SQLite connection per thread."""

    def __init__(self, path: Path, index: IdIndex) -> None:
        self.path = Path(path)
        self.index = index
        self._conns = readers(self.path)

    def close(self) -> None:
        self._conns.close()

    def header(self, height: int) -> StoredHeader:
        row = (
            self._conns.get()
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
        db = self._conns.get()
        if namespaces is None:
            cur = db.execute("SELECT namespace, records FROM entries WHERE height=?", (height,))
        else:
            marks = ",".join("?" * len(namespaces))
            cur = db.execute(
                f"SELECT namespace, records FROM entries WHERE height=? AND namespace IN ({marks})",
                (height, *namespaces),
            )
        return {ns: unpack_records(blob) for ns, blob in cur}

    def items(self, height: int) -> list[Item]:
        """Every entry of block `height` in index order, ids recomputed from the data."""
        found = [
            (i, ns, data) for ns, recs in self.entries(height, None).items() for i, data in recs
        ]
        found.sort()
        if [i for i, _, _ in found] != list(range(len(found))):
            raise ValueError(f"block {height} has gaps or repeats in its entry indices")
        return [Item(ns, data, codec.entry_id(ns, data)) for _, ns, data in found]

    def entry(self, eid: bytes) -> tuple[StoredEntry, list[tuple[int, bytes]]] | None:
        """Entry `eid` and the (index, id) list of its namespace in its block, if logged."""
        at = self.index.lookup([eid]).get(eid)
        if at is None:
            return None
        height, index = at
        for ns, recs in self.entries(height, None).items():
            for i, data in recs:
                if i == index:
                    ns_ids = [(j, codec.entry_id(ns, d)) for j, d in recs]
                    return StoredEntry(height, index, ns, data), ns_ids
        return None
