"""An incrementally updated Merkle commitment over numbered slots.

Every key of the ledger (an account, a pending escrow) owns a slot, handed out in log
order, so every replica of the same log numbers its keys identically. The slots are the
leaves of a binary Merkle tree padded with empty subtrees to the next power of two; the
tree keeps every inner node, one flat bytearray per level (64 bytes per slot in all,
about 64 MiB at a million accounts, no Python object per node).

Changing k leaves re-hashes at most k * ceil(log2 n) inner nodes, only on the paths of
the changed slots, whatever the number of other slots: a block's cost follows the keys
it touched, not the size of the ledger. `hashes` counts the inner nodes computed, so the
cost is observable (tests check it; the benchmark reports it).
"""

from __future__ import annotations

import hashlib
import heapq
import struct

from rollup_client.protocol import merkle

EMPTY_LEAF = hashlib.sha256(b"tandem.v1.empty-slot").digest()
_ROOT_TAG = b"tandem.v1.slot-tree\x00"
_sha256 = hashlib.sha256
_H = 32


def _empty_subtrees(depth: int) -> list[bytes]:
    """Hash of an all-empty subtree of each height 0..depth."""
    out = [EMPTY_LEAF]
    for _ in range(depth):
        out.append(merkle.node_hash(out[-1], out[-1]))
    return out


_ZERO = _empty_subtrees(64)


class SlotTree:
    """Merkle tree over leaf hashes at slots 0..n-1, with lazily re-hashed dirty paths."""

    def __init__(self) -> None:
        self._levels: list[bytearray] = [bytearray()]
        self._dirty: set[int] = set()
        self._free: list[int] = []
        self._root: bytes | None = None
        self.hashes = 0

    def __len__(self) -> int:
        return len(self._levels[0]) // _H

    def leaf(self, slot: int) -> bytes:
        """The leaf hash at `slot` (the empty-slot hash for a freed slot)."""
        return bytes(self._levels[0][slot * _H : (slot + 1) * _H])

    def add(self, leaf: bytes) -> int:
        """Store `leaf` in the lowest freed slot, or a new one; return the slot."""
        if self._free:
            slot = heapq.heappop(self._free)
            self.set(slot, leaf)
            return slot
        slot = len(self)
        self._levels[0] += leaf
        self._dirty.add(slot)
        self._root = None
        return slot

    def set(self, slot: int, leaf: bytes) -> None:
        """Replace the leaf at `slot`."""
        self._levels[0][slot * _H : (slot + 1) * _H] = leaf
        self._dirty.add(slot)
        self._root = None

    def free(self, slot: int) -> None:
        """Empty `slot`; the next `add` reuses the lowest freed slot (deterministically)."""
        self.set(slot, EMPTY_LEAF)
        heapq.heappush(self._free, slot)

    def extend(self, leaves: list[bytes]) -> None:
        """Append many leaves at once (genesis, restore); EMPTY_LEAF ones count as freed."""
        start = len(self)
        self._levels[0] += b"".join(leaves)
        self._dirty.update(range(start, len(self)))
        for i, leaf in enumerate(leaves):
            if leaf == EMPTY_LEAF:
                heapq.heappush(self._free, start + i)
        self._root = None

    def root(self) -> bytes:
        """Commitment to the slot count and every leaf; re-hashes only dirty paths."""
        if self._root is None:
            n = len(self)
            depth = (n - 1).bit_length() if n > 1 else 0
            if len(self._dirty) * 4 >= n:
                self._rebuild(depth)
            else:
                self._update(depth)
            self._dirty.clear()
            top = self._levels[depth][:_H] if n else _ZERO[0]
            self._root = hashlib.sha256(_ROOT_TAG + struct.pack(">Q", n) + top).digest()
        return self._root

    def _node(self, level: int, i: int) -> bytes:
        """merkle.node_hash of the two children, hashed from the level's bytes directly: a
        slice of both children at once when the right one exists (no copies to bytes)."""
        below = self._levels[level - 1]
        self.hashes += 1
        pair = below[2 * i * _H : (2 * i + 2) * _H]
        if len(pair) < 2 * _H:
            pair += _ZERO[level - 1]
        return _sha256(merkle.NODE_TAG + pair).digest()

    def _level(self, level: int) -> bytearray:
        while len(self._levels) <= level:
            self._levels.append(bytearray())
        return self._levels[level]

    def _update(self, depth: int) -> None:
        dirty = self._dirty
        n = len(self)
        for level in range(1, depth + 1):
            dirty = {i >> 1 for i in dirty}
            row = self._level(level)
            width = (n + (1 << level) - 1) >> level
            if len(row) < width * _H:
                row += bytes(width * _H - len(row))
            for i in sorted(dirty):
                row[i * _H : (i + 1) * _H] = self._node(level, i)

    def _rebuild(self, depth: int) -> None:
        n = len(self)
        for level in range(1, depth + 1):
            width = (n + (1 << level) - 1) >> level
            row = self._level(level)
            row[:] = b"".join(self._node(level, i) for i in range(width))
