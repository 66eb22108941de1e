"""The id index (entry id -> (height, index), for dedup and GetEntry): sorted runs.

Entry ids are hashes, so inserting a flush into one big B-tree touched about every leaf
page: a flush rewrote most of the index through the WAL and its checkpoint at once, and
the block store's fsync queued behind it on the same disk, which made the half-load tail.
Here a flush writes its ids as a new sorted run instead: a fresh WITHOUT ROWID table
filled in key order, so only its own pages are written. Runs of similar size are merged
now and then, in key-range chunks of one transaction each, so no single write (and its
fsync) is large; a merged run replaces its
sources in the `runs` table in the transaction of its last chunk, and the sources are
dropped once no lookup can still be reading them.

Durability and crash safety: the index file stays synchronous=FULL (a lost or torn index
would answer dedup wrongly). A run, its row in `runs` and the watermark (every block up
to it is indexed) commit together; a crash at any point leaves the last committed state,
whose ids above the watermark recovery rebuilds from the block store, and tables that
`runs` does not name (a merge cut short, sources not yet dropped) are dropped at open.

Lookups: most ids a SubmitBatch brings are new, and probing every run for each would cost
a B-tree descent per run, so an in-memory Bloom filter over the ids in the runs (built
from the runs after an open, in the first maintenance pass) answers "not indexed" for
nearly all of them without SQLite (`sequencer.idfilter`); the rest are probed in every
live run in one statement.
"""

from __future__ import annotations

import itertools
import struct
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path

from rollup_client.protocol import codec
from sequencer.idfilter import IdFilter
from sequencer.sqlite_files import Statement, readers, transaction, writer

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (name TEXT PRIMARY KEY, rows INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
_SET_META = "INSERT OR REPLACE INTO meta VALUES (?, ?)"
_RUN_TABLE = "CREATE TABLE {} (id BLOB PRIMARY KEY, loc BLOB NOT NULL) WITHOUT ROWID"
# The single table of the index before runs; adopted as a run by `IdIndex` at open.
_LEGACY = "ids"
# One statement inserts a whole packed batch of (id, loc) records in key order, so
# SQLite, not a Python loop, walks the rows, and the new table's pages fill in order.
_ID_RECORD = codec.HASH_BYTES + 16
_INSERT_RUN = f"""
WITH RECURSIVE r(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM r WHERE i + 1 < ?2)
INSERT INTO {{}}
SELECT substr(?1, i * {_ID_RECORD} + 1, {codec.HASH_BYTES}),
       substr(?1, i * {_ID_RECORD} + {codec.HASH_BYTES + 1}, 16)
FROM r ORDER BY 1
"""
_WANTED = f"""
WITH RECURSIVE r(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM r WHERE i + 1 < ?2),
w(id) AS MATERIALIZED (SELECT substr(?1, i * {codec.HASH_BYTES} + 1, {codec.HASH_BYTES}) FROM r)
"""
# A flush writes the tail once it holds this many ids: small enough that a block commit
# queued behind it on the same disk waits little, and a crash restart rebuilds at most
# about this many from the block store.
MIN_FLUSH_IDS = 5_000
# This many runs of one size class are merged into one of the next (4x larger) class.
MERGE_FANOUT = 4
# A merge writes about this many ids per transaction, as much as a flush: larger steps
# made block commits at half load queue behind them (`bench latency` measures the store's
# block commits with maintenance running, `store_commit_with_maintenance`).
MERGE_STEP_IDS = 5_000
_KEY_END = b"\xff" * (codec.HASH_BYTES + 1)  # above every id
_LOC = struct.Struct(">QQ")  # height, index


@dataclass
class _Merge:
    """A merge in progress: `sources` into `target`, one key range per step."""

    sources: list[str]
    target: str
    rows: int
    bounds: list[bytes]
    step: int = 0


def _key_bounds(rows: int) -> list[bytes]:
    """Edges of key ranges holding about MERGE_STEP_IDS of `rows` uniform ids each."""
    steps = min(1 << 16, max(1, -(-rows // MERGE_STEP_IDS)))
    inner = [(i * (1 << 16) // steps).to_bytes(2, "big") for i in range(1, steps)]
    return [b"", *inner, _KEY_END]


def size_class(rows: int) -> int:
    """0 below MERGE_FANOUT flushes' worth of ids, then one more per factor MERGE_FANOUT."""
    c = 0
    while rows >= MIN_FLUSH_IDS * MERGE_FANOUT ** (c + 1):
        c += 1
    return c


class IdIndex:
    """Entry id -> (height, index): sorted runs on disk plus an in-memory tail.

    Blocks enter the tail right after their commit; `flush` writes the tail as a new run
    with the highest indexed height (the watermark), then the step of upkeep (a merge's
    next key range, the filter, dropping merged-away runs) that `due` asked for.
    Safe to use from any thread; `flush` runs concurrently with `add` and `lookup`.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = writer(path, SCHEMA)
        self._readers = readers(path)
        self._lock = threading.Lock()  # guards every field below that lookups read
        self._flushing = threading.Lock()
        # Id -> packed (height, index): the form a run stores, so a flush is one statement.
        self._tail: dict[bytes, bytes] = {}
        # The part of the tail a running flush is writing; still served until committed.
        self._flushing_tail: dict[bytes, bytes] = {}
        self._runs: dict[str, int] = {}  # live run -> rows, oldest first
        self._filter: IdFilter | None = None  # covers every live run once built
        self._gen = 0  # bumped when a merge retires runs
        self._users: Counter[int] = Counter()  # lookups in flight per generation
        self._retired: list[tuple[int, list[str]]] = []  # (gen retired in, runs) to drop
        self._merges: dict[int, _Merge] = {}  # size class of its sources -> merge
        # Set by `due`: the next `flush` takes a step of upkeep. The flush on the way down
        # writes the tail only (building the filter for 1M ids takes ~0.3 s).
        self._upkeep_asked = False
        self._open()
        self._top = self._mark

    def _open(self) -> None:
        """Adopt a legacy single table as a run, drop tables no committed state names."""
        db = self._db
        runs = dict(db.execute("SELECT name, rows FROM runs ORDER BY rowid"))
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        stmts: list[Statement] = []
        if _LEGACY in tables and _LEGACY not in runs and not runs:
            rows = self._meta("rows", 0)
            stmts.append(("INSERT INTO runs VALUES (?, ?)", (_LEGACY, rows)))
            runs[_LEGACY] = rows
        orphans = [t for t in tables if _is_run(t) and t not in runs]
        stmts += [(f"DROP TABLE {t}", ()) for t in orphans]
        if stmts:
            transaction(db, self.path, stmts)
        self._runs = runs
        self._mark = self._meta("indexed_height", -1)
        self._next = self._meta("next_run", 0)

    def _meta(self, key: str, default: int) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return default if row is None else int(row[0])

    def watermark(self) -> int:
        """Every entry of blocks up to this height is in the runs (-1: none)."""
        return self._mark

    def runs(self) -> dict[str, int]:
        """Live run -> rows, oldest first."""
        with self._lock:
            return dict(self._runs)

    def due(self) -> bool:
        """True when `flush` has work worth a step: a large tail, or upkeep (a merge step,
        the filter, dropping merged runs), which the next `flush` then does."""
        with self._lock:
            self._upkeep_asked = (
                self._filter is None
                or self._filter.count > self._filter.capacity
                or bool(self._retired)
                or self._next_merge() is not None
            )
            return self._upkeep_asked or len(self._tail) >= MIN_FLUSH_IDS

    def add(self, height: int, ids: Sequence[bytes]) -> None:
        """Index block `height`, whose i-th entry has id ids[i] (blocks in height order)."""
        at = map(_LOC.pack, itertools.repeat(height), range(len(ids)))
        with self._lock:
            self._tail.update(zip(ids, at, strict=True))
            self._top = height

    def pending(self) -> int:
        return len(self._tail) + len(self._flushing_tail)

    def lookup(self, ids: Iterable[bytes]) -> dict[bytes, tuple[int, int]]:
        """(height, index) of those `ids` that are in the log."""
        wanted = set(ids)
        with self._lock:
            found = {}
            for tail in (self._tail, self._flushing_tail):
                found.update({eid: _LOC.unpack(tail[eid]) for eid in tail.keys() & wanted})
            runs, filt, gen = list(self._runs), self._filter, self._gen
            if not runs:
                return found
            self._users[gen] += 1
        try:
            missing = wanted.difference(found) if found else wanted
            probe = filt.maybe(missing) if filt is not None else list(missing)
            if probe:
                found.update(self._probe(runs, probe))
        finally:
            with self._lock:
                self._users[gen] -= 1
                if not self._users[gen]:
                    del self._users[gen]
        return found

    def _probe(self, runs: list[str], ids: list[bytes]) -> dict[bytes, tuple[int, int]]:
        """Look `ids` up in every one of `runs`, in one statement."""
        # A join per run: `id IN w` over a UNION ALL cost ~10x as much for a few ids.
        sql = " UNION ALL ".join(
            f"SELECT w.id, t.loc FROM w CROSS JOIN {r} t ON t.id = w.id" for r in runs
        )
        db = self._readers.get()
        # In one read transaction, opened by a first read: the probe is then prepared
        # against that snapshot's schema, which no flush can change under it (prepared
        # outside, it failed with "schema has changed" when runs were created quickly).
        db.execute("BEGIN")
        try:
            db.execute("SELECT 1 FROM runs LIMIT 1").fetchall()
            rows = db.execute(_WANTED + sql, (b"".join(ids), len(ids))).fetchall()
        finally:
            db.execute("COMMIT")
        return {eid: _LOC.unpack(loc) for eid, loc in rows}

    def flush(self, upkeep: bool = True) -> int:
        """Write the tail as a run durably, then take the step of upkeep `due` asked for,
        if any; returns the number of ids written. A pass for upkeep leaves a tail below
        MIN_FLUSH_IDS in memory: upkeep runs on every pass while a merge lasts, and a run
        of whatever few ids arrived since the last pass would only feed more merges.
        Without `upkeep` (the flush on the way down) it writes the tail, whatever its
        size, and nothing else."""
        with self._flushing:
            if not upkeep:
                return self._flush()
            small = self._upkeep_asked and len(self._tail) < MIN_FLUSH_IDS
            n = 0 if small else self._flush()
            if self._upkeep_asked:
                self._upkeep_asked = False
                self._upkeep()
            return n

    def _flush(self) -> int:
        """Swap the tail out whole, so neither side pays a step per id under the lock."""
        with self._lock:
            tail, self._tail = self._tail, {}
            self._flushing_tail = tail
            top = self._top
        if not tail and top <= self._mark:
            return 0
        name = f"run_{self._next}"
        stmts: list[Statement] = [
            ("INSERT OR REPLACE INTO meta VALUES ('indexed_height', ?)", (top,))
        ]
        if tail:
            # Unsorted: SQLite sorts the rows (ORDER BY), without the GIL.
            packed = b"".join(itertools.chain.from_iterable(tail.items()))
            stmts += [
                (_RUN_TABLE.format(name), ()),
                (_INSERT_RUN.format(name), (packed, len(tail))),
                ("INSERT INTO runs VALUES (?, ?)", (name, len(tail))),
                (_SET_META, ("next_run", self._next + 1)),
            ]
        try:
            self._commit(stmts)
        except BaseException:
            with self._lock:
                tail.update(self._tail)
                self._tail, self._flushing_tail = tail, {}
            raise
        if self._filter is not None:
            self._filter.add(tail)  # before the tail stops serving them
        with self._lock:
            if tail:
                self._runs[name] = len(tail)
                self._next += 1
            self._mark = top
            self._flushing_tail = {}
        return len(tail)

    def _commit(self, stmts: Sequence[Statement]) -> None:
        """One transaction, then its pages copied into the file at once: each write to
        the disk stays about one transaction's size instead of piling up in the WAL."""
        transaction(self._db, self.path, stmts)
        self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _upkeep(self) -> None:
        """One step of what keeps lookups cheap: drop, rebuild the filter, or merge."""
        self._drop_retired()
        if self._filter is None or self._filter.count > self._filter.capacity:
            self._build_filter()
        else:
            step = self._next_merge()
            if step is not None:
                self._merge_step(*step)

    def _next_merge(self) -> tuple[int, _Merge | list[str]] | None:
        """The merge of the smallest size class that has one running, or MERGE_FANOUT
        runs not in a merge: small runs keep merging while a large merge runs for long.

        Called under the lock, or from the flushing thread (the only one changing runs)."""
        merging = set(itertools.chain.from_iterable(m.sources for m in self._merges.values()))
        free: dict[int, list[str]] = {}
        for name, rows in self._runs.items():
            if name not in merging:
                free.setdefault(size_class(rows), []).append(name)
        ready = [c for c, names in free.items() if len(names) >= MERGE_FANOUT]
        c = min([*self._merges, *ready], default=None)
        if c is None:
            return None
        return (c, self._merges[c]) if c in self._merges else (c, free[c][:MERGE_FANOUT])

    def _merge_step(self, c: int, merge: _Merge | list[str]) -> None:
        """Copy the next key range of a merge's sources (`merge`, or these runs to start
        one) into its target; with the last, make the target live in their place."""
        stmts: list[Statement] = []
        if isinstance(merge, _Merge):
            m = merge
        else:
            rows = sum(self._runs[s] for s in merge)
            m = _Merge(merge, f"run_{self._next}", rows, _key_bounds(rows))
            self._next += 1
            stmts += [(_SET_META, ("next_run", self._next)), (_RUN_TABLE.format(m.target), ())]
        with self._lock:  # `due` reads the merges
            self._merges[c] = m
        lo, hi = m.bounds[m.step], m.bounds[m.step + 1]
        arms = " UNION ALL ".join(
            f"SELECT id, loc FROM {s} WHERE id >= ?1 AND id < ?2" for s in m.sources
        )
        stmts.append((f"INSERT INTO {m.target} {arms} ORDER BY 1", (lo, hi)))
        last = m.step + 2 == len(m.bounds)
        if last:
            marks = ",".join("?" * len(m.sources))
            stmts += [
                (f"DELETE FROM runs WHERE name IN ({marks})", tuple(m.sources)),
                ("INSERT INTO runs VALUES (?, ?)", (m.target, m.rows)),
            ]
        try:
            self._commit(stmts)
        except BaseException:
            with self._lock:  # its target, if created, is dropped at the next open
                del self._merges[c]
            raise
        m.step += 1
        if last:
            with self._lock:
                del self._merges[c]
                for s in m.sources:
                    del self._runs[s]
                self._runs[m.target] = m.rows
                self._retired.append((self._gen, m.sources))
                self._gen += 1

    def _drop_retired(self) -> None:
        """Drop merged-away runs that no lookup in flight may still name."""
        with self._lock:
            oldest = min(self._users, default=self._gen)
            ready = [names for gen, names in self._retired if gen < oldest]
            self._retired = [(gen, names) for gen, names in self._retired if gen >= oldest]
        stmts: list[Statement] = [
            (f"DROP TABLE IF EXISTS {t}", ()) for t in itertools.chain.from_iterable(ready)
        ]
        if stmts:
            self._commit(stmts)

    def _build_filter(self) -> None:
        """A filter over every id in the live runs (merges keep that set; flushes add)."""
        runs = list(self._runs)
        filt = IdFilter(sum(self._runs.values()) + MIN_FLUSH_IDS)
        for name in runs:
            filt.add(map(itemgetter(0), self._db.execute(f"SELECT id FROM {name}")))
        with self._lock:
            self._filter = filt

    def close(self) -> None:
        self._readers.close()
        self._db.close()


def _is_run(table: str) -> bool:
    return table.startswith("run_") or table == _LEGACY
