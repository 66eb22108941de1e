"""Properties of the hashing rules under every proof: RFC 6962 Merkle roots and audit paths,
entry ids and the batch digest."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from rollup_client.protocol import codec, merkle

hashes = st.binary(min_size=32, max_size=32)
leaf_lists = st.lists(hashes, min_size=1, max_size=40)


def _flip(b: bytes, i: int = 0) -> bytes:
    return b[:i] + bytes([b[i] ^ 1]) + b[i + 1 :]


def rfc6962_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 section 2.1 MTH, written from the text: split at the largest power of 2 < n."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return merkle.node_hash(rfc6962_root(leaves[:k]), rfc6962_root(leaves[k:]))


@given(leaf_lists)
def test_root_is_rfc6962(leaves: list[bytes]) -> None:
    assert merkle.root(leaves) == rfc6962_root(leaves)
    assert merkle.root([]) == hashlib.sha256(b"").digest()


@given(leaf_lists, st.data())
def test_audit_paths_verify_and_tampering_fails(leaves: list[bytes], data: st.DataObject) -> None:
    root, n = merkle.root(leaves), len(leaves)
    i = data.draw(st.integers(0, n - 1))
    path = merkle.audit_path(leaves, i)
    assert merkle.verify_path(leaves[i], i, n, path, root)
    other = data.draw(st.integers(0, n).filter(lambda j: j != i))
    if other == n or leaves[other] != leaves[i]:
        assert not merkle.verify_path(leaves[i], other, n, path, root)
    assert not merkle.verify_path(_flip(leaves[i]), i, n, path, root)
    assert not merkle.verify_path(leaves[i], i, n, [*path, bytes(32)], root)
    if path:
        j = data.draw(st.integers(0, len(path) - 1))
        bad = [*path[:j], _flip(path[j]), *path[j + 1 :]]
        assert not merkle.verify_path(leaves[i], i, n, bad, root)
        assert not merkle.verify_path(leaves[i], i, n, path[:-1], root)


@given(st.text(max_size=8), st.binary(max_size=8), st.text(max_size=8), st.binary(max_size=8))
def test_entry_ids_differ_for_different_entries(ns1: str, d1: bytes, ns2: str, d2: bytes) -> None:
    if (ns1, d1) != (ns2, d2):
        assert codec.entry_id(ns1, d1) != codec.entry_id(ns2, d2)


@given(st.lists(hashes, max_size=4), st.booleans())
def test_batch_digest_binds_chain_bundle_and_ids(ids: list[bytes], bundle: bool) -> None:
    d = codec.batch_digest("c", ids, bundle)
    assert d != codec.batch_digest("d", ids, bundle)
    assert d != codec.batch_digest("c", ids, not bundle)
    assert d != codec.batch_digest("c", [*ids, bytes(32)], bundle)
