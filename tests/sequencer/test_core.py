"""The ordering core, driven directly with hypothesis: no store, no sockets, no clock."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollup_client.protocol import block, codec
from rollup_client.protocol.errors import FailedPrecondition, VerificationError
from rollup_client.protocol.keys import SigningKey
from rollup_client.wire import sequencer_pb2 as pb
from sequencer.core import Ack, Acks, Batch, Block, Item, Sequencer

KEY = SigningKey.from_seed(b"\x07" * 32)
NAMESPACES = ["alpha", "beta", "gamma.x"]


def item(ns: str, data: bytes) -> Item:
    return Item(ns, data, codec.entry_id(ns, data))


batches_st = st.lists(
    st.builds(
        lambda pairs, bundle: Batch.of(
            tuple(dict.fromkeys(item(n, d) for n, d in pairs))
            if bundle
            else tuple(item(n, d) for n, d in pairs),
            bundle,
        ),
        st.lists(
            st.tuples(st.sampled_from(NAMESPACES), st.binary(max_size=2)), min_size=1, max_size=6
        ),
        st.booleans(),
    ),
    max_size=6,
)
rounds_st = st.lists(st.tuples(batches_st, st.integers(0, 10_000)), min_size=1, max_size=8)


def wire(blk: Block) -> pb.FilteredBlock:
    """The block as a server would send it with every namespace."""
    per_ns: dict[str, list[tuple[int, bytes]]] = {}
    for i, it in enumerate(blk.items):
        per_ns.setdefault(it.namespace, []).append((i, it.data))
    return block.filtered_block(blk.header, blk.signature, blk.table, per_ns, None)


class Log:
    """An in-memory stand-in for the store: what the shell would look up and write."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.positions: dict[bytes, tuple[int, int]] = {}

    def known(self, batches: Sequence[Batch]) -> dict[bytes, tuple[int, int]]:
        ids = {i for b in batches for i in b.ids}
        return {i: self.positions[i] for i in ids if i in self.positions}

    def write(self, blk: Block) -> None:
        for i, eid in enumerate(blk.ids):
            assert eid not in self.positions, "an id was written twice"
            self.positions[eid] = (blk.header.height, i)
        self.blocks.append(blk)


def run_rounds(
    rounds: list[tuple[list[Batch], int]], max_block: int
) -> tuple[Log, list[tuple[Batch, object]]]:
    core = Sequencer(KEY, None, max_block, genesis_time_ms=5)
    log = Log()
    results: list[tuple[Batch, object]] = []
    for batches, now in rounds:
        pending = list(batches)
        while True:
            cut = core.cut(pending, now, log.known(pending[: core.take(pending)]))
            log.write(cut.block)
            results.extend(zip(pending[: cut.taken], cut.outcomes, strict=True))
            pending = pending[cut.taken :]
            if not pending:
                break
    return log, results


@settings(max_examples=80, deadline=None)
@given(rounds_st, st.integers(1, 12))
def test_chain_is_gap_free_linked_signed_and_time_monotonic(
    rounds: list[tuple[list[Batch], int]], max_block: int
) -> None:
    log, _ = run_rounds(rounds, max_block)
    prev_hash, prev_time = codec.ZERO_HASH, 5
    for height, blk in enumerate(log.blocks):
        v = block.verify_block(wire(blk), KEY.public, None)
        assert v.height == height
        assert blk.header.prev_hash == prev_hash
        assert blk.header.time_ms >= prev_time
        assert [e.id for e in v.entries] == [it.id for it in blk.items]
        prev_hash, prev_time = v.hash, blk.header.time_ms


@settings(max_examples=80, deadline=None)
@given(rounds_st, st.integers(1, 12))
def test_every_ack_points_at_its_entry_and_duplicates_at_the_original(
    rounds: list[tuple[list[Batch], int]], max_block: int
) -> None:
    log, results = run_rounds(rounds, max_block)
    first_ack: dict[bytes, Ack] = {}
    for batch, outcome in results:
        if isinstance(outcome, FailedPrecondition):
            continue
        assert isinstance(outcome, Acks)
        assert [a.id for a in outcome] == [it.id for it in batch.items]
        for a in outcome:
            assert log.blocks[a.height].items[a.index].id == a.id
            if a.id in first_ack:
                assert a.duplicate
                assert (a.height, a.index) == (first_ack[a.id].height, first_ack[a.id].index)
            else:
                first_ack[a.id] = a
    assert set(first_ack) == set(log.positions)


@settings(max_examples=80, deadline=None)
@given(rounds_st, st.integers(1, 12))
def test_bundles_are_all_or_nothing_at_consecutive_positions(
    rounds: list[tuple[list[Batch], int]], max_block: int
) -> None:
    log, results = run_rounds(rounds, max_block)
    for batch, outcome in results:
        if not batch.bundle:
            assert isinstance(outcome, Acks)
            continue
        if isinstance(outcome, FailedPrecondition):
            continue
        assert isinstance(outcome, Acks)
        if all(a.duplicate for a in outcome):
            continue
        assert not any(a.duplicate for a in outcome), "a bundle was split"
        assert len({a.height for a in outcome}) == 1
        first, blk = outcome[0].index, log.blocks[outcome[0].height]
        assert [a.index for a in outcome] == list(range(first, first + len(outcome)))
        assert [blk.items[a.index].id for a in outcome] == [it.id for it in batch.items]


def test_partially_logged_bundle_is_refused_and_writes_nothing() -> None:
    core = Sequencer(KEY, None, 100)
    a, b = item("alpha", b"1"), item("beta", b"2")
    first = core.cut([Batch.of((a,))], 10, {})
    known = {a.id: (0, 0)}
    cut = core.cut([Batch.of((a, b), bundle=True)], 20, known)
    assert isinstance(cut.outcomes[0], FailedPrecondition)
    assert cut.block.items == ()
    assert cut.block.header.prev_hash == first.block.hash


def test_time_holds_steady_when_the_clock_steps_back() -> None:
    core = Sequencer(KEY, None, 10, genesis_time_ms=50)
    times = [core.cut([], now, {}).block.header.time_ms for now in (10, 100, 90, 30, 120)]
    assert times == [50, 100, 100, 100, 120]


def test_block_size_is_bounded_but_a_single_batch_always_fits() -> None:
    core = Sequencer(KEY, None, 3)
    batches = [Batch.of((item("alpha", bytes([i])), item("beta", bytes([i])))) for i in range(3)]
    assert core.take(batches) == 1
    assert core.take([Batch.of(item("alpha", bytes([i])) for i in range(5))]) == 1
    assert core.take([]) == 0


def _one_block() -> Block:
    core = Sequencer(KEY, None, 100)
    items = [item(ns, bytes([i])) for i, ns in enumerate(["beta", "alpha", "beta", "gamma.x"])]
    return core.cut([Batch.of(items)], 10, {}).block


TAMPERS: dict[str, Callable[[pb.FilteredBlock], object]] = {
    "height": lambda fb: setattr(fb.header.header, "height", fb.header.header.height + 1),
    "time": lambda fb: setattr(fb.header.header, "time_ms", fb.header.header.time_ms + 1),
    "prev_hash": lambda fb: setattr(fb.header.header, "prev_hash", b"\x01" * 32),
    "entry_count": lambda fb: setattr(fb.header.header, "entry_count", 5),
    "ns_root": lambda fb: setattr(fb.header.header, "namespace_root", b"\x02" * 32),
    "hash": lambda fb: setattr(fb.header, "hash", b"\x03" * 32),
    "signature": lambda fb: setattr(fb.header, "signature", b"\x04" * 64),
    "entry_data": lambda fb: setattr(fb.namespaces[1].entries[0].entry, "data", b"x"),
    "entry_index": lambda fb: setattr(fb.namespaces[1].entries[1], "index", 3),
    "drop_entry": lambda fb: fb.namespaces[1].entries.pop(),
    "leaf_count": lambda fb: setattr(fb.namespaces[0].present.leaf, "count", 2),
    "leaf_root": lambda fb: setattr(fb.namespaces[0].present.leaf, "entries_root", b"\x05" * 32),
    "leaf_path": lambda fb: fb.namespaces[2].present.path.__setitem__(0, b"\x06" * 32),
    "drop_namespace": lambda fb: fb.namespaces.pop(),
}


@pytest.mark.parametrize("what", sorted(TAMPERS))
def test_tampered_blocks_are_rejected(what: str) -> None:
    fb = wire(_one_block())
    block.verify_block(fb, KEY.public, None)
    TAMPERS[what](fb)
    with pytest.raises(VerificationError):
        block.verify_block(fb, KEY.public, None)


def _flip(raw: bytes, byte: int, xor: int) -> bytes:
    return bytes(b ^ (xor if i == byte else 0) for i, b in enumerate(raw))


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["entry_path", "ns_path", "data", "index"]), st.integers(0, 31))
def test_any_tampered_entry_proof_is_rejected(part: str, byte: int) -> None:
    blk = _one_block()
    entry = 2  # the second "beta" entry: both audit paths are non-empty
    it = blk.items[entry]
    ns_ids = [(i, x.id) for i, x in enumerate(blk.items) if x.namespace == it.namespace]
    leaf, pos, path = block.entry_proof(blk.table, it.namespace, ns_ids, entry)
    resp = pb.GetEntryResponse(
        entry=pb.Entry(namespace=it.namespace, data=it.data),
        position=pb.Position(height=0, index=entry),
        header=pb.SignedHeader(header=blk.header.to_pb(), hash=blk.hash, signature=blk.signature),
        namespace_proof=leaf,
        entry_leaf_index=pos,
        entry_path=path,
    )
    assert block.verify_entry(resp, KEY.public).id == it.id
    if part == "entry_path":
        resp.entry_path[0] = _flip(resp.entry_path[0], byte, 1)
    elif part == "ns_path":
        resp.namespace_proof.path[0] = _flip(resp.namespace_proof.path[0], byte, 1)
    elif part == "data":
        resp.entry.data = _flip(resp.entry.data, 0, byte + 1)
    else:
        resp.position.index = 0
    with pytest.raises(VerificationError):
        block.verify_entry(resp, KEY.public)
