"""The SQLite block store: round trip, restart at the same head, damaged chains refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from rollup_client.protocol import block, codec
from rollup_client.protocol.errors import FailedPrecondition
from rollup_client.protocol.keys import SigningKey
from sequencer import idindex
from sequencer.core import Batch, Block, Item, Sequencer
from sequencer.store import Store, StoredEntry, decode_table, encode_table

KEY = SigningKey.from_seed(b"\x09" * 32)


def item(ns: str, data: bytes) -> Item:
    return Item(ns, data, codec.entry_id(ns, data))


def fill(path: Path, blocks: int, flush: bool = True) -> list[Block]:
    store = Store(path)
    core = Sequencer(KEY, store.recover(KEY.public), 100)
    out = []
    for h in range(blocks):
        items = tuple(item(ns, f"{h}-{i}".encode()) for i, ns in enumerate(["b", "a", "b"]))
        blk = core.cut([Batch.of(items[: h % 4])], 1000 + h, {}).block
        store.write(blk)
        out.append(blk)
    if flush:
        store.index.flush()
    store.close()
    return out


def test_round_trip_and_restart_continues_at_the_next_height(tmp_path: Path) -> None:
    db = tmp_path / "blocks.sqlite"
    written = fill(db, 6)
    store = Store(db)
    head = store.recover(KEY.public)
    assert head == written[-1].head
    reader = store.reader()
    for blk in written:
        sh = reader.header(blk.header.height)
        assert (sh.header, sh.hash, sh.signature, sh.table) == (
            blk.header,
            blk.hash,
            blk.signature,
            blk.table,
        )
        per_ns = reader.entries(blk.header.height, None)
        fb = block.filtered_block(sh.header, sh.signature, sh.table, per_ns, None)
        assert [e.id for e in block.verify_block(fb, KEY.public, None).entries] == [
            it.id for it in blk.items
        ]
    first = written[3].items[0]
    got = reader.entry(first.id)
    assert got is not None
    assert got[0] == StoredEntry(3, 0, first.namespace, first.data)
    assert store.known([first.id, b"\x00" * 32]).keys() == {first.id}
    core = Sequencer(KEY, head, 100)
    nxt = core.cut([], 0, {}).block
    assert nxt.header.height == 6
    assert nxt.header.prev_hash == written[-1].hash
    assert nxt.header.time_ms == written[-1].header.time_ms
    reader.close()
    store.close()


def test_id_index_serves_from_memory_then_disk_and_catches_up_after_a_crash(
    tmp_path: Path,
) -> None:
    db = tmp_path / "blocks.sqlite"
    written = fill(db, 3, flush=False)  # the id index never saw these blocks
    store = Store(db)
    core = Sequencer(KEY, store.recover(KEY.public), 100)
    assert store.index.watermark() == -1
    assert store.index.pending() == 3
    late = item("a", b"late")
    store.write(core.cut([Batch.of((late,))], 0, {}).block)
    assert store.index.pending() == 4
    ids = [late.id, written[1].items[0].id, written[2].items[1].id]
    assert {e: (a.height, a.index) for e, a in store.known(ids).items()} == {
        ids[0]: (3, 0),
        ids[1]: (1, 0),
        ids[2]: (2, 1),
    }
    store.close()  # the tail holding block 3 was never flushed
    store = Store(db)
    store.recover(KEY.public)
    assert store.index.pending() == 4
    got = store.reader().entry(late.id)
    assert got is not None
    assert got[0] == StoredEntry(3, 0, "a", b"late")
    assert store.index.flush() == 4
    assert store.index.watermark() == 3
    store.close()


def test_an_id_index_from_another_store_is_refused(tmp_path: Path) -> None:
    fill(tmp_path / "blocks.sqlite", 4)
    fill(tmp_path / "other" / "blocks.sqlite", 2)
    (tmp_path / "other" / "blocks.ids.sqlite").unlink()
    (tmp_path / "blocks.ids.sqlite").rename(tmp_path / "other" / "blocks.ids.sqlite")
    store = Store(tmp_path / "other" / "blocks.sqlite")
    with pytest.raises(FailedPrecondition, match="another block store"):
        store.recover(KEY.public)
    store.close()


def test_empty_store_has_no_head(tmp_path: Path) -> None:
    store = Store(tmp_path / "blocks.sqlite")
    assert store.recover(KEY.public) is None
    store.close()


@pytest.mark.parametrize(
    "damage",
    [
        "UPDATE headers SET time_ms = time_ms + 1 WHERE height = 5",
        "UPDATE headers SET signature = zeroblob(64) WHERE height = 5",
        "UPDATE entries SET records = x'0000000000000001ff' WHERE height = 5",
        "DELETE FROM entries WHERE height = 5",
        "DELETE FROM headers WHERE height = 2",
        "UPDATE headers SET prev_hash = zeroblob(32), hash = zeroblob(32) WHERE height = 4",
    ],
)
def test_a_damaged_chain_refuses_to_start(tmp_path: Path, damage: str) -> None:
    db = tmp_path / "blocks.sqlite"
    fill(db, 6)
    with sqlite3.connect(db) as conn:
        conn.execute(damage)
    store = Store(db)
    with pytest.raises(FailedPrecondition, match=r"damaged|does not|not match|wrong|link"):
        store.recover(KEY.public)
    store.close()


def test_a_store_from_another_sequencer_key_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "blocks.sqlite"
    fill(db, 2)
    store = Store(db)
    with pytest.raises(FailedPrecondition, match="signature"):
        store.recover(SigningKey.from_seed(b"\x01" * 32).public)
    store.close()


def test_namespace_table_blob_round_trips() -> None:
    table = tuple(block.namespace_table([("zeta", b"\x01" * 32), ("a", b"\x02" * 32)]))
    assert decode_table(encode_table(table)) == table
    assert decode_table(b"") == ()


def test_a_block_that_does_not_decode_while_rebuilding_ids_refuses_recovery(
    tmp_path: Path,
) -> None:
    db = tmp_path / "blocks.sqlite"
    fill(db, 3, flush=False)  # blocks 1 and 2 must be re-read for their ids
    with sqlite3.connect(db) as raw:
        raw.execute("UPDATE entries SET records = x'0000' WHERE height = 1")
    store = Store(db)
    with pytest.raises(FailedPrecondition, match=r"block 1 .* does not decode"):
        store.recover(KEY.public)
    store.close()


def test_a_sequencer_killed_mid_merge_restarts_with_every_id_indexed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(idindex, "MIN_FLUSH_IDS", 4)
    monkeypatch.setattr(idindex, "MERGE_FANOUT", 2)
    monkeypatch.setattr(idindex, "MERGE_STEP_IDS", 3)
    db = tmp_path / "blocks.sqlite"
    store = Store(db)
    core = Sequencer(KEY, store.recover(KEY.public), 100)
    logged: dict[bytes, tuple[int, int]] = {}

    def write(blocks: int, upkeep: bool = True) -> None:
        for _ in range(blocks):
            items = tuple(item("a", f"{len(logged)}-{i}".encode()) for i in range(3))
            blk = core.cut([Batch.of(items)], 0, {}).block
            store.write(blk)
            logged.update({it.id: (blk.header.height, i) for i, it in enumerate(items)})
            if upkeep and store.index.due():
                store.index.flush()

    write(4)
    while not store.index._merges:
        write(1)
    mark = store.index.watermark()
    write(1, upkeep=False)  # above the watermark: rebuilt from the blocks after the kill
    store.close()  # killed with a merge half done: its target is not live
    store = Store(db)
    assert store.recover(KEY.public) is not None
    assert store.index.watermark() == mark
    assert store.index.pending() > 0
    assert {e: (a.height, a.index) for e, a in store.known(logged).items()} == logged
    while store.index.due():
        store.index.flush()
    assert store.index.pending() == 0
    assert len(store.index.runs()) < 4
    assert {e: (a.height, a.index) for e, a in store.known(logged).items()} == logged
    store.close()
