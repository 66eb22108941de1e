"""RFC 6962 Merkle trees: roots, audit paths and their verification.

Pure functions over 32-byte SHA-256 hashes. Leaves are hashed with the 0x00 prefix and
inner nodes with 0x01, so a leaf can never be passed off as a node.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()
# The prefix of an inner node's preimage (a leaf's is 0x00); inlined hot loops use it too.
NODE_TAG = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """Hash of one leaf's data (RFC 6962 MTH of a single entry)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash of an inner node."""
    return hashlib.sha256(NODE_TAG + left + right).digest()


def root(leaves: Sequence[bytes]) -> bytes:
    """Merkle tree hash over already-hashed leaves."""
    if not leaves:
        return EMPTY_ROOT
    level = list(leaves)
    sha256 = hashlib.sha256
    # Bottom-up pairing yields the RFC 6962 shape: an odd node is carried up unchanged.
    # Pairs come from two slices, hashed inline: a call and two index lookups per node
    # were a third of the sequencer's cost of sealing a block.
    while len(level) > 1:
        odd = level[-1] if len(level) % 2 else None
        pairs = zip(level[::2], level[1::2], strict=False)  # `odd` has no partner
        level = [sha256(NODE_TAG + a + b).digest() for a, b in pairs]
        if odd is not None:
            level.append(odd)
    return level[0]


def audit_path(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """Sibling hashes from leaf `index` up to the root (RFC 6962 PATH)."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} out of range for tree of {len(leaves)}")
    path: list[bytes] = []
    level = list(leaves)
    i = index
    while len(level) > 1:
        sibling = i ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        nxt = [node_hash(level[j], level[j + 1]) for j in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
        i //= 2
    return path


def root_from_path(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes | None:
    """Root implied by `leaf` at `index` in a tree of `size` leaves, or None if malformed."""
    if not 0 <= index < size:
        return None
    h = leaf
    i, last = index, size - 1
    it = iter(path)
    while last > 0:
        if i % 2 == 1:
            sib = next(it, None)
            if sib is None:
                return None
            h = node_hash(sib, h)
        elif i < last:
            sib = next(it, None)
            if sib is None:
                return None
            h = node_hash(h, sib)
        i //= 2
        last //= 2
    if next(it, None) is not None:
        return None
    return h


def verify_path(leaf: bytes, index: int, size: int, path: Sequence[bytes], expect: bytes) -> bool:
    """True when `path` proves `leaf` at `index` in the tree of `size` leaves with root `expect`."""
    return root_from_path(leaf, index, size, path) == expect
