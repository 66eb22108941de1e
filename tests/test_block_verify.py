"""Properties of block verification: honest proofs verify, and every tampered header field,
signature, entry, index, namespace leaf, audit path and absence bracket is rejected (the
Merkle and codec rules under them: test_merkle_codec.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollup_client.protocol import block, codec
from rollup_client.protocol.errors import VerificationError
from rollup_client.wire import sequencer_pb2 as pb
from tests.sdk.chain import SEQUENCER, seal

KEY = SEQUENCER.public
NAMES = ["a", "b", "c", "d", "e", "swap"]

hashes = st.binary(min_size=32, max_size=32)
entry_lists = st.lists(
    st.tuples(st.sampled_from(NAMES), st.binary(max_size=12)), max_size=24, unique=True
)
queries = st.none() | st.lists(st.sampled_from([*NAMES, "0", "zz"]), unique=True, max_size=5)


# ---- blocks -----------------------------------------------------------------------------


def _flip(b: bytes, i: int = 0) -> bytes:
    if not b:
        return b"\x00"
    i %= len(b)
    return b[:i] + bytes([b[i] ^ 1]) + b[i + 1 :]


Tamper = Callable[[pb.FilteredBlock], bool]


def _header_field(name: str) -> Tamper:
    def tamper(fb: pb.FilteredBlock) -> bool:
        h = fb.header.header
        value = getattr(h, name)
        setattr(h, name, _flip(value) if isinstance(value, bytes) else value + 1)
        return True

    return tamper


def _resigned_header_field(name: str) -> Tamper:
    """Change a field and fix the hash, but the signature cannot be fixed."""

    def tamper(fb: pb.FilteredBlock) -> bool:
        _header_field(name)(fb)
        fb.header.hash = block.Header.from_pb(fb.header.header).hash
        return True

    return tamper


def _proofs(fb: pb.FilteredBlock, present: bool) -> list[pb.NamespaceProof]:
    return [p for p in fb.namespaces if p.HasField("present") == present]


def _with_entries(fb: pb.FilteredBlock) -> list[pb.NamespaceProof]:
    return [p for p in _proofs(fb, True) if p.entries]


def _entry_data(fb: pb.FilteredBlock) -> bool:
    ps = _with_entries(fb)
    if ps:
        ps[0].entries[0].entry.data = ps[0].entries[0].entry.data + b"!"
    return bool(ps)


def _entry_index(fb: pb.FilteredBlock) -> bool:
    ps = _with_entries(fb)
    if ps:
        ps[-1].entries[-1].index += 1
    return bool(ps)


def _entry_namespace(fb: pb.FilteredBlock) -> bool:
    ps = _with_entries(fb)
    if ps:
        ps[0].entries[0].entry.namespace = "zz"
    return bool(ps)


def _entry_dropped(fb: pb.FilteredBlock) -> bool:
    ps = _with_entries(fb)
    if ps:
        del ps[0].entries[-1]
    return bool(ps)


def _entry_added(fb: pb.FilteredBlock) -> bool:
    ps = _with_entries(fb)
    if ps:
        last = ps[0].entries[-1]
        ps[0].entries.add(index=last.index + 1, entry=pb.Entry(namespace=last.entry.namespace))
    return bool(ps)


def _entries_swapped(fb: pb.FilteredBlock) -> bool:
    ps = [p for p in _with_entries(fb) if len(p.entries) > 1]
    if ps:
        e = ps[0].entries
        a, b = pb.IndexedEntry(), pb.IndexedEntry()
        a.CopyFrom(e[0])
        b.CopyFrom(e[1])
        e[0].CopyFrom(b)
        e[1].CopyFrom(a)
    return bool(ps)


def _leaves(fb: pb.FilteredBlock) -> list[pb.NamespaceLeafProof]:
    out = []
    for p in fb.namespaces:
        out += [getattr(p, f) for f in ("present", "left", "right") if p.HasField(f)]
    return out


def _leaf(change: Callable[[pb.NamespaceLeafProof], bool]) -> Tamper:
    def tamper(fb: pb.FilteredBlock) -> bool:
        return any(change(lp) for lp in _leaves(fb)[:1])

    return tamper


def _leaf_count(lp: pb.NamespaceLeafProof) -> bool:
    lp.leaf.count += 1
    return True


def _leaf_root(lp: pb.NamespaceLeafProof) -> bool:
    lp.leaf.entries_root = _flip(lp.leaf.entries_root)
    return True


def _leaf_name(lp: pb.NamespaceLeafProof) -> bool:
    lp.leaf.namespace += "x"
    return True


def _leaf_index(lp: pb.NamespaceLeafProof) -> bool:
    lp.leaf_index += 1
    return True


def _path_byte(lp: pb.NamespaceLeafProof) -> bool:
    if lp.path:
        lp.path[0] = _flip(lp.path[0])
    return bool(lp.path)


def _path_extra(lp: pb.NamespaceLeafProof) -> bool:
    lp.path.append(bytes(32))
    return True


def _absent_side_dropped(fb: pb.FilteredBlock) -> bool:
    for p in _proofs(fb, False):
        if p.HasField("left") and p.HasField("right"):
            p.ClearField("left" if len(p.namespace) % 2 else "right")
            return True
        if p.HasField("left") or p.HasField("right"):
            p.ClearField("left")
            p.ClearField("right")
            return True
    return False


def _absent_sides_swapped(fb: pb.FilteredBlock) -> bool:
    for p in _proofs(fb, False):
        if p.HasField("left") and p.HasField("right"):
            left, right = pb.NamespaceLeafProof(), pb.NamespaceLeafProof()
            left.CopyFrom(p.left)
            right.CopyFrom(p.right)
            p.left.CopyFrom(right)
            p.right.CopyFrom(left)
            return True
    return False


def _present_claimed_absent(fb: pb.FilteredBlock) -> bool:
    """Hide a present namespace behind its (non-adjacent) neighbours' leaves."""
    ps = _proofs(fb, True)
    full = {p.present.leaf_index: p.present for p in ps}
    for p in ps:
        i = p.present.leaf_index
        if i - 1 in full and i + 1 in full:
            left, right = full[i - 1], full[i + 1]
            p.ClearField("present")
            del p.entries[:]
            p.left.CopyFrom(left)
            p.right.CopyFrom(right)
            return True
    return False


def _proof_doubled(fb: pb.FilteredBlock) -> bool:
    if fb.namespaces:
        fb.namespaces.add().CopyFrom(fb.namespaces[0])
    return bool(fb.namespaces)


def _signature(fb: pb.FilteredBlock) -> bool:
    fb.header.signature = _flip(fb.header.signature, 5)
    return True


def _hash(fb: pb.FilteredBlock) -> bool:
    fb.header.hash = _flip(fb.header.hash)
    return True


HEADER_FIELDS = [
    "height",
    "prev_hash",
    "time_ms",
    "entry_count",
    "namespace_count",
    "namespace_root",
]
TAMPERS: dict[str, Tamper] = {
    **{f"header.{f}": _header_field(f) for f in HEADER_FIELDS},
    **{f"resigned header.{f}": _resigned_header_field(f) for f in HEADER_FIELDS},
    "signature": _signature,
    "hash": _hash,
    "entry data": _entry_data,
    "entry index": _entry_index,
    "entry namespace": _entry_namespace,
    "entry dropped": _entry_dropped,
    "entry added": _entry_added,
    "entries swapped": _entries_swapped,
    "leaf count": _leaf(_leaf_count),
    "leaf entries root": _leaf(_leaf_root),
    "leaf namespace": _leaf(_leaf_name),
    "leaf index": _leaf(_leaf_index),
    "audit path byte": _leaf(_path_byte),
    "audit path extra": _leaf(_path_extra),
    "absence bracket side dropped": _absent_side_dropped,
    "absence bracket sides swapped": _absent_sides_swapped,
    "present namespace claimed absent": _present_claimed_absent,
    "namespace proof doubled": _proof_doubled,
}


def _expected(entries: list[tuple[str, bytes]], query: list[str] | None) -> list[tuple[str, bytes]]:
    return [(ns, d) for ns, d in entries if query is None or ns in query]


@settings(max_examples=60, deadline=None)
@given(entry_lists, queries, st.integers(0, 2**40))
def test_honest_blocks_verify_and_every_tamper_is_rejected(
    entries: list[tuple[str, bytes]], query: list[str] | None, height: int
) -> None:
    sealed = seal(height, hashlib.sha256(b"parent").digest(), 5_000, entries)
    vb = block.verify_block(sealed.filtered(query), KEY, query)
    assert vb.height == height
    assert vb.hash == sealed.header.hash
    assert [(e.namespace, e.data) for e in vb.entries] == _expected(entries, query)
    assert [e.index for e in vb.entries] == [
        i for i, (ns, _) in enumerate(entries) if query is None or ns in query
    ]
    for name, tamper in TAMPERS.items():
        fb = sealed.filtered(query)
        if tamper(fb):
            try:
                block.verify_block(fb, KEY, query)
            except VerificationError:
                continue
            pytest.fail(f"tamper {name!r} was accepted")


@given(entry_lists.filter(bool), queries)
def test_a_missing_namespace_proof_is_rejected(
    entries: list[tuple[str, bytes]], query: list[str] | None
) -> None:
    sealed = seal(1, bytes(32), 1, entries)
    fb = sealed.filtered(query)
    if fb.namespaces:
        del fb.namespaces[len(fb.namespaces) // 2]
        with pytest.raises(VerificationError):
            block.verify_block(fb, KEY, query)


def test_another_key_is_rejected() -> None:
    sealed = seal(0, codec.ZERO_HASH, 1, [("a", b"x")])
    with pytest.raises(VerificationError, match="signature"):
        block.verify_block(sealed.filtered(None), bytes(32), None)


def _entry_data_changed(r: pb.GetEntryResponse) -> None:
    r.entry.data += b"!"


def _entry_namespace_changed(r: pb.GetEntryResponse) -> None:
    r.entry.namespace += "x"


def _position_index(r: pb.GetEntryResponse) -> None:
    r.position.index += 1


def _position_height(r: pb.GetEntryResponse) -> None:
    r.position.height += 1


def _entry_header_time(r: pb.GetEntryResponse) -> None:
    r.header.header.time_ms += 1


def _entry_signature(r: pb.GetEntryResponse) -> None:
    r.header.signature = _flip(r.header.signature, 9)


def _entry_leaf_index(r: pb.GetEntryResponse) -> None:
    r.entry_leaf_index += 1


def _entry_path_extra(r: pb.GetEntryResponse) -> None:
    r.entry_path.append(bytes(32))


def _on_namespace_leaf(
    change: Callable[[pb.NamespaceLeafProof], bool],
) -> Callable[[pb.GetEntryResponse], None]:
    def tamper(r: pb.GetEntryResponse) -> None:
        change(r.namespace_proof)

    return tamper


ENTRY_TAMPERS: dict[str, Callable[[pb.GetEntryResponse], None]] = {
    "data": _entry_data_changed,
    "namespace": _entry_namespace_changed,
    "index": _position_index,
    "height": _position_height,
    "header time": _entry_header_time,
    "signature": _entry_signature,
    "namespace leaf count": _on_namespace_leaf(_leaf_count),
    "namespace leaf root": _on_namespace_leaf(_leaf_root),
    "namespace leaf index": _on_namespace_leaf(_leaf_index),
    "namespace leaf path extra": _on_namespace_leaf(_path_extra),
    "entry leaf index": _entry_leaf_index,
    "entry path extra": _entry_path_extra,
}


@settings(max_examples=40, deadline=None)
@given(entry_lists.filter(bool), st.data())
def test_entry_proofs_verify_and_every_tamper_is_rejected(
    entries: list[tuple[str, bytes]], data: st.DataObject
) -> None:
    sealed = seal(3, bytes(32), 7, entries)
    index = data.draw(st.integers(0, len(entries) - 1))
    ns, payload = entries[index]
    got = block.verify_entry(sealed.entry(index), KEY)
    assert (got.namespace, got.data, got.height, got.index) == (ns, payload, 3, index)
    assert got.id == codec.entry_id(ns, payload)
    for name, tamper in ENTRY_TAMPERS.items():
        resp = sealed.entry(index)
        tamper(resp)
        try:
            block.verify_entry(resp, KEY)
        except VerificationError:
            continue
        pytest.fail(f"entry tamper {name!r} was accepted")
    resp = sealed.entry(index)
    if resp.entry_path:
        resp.entry_path[0] = _flip(resp.entry_path[0])
        with pytest.raises(VerificationError):
            block.verify_entry(resp, KEY)
