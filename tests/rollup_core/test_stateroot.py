"""The slot tree: same root as a from-scratch reference, and cost bounded by touched paths."""

from __future__ import annotations

import hashlib
import struct

from hypothesis import given
from hypothesis import strategies as st

from rollup_client.protocol import merkle
from rollup_client.protocol.stateroot import EMPTY_LEAF, SlotTree


def reference_root(leaves: list[bytes]) -> bytes:
    """Root by definition: pad to a power of two with empty leaves, hash pairwise."""
    n = len(leaves)
    level = list(leaves) or [EMPTY_LEAF]
    width = 1
    while width < len(level):
        width *= 2
    level += [EMPTY_LEAF] * (width - len(level))
    while len(level) > 1:
        level = [merkle.node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    top = level[0]
    return hashlib.sha256(b"tandem.v1.slot-tree\x00" + struct.pack(">Q", n) + top).digest()


def leaf(i: int) -> bytes:
    return hashlib.sha256(i.to_bytes(8, "big")).digest()


ops = st.lists(
    st.tuples(st.sampled_from(["add", "set", "free", "root"]), st.integers(0, 10_000)),
    max_size=60,
)


@given(ops)
def test_incremental_root_matches_reference(program: list[tuple[str, int]]) -> None:
    tree = SlotTree()
    model: list[bytes] = []
    free: set[int] = set()
    for op, x in program:
        if op == "add":
            slot = tree.add(leaf(x))
            assert slot == (min(free) if free else len(model))
            free.discard(slot)
            if slot == len(model):
                model.append(leaf(x))
            model[slot] = leaf(x)
        elif op in ("set", "free") and model:
            slot = x % len(model)
            if op == "set" and slot not in free:
                tree.set(slot, leaf(x))
                model[slot] = leaf(x)
            elif op == "free" and slot not in free:
                tree.free(slot)
                model[slot] = EMPTY_LEAF
                free.add(slot)
        else:
            assert tree.root() == reference_root(model)
    assert tree.root() == reference_root(model)
    fresh = SlotTree()
    fresh.extend(list(model))
    assert fresh.root() == tree.root()
    if free:
        assert fresh.add(leaf(1)) == min(free)


def test_update_cost_follows_touched_paths_not_tree_size() -> None:
    costs = {}
    for n in (1 << 8, 1 << 14):
        tree = SlotTree()
        tree.extend([leaf(i) for i in range(n)])
        tree.root()
        depth = (n - 1).bit_length()
        for touched in (1, 2, 5):
            before = tree.hashes
            for j in range(touched):
                tree.set((j * 7919) % n, leaf(n + j))
            tree.root()
            cost = tree.hashes - before
            assert cost <= touched * depth
            costs[n, touched] = cost
        assert tree.root() == reference_root([tree.leaf(i) for i in range(n)])
    # One touched key costs exactly one path: 6 more levels for 64x more slots.
    assert costs[1 << 8, 1] == 8
    assert costs[1 << 14, 1] == 14
