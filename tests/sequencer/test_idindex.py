"""The id index's sorted runs: lookups against a dict model across flushes, merges,
reopens and crashes at every transaction, and while another thread flushes and merges."""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from sequencer import idfilter, idindex
from sequencer.idindex import IdIndex
from sequencer.sqlite_files import Statement

_counter = itertools.count()


def new_ids(n: int) -> list[bytes]:
    return [hashlib.sha256(b"%d" % next(_counter)).digest() for _ in range(n)]


@pytest.fixture
def small(monkeypatch: pytest.MonkeyPatch) -> None:
    """Thresholds small enough that a few blocks flush, merge in steps, rebuild the filter."""
    monkeypatch.setattr(idindex, "MIN_FLUSH_IDS", 10)
    monkeypatch.setattr(idindex, "MERGE_FANOUT", 2)
    monkeypatch.setattr(idindex, "MERGE_STEP_IDS", 7)
    monkeypatch.setattr(idfilter, "MIN_IDS", 8)
    monkeypatch.setattr(idfilter, "SLICE_IDS", 3)


def step(idx: IdIndex) -> None:
    """One pass of the sequencer's maintenance loop."""
    idx.due()
    idx.flush()


class Crash(Exception):
    """A simulated kill -9 around one transaction."""


def run_tables(idx: IdIndex) -> set[str]:
    rows = idx._db.execute("SELECT name FROM sqlite_master WHERE type='table'")
    return {name for (name,) in rows if name.startswith("run_")}


class IndexMachine(RuleBasedStateMachine):
    """Random blocks, flushes, upkeep, reopens and crashes, checked against a dict."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        for f in path.parent.glob(path.name + "*"):
            f.unlink()
        self.blocks: list[list[bytes]] = []
        self.model: dict[bytes, tuple[int, int]] = {}
        self.idx = IdIndex(path)

    def recover(self) -> None:
        """What Store.recover does: the blocks above the watermark go back into the tail."""
        self.idx = IdIndex(self.path)
        assert self.idx.watermark() < len(self.blocks)
        for h in range(self.idx.watermark() + 1, len(self.blocks)):
            self.idx.add(h, self.blocks[h])
        # Nothing but the live runs is left on disk after an open.
        assert run_tables(self.idx) == set(self.idx.runs())

    @rule(n=st.integers(0, 12))
    def add_block(self, n: int) -> None:
        ids = new_ids(n)
        h = len(self.blocks)
        self.blocks.append(ids)
        self.model.update({eid: (h, i) for i, eid in enumerate(ids)})
        self.idx.add(h, ids)

    @rule()
    def flush(self) -> None:
        before = self.idx.pending()
        assert self.idx.flush() == before
        assert self.idx.pending() == 0
        assert self.idx.watermark() == len(self.blocks) - 1

    @rule(steps=st.integers(1, 8))
    def upkeep(self, steps: int) -> None:
        for _ in range(steps):
            if not self.idx.due():
                break
            self.idx.flush()

    @rule()
    def reopen(self) -> None:
        self.idx.close()
        self.recover()

    @rule(at=st.integers(0, 6), committed=st.booleans())
    def crash(self, at: int, committed: bool) -> None:
        """Die just before (or just after) the at-th transaction from now commits."""
        real = self.idx._commit
        calls = itertools.count()

        def commit(stmts: Sequence[Statement]) -> None:
            if next(calls) == at:
                if committed:
                    real(stmts)
                raise Crash
            real(stmts)

        self.idx._commit = commit  # type: ignore[method-assign]
        try:
            for _ in range(at + 1):
                step(self.idx)
        except Crash:
            pass
        self.idx.close()
        self.recover()

    @invariant()
    def lookups_match_the_model(self) -> None:
        known = list(self.model)[-150:] + list(self.model)[:50]
        asked = known + new_ids(5)
        assert self.idx.lookup(asked) == {eid: self.model[eid] for eid in known}

    @invariant()
    def runs_are_bounded(self) -> None:
        # Each size class waits with fewer than MERGE_FANOUT runs, plus what a merge
        # in progress holds and the (small) runs written while it ran.
        assert len(self.idx.runs()) <= 40

    def teardown(self) -> None:
        self.idx.close()


def test_lookups_match_a_dict_through_flushes_merges_reopens_and_crashes(
    small: None, tmp_path: Path
) -> None:
    def machine() -> IndexMachine:
        return IndexMachine(tmp_path / "x.ids.sqlite")

    # hypothesis annotates the factory as a class, though its docs (and its code) take any
    # callable that returns a machine.
    run_state_machine_as_test(
        machine,  # type: ignore[arg-type]
        settings=settings(
            max_examples=60,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


def fill(idx: IdIndex, blocks: int, per: int, start: int = 0) -> dict[bytes, tuple[int, int]]:
    model = {}
    for h in range(start, start + blocks):
        ids = new_ids(per)
        idx.add(h, ids)
        model.update({eid: (h, i) for i, eid in enumerate(ids)})
    return model


def test_a_merge_is_visible_only_once_complete_and_a_crash_mid_merge_loses_nothing(
    small: None, tmp_path: Path
) -> None:
    path = tmp_path / "x.ids.sqlite"
    idx = IdIndex(path)
    model = fill(idx, 2, 10)
    step(idx)  # one run of 20, and the filter
    model |= fill(idx, 2, 10, start=2)
    idx.flush()  # a second run: two of one class, but a flush alone does no upkeep
    assert not idx._merges
    step(idx)  # the merge's first key range
    assert len(idx.runs()) == 2
    assert idx.due()
    (merge,) = idx._merges.values()
    assert merge.step == 1
    target = merge.target
    assert target in run_tables(idx)
    assert target not in idx.runs()
    assert idx.lookup(model) == model
    idx.close()  # killed mid-merge
    idx = IdIndex(path)
    assert idx.watermark() == 3
    assert idx.pending() == 0
    assert run_tables(idx) == set(idx.runs())
    assert target not in run_tables(idx)
    assert idx.lookup(model) == model
    while idx.due():
        idx.flush()
    assert len(idx.runs()) == 1
    assert idx.lookup(model) == model
    idx.close()


def test_an_upkeep_pass_leaves_a_small_tail_in_memory(small: None, tmp_path: Path) -> None:
    """Upkeep (here the first filter) runs on every maintenance pass while it is due;
    writing whatever tail there is each time would make runs of a few ids, which only
    feed more merges."""
    idx = IdIndex(tmp_path / "x.ids.sqlite")
    model = fill(idx, 1, 3)
    assert idx.due()
    assert idx.flush() == 0
    assert idx.pending() == 3
    assert not idx.runs()
    assert idx.watermark() == -1
    assert idx.lookup(model) == model
    model |= fill(idx, 1, 8, start=1)
    step(idx)
    assert idx.pending() == 0
    assert list(idx.runs().values()) == [11]
    assert idx.watermark() == 1
    assert idx.lookup(model) == model
    idx.close()


def test_the_flush_on_the_way_down_writes_any_tail_and_no_upkeep(
    small: None, tmp_path: Path
) -> None:
    path = tmp_path / "x.ids.sqlite"
    idx = IdIndex(path)
    model = fill(idx, 1, 3)
    assert idx.due()  # the first filter would be built by a maintenance pass
    assert idx.flush(upkeep=False) == 3
    assert idx.pending() == 0
    assert list(idx.runs().values()) == [3]
    assert idx._filter is None
    idx.close()
    idx = IdIndex(path)
    assert idx.watermark() == 0
    assert idx.lookup(model) == model
    idx.close()


def test_a_legacy_single_table_index_is_adopted_as_a_run(tmp_path: Path) -> None:
    path = tmp_path / "x.ids.sqlite"
    idx = IdIndex(path)
    ids = new_ids(3)
    db = idx._db
    db.execute("CREATE TABLE ids (id BLOB PRIMARY KEY, loc BLOB NOT NULL) WITHOUT ROWID")
    for i, eid in enumerate(ids):
        db.execute("INSERT INTO ids VALUES (?, ?)", (eid, idindex._LOC.pack(5, i)))
    db.execute("INSERT INTO meta VALUES ('indexed_height', 5), ('rows', 3)")
    db.execute("DROP TABLE runs")
    idx.close()
    idx = IdIndex(path)
    assert idx.runs() == {"ids": 3}
    assert idx.watermark() == 5
    assert idx.lookup([*ids, *new_ids(1)]) == {eid: (5, i) for i, eid in enumerate(ids)}
    idx.close()


def test_lookups_stay_right_while_another_thread_flushes_and_merges(
    small: None, tmp_path: Path
) -> None:
    idx = IdIndex(tmp_path / "x.ids.sqlite")
    model: dict[bytes, tuple[int, int]] = {}
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[BaseException] = []

    def run_writer() -> None:
        try:
            for h in range(400):
                ids = new_ids(5)
                with lock:
                    idx.add(h, ids)
                    model.update({eid: (h, i) for i, eid in enumerate(ids)})
                if idx.due():
                    idx.flush()
        except BaseException as exc:
            errors.append(exc)
        finally:
            stop.set()

    t = threading.Thread(target=run_writer)
    t.start()
    checks = 0
    while not stop.is_set() or checks == 0:
        with lock:
            known = dict(model)
        got = idx.lookup([*known, *new_ids(3)])
        assert got == known
        checks += 1
    t.join()
    assert not errors
    assert checks > 10
    assert len(idx.runs()) > 1
    assert idx.lookup(model) == model
    idx.close()


def test_runs_merged_away_are_dropped_only_after_the_lookups_reading_them(
    small: None, tmp_path: Path
) -> None:
    idx = IdIndex(tmp_path / "x.ids.sqlite")
    model = fill(idx, 2, 10)
    step(idx)
    model |= fill(idx, 2, 10, start=2)
    step(idx)  # two runs
    step(idx)  # the first step of their merge
    assert idx._merges
    sources = set(idx.runs())
    entered, release = threading.Event(), threading.Event()
    probe = idx._probe

    def slow_probe(runs: list[str], ids: list[bytes]) -> dict[bytes, tuple[int, int]]:
        entered.set()
        release.wait(10)
        return probe(runs, ids)

    idx._probe = slow_probe  # type: ignore[method-assign]
    got: dict[bytes, tuple[int, int]] = {}
    reader = threading.Thread(target=lambda: got.update(idx.lookup(model)))
    reader.start()
    assert entered.wait(10)
    while idx._merges:
        step(idx)
    step(idx)
    assert sources <= run_tables(idx)
    assert sources.isdisjoint(idx.runs())
    release.set()
    reader.join()
    assert got == model
    step(idx)
    assert run_tables(idx) == set(idx.runs())
    idx.close()
