"""Blocks: building the namespace table and proofs, and verifying what a server sent.

The sequencer uses the building half; every reader (SDK, rollups, audits) uses the
verifying half, so both sides agree on one definition of a valid block.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from rollup_client.protocol import codec, keys, merkle
from rollup_client.protocol.errors import VerificationError
from rollup_client.wire import sequencer_pb2 as pb


@dataclass(frozen=True, slots=True)
class Header:
    """A block header; `hash` is what the sequencer signs and the next block links to."""

    height: int
    prev_hash: bytes
    time_ms: int
    entry_count: int
    namespace_count: int
    namespace_root: bytes

    @property
    def hash(self) -> bytes:
        return codec.header_hash(
            self.height,
            self.prev_hash,
            self.time_ms,
            self.entry_count,
            self.namespace_count,
            self.namespace_root,
        )

    def to_pb(self) -> pb.BlockHeader:
        return pb.BlockHeader(
            height=self.height,
            prev_hash=self.prev_hash,
            time_ms=self.time_ms,
            entry_count=self.entry_count,
            namespace_count=self.namespace_count,
            namespace_root=self.namespace_root,
        )

    @classmethod
    def from_pb(cls, h: pb.BlockHeader) -> Header:
        return cls(
            h.height, h.prev_hash, h.time_ms, h.entry_count, h.namespace_count, h.namespace_root
        )


@dataclass(frozen=True, slots=True)
class NsRow:
    """One row of a block's namespace table."""

    namespace: str
    count: int
    entries_root: bytes

    def leaf(self) -> bytes:
        return codec.namespace_leaf(self.namespace, self.count, self.entries_root)

    def to_pb(self) -> pb.NamespaceLeaf:
        return pb.NamespaceLeaf(
            namespace=self.namespace, count=self.count, entries_root=self.entries_root
        )


@dataclass(frozen=True, slots=True)
class LogEntry:
    """An entry as read from the log, at its global position."""

    namespace: str
    data: bytes
    height: int
    index: int
    id: bytes


@dataclass(frozen=True, slots=True)
class VerifiedBlock:
    """A block whose signature, namespace proofs and entries have all been checked."""

    header: Header
    hash: bytes
    signature: bytes
    entries: tuple[LogEntry, ...]

    @property
    def height(self) -> int:
        return self.header.height

    @property
    def time_ms(self) -> int:
        return self.header.time_ms


def namespace_table(entries: Sequence[tuple[str, bytes]]) -> list[NsRow]:
    """Sorted namespace table for a block whose i-th entry is (namespace, entry_id)."""
    return table_of([ns for ns, _ in entries], [eid for _, eid in entries])


def table_of(namespaces: Sequence[str], ids: Sequence[bytes]) -> list[NsRow]:
    """`namespace_table` of a block given as columns: entry i is (namespaces[i], ids[i]).

    The sequencer's hot path: a block of one namespace (the common case) is hashed as one
    run, without an object per entry.
    """
    n = len(ids)
    if n == 0:
        return []
    if namespaces.count(namespaces[0]) == n:
        return [NsRow(namespaces[0], n, merkle.root(codec.entry_leaves(range(n), ids)))]
    at: dict[str, list[int]] = {}
    for index, ns in enumerate(namespaces):
        at.setdefault(ns, []).append(index)
    return [
        NsRow(ns, len(idx), merkle.root(codec.entry_leaves(idx, [ids[i] for i in idx])))
        for ns, idx in sorted(at.items())
    ]


def make_header(
    height: int, prev_hash: bytes, time_ms: int, entry_count: int, table: Sequence[NsRow]
) -> Header:
    """The header committing to `table`."""
    return Header(
        height, prev_hash, time_ms, entry_count, len(table), merkle.root([r.leaf() for r in table])
    )


def _leaf_proof(table: Sequence[NsRow], leaves: Sequence[bytes], i: int) -> pb.NamespaceLeafProof:
    return pb.NamespaceLeafProof(
        leaf=table[i].to_pb(), leaf_index=i, path=merkle.audit_path(leaves, i)
    )


def namespace_proof(
    table: Sequence[NsRow], ns: str, entries: Iterable[tuple[int, bytes]]
) -> pb.NamespaceProof:
    """Proof for `ns`: its leaf and all its (index, data) entries, or the leaves around its gap."""
    leaves = [r.leaf() for r in table]
    names = [r.namespace for r in table]
    proof = pb.NamespaceProof(namespace=ns)
    lo, hi = 0, len(names)
    while lo < hi:
        mid = (lo + hi) // 2
        if names[mid] < ns:
            lo = mid + 1
        else:
            hi = mid
    if lo < len(names) and names[lo] == ns:
        proof.present.CopyFrom(_leaf_proof(table, leaves, lo))
        proof.entries.extend(
            pb.IndexedEntry(index=i, entry=pb.Entry(namespace=ns, data=d)) for i, d in entries
        )
        return proof
    if lo > 0:
        proof.left.CopyFrom(_leaf_proof(table, leaves, lo - 1))
    if lo < len(names):
        proof.right.CopyFrom(_leaf_proof(table, leaves, lo))
    return proof


def filtered_block(
    header: Header,
    signature: bytes,
    table: Sequence[NsRow],
    entries: Mapping[str, Sequence[tuple[int, bytes]]],
    namespaces: Sequence[str] | None,
) -> pb.FilteredBlock:
    """The wire form of a block restricted to `namespaces` (None: every namespace).

    `entries` maps each wanted namespace present in the block to its (index, data) pairs.
    """
    wanted = [r.namespace for r in table] if namespaces is None else sorted(set(namespaces))
    return pb.FilteredBlock(
        header=pb.SignedHeader(header=header.to_pb(), hash=header.hash, signature=signature),
        namespaces=[namespace_proof(table, ns, entries.get(ns, ())) for ns in wanted],
    )


def _fail(height: int, what: str) -> VerificationError:
    return VerificationError(f"block {height}: {what}")


def verify_header(sh: pb.SignedHeader, sequencer_key: bytes) -> Header:
    """Check the header's hash and the sequencer's signature over it."""
    header = Header.from_pb(sh.header)
    h = header.hash
    if sh.hash != h:
        raise _fail(header.height, "header hash does not match its fields")
    if not keys.verify(sequencer_key, sh.signature, h):
        raise _fail(header.height, "sequencer signature does not verify")
    return header


def _check_leaf(header: Header, p: pb.NamespaceLeafProof) -> NsRow:
    row = NsRow(p.leaf.namespace, p.leaf.count, p.leaf.entries_root)
    if not merkle.verify_path(
        row.leaf(), p.leaf_index, header.namespace_count, list(p.path), header.namespace_root
    ):
        raise _fail(header.height, f"namespace leaf {row.namespace!r} not in the namespace root")
    return row


def _check_namespace(header: Header, np: pb.NamespaceProof) -> tuple[int, list[LogEntry]]:
    """Verify one namespace proof; return its leaf index (or -1 if absent) and its entries."""
    ns, height = np.namespace, header.height
    if np.HasField("present"):
        row = _check_leaf(header, np.present)
        if row.namespace != ns:
            raise _fail(height, f"proof for {ns!r} carries the leaf of {row.namespace!r}")
        if len(np.entries) != row.count:
            raise _fail(height, f"{ns!r}: {len(np.entries)} entries sent, table says {row.count}")
        out: list[LogEntry] = []
        leaves: list[bytes] = []
        last = -1
        for ie in np.entries:
            if ie.entry.namespace != ns or ie.index <= last or ie.index >= header.entry_count:
                raise _fail(height, f"{ns!r}: entry at index {ie.index} misplaced")
            last = ie.index
            eid = codec.entry_id(ns, ie.entry.data)
            leaves.append(codec.entry_leaf(ie.index, eid))
            out.append(LogEntry(ns, ie.entry.data, height, ie.index, eid))
        if merkle.root(leaves) != row.entries_root:
            raise _fail(height, f"{ns!r}: entries do not match the namespace's entries root")
        return np.present.leaf_index, out
    if np.entries:
        raise _fail(height, f"{ns!r}: entries sent for an absent namespace")
    n = header.namespace_count
    has_l, has_r = np.HasField("left"), np.HasField("right")
    left = _check_leaf(header, np.left) if has_l else None
    right = _check_leaf(header, np.right) if has_r else None
    ok = (
        (left is None or left.namespace < ns)
        and (right is None or ns < right.namespace)
        and (not has_l or not has_r or np.left.leaf_index + 1 == np.right.leaf_index)
        and (has_l or not has_r or np.right.leaf_index == 0)
        and (has_r or not has_l or np.left.leaf_index == n - 1)
        and (has_l or has_r or n == 0)
    )
    if not ok:
        raise _fail(height, f"absence proof for {ns!r} does not bracket it")
    return -1, []


def verify_block(
    fb: pb.FilteredBlock, sequencer_key: bytes, namespaces: Sequence[str] | None
) -> VerifiedBlock:
    """Check everything in a filtered block against the sequencer key.

    With `namespaces` given, each must be proven present (with all its entries) or absent;
    with None, the block must carry every namespace of its table.
    """
    header = verify_header(fb.header, sequencer_key)
    seen: dict[str, int] = {}
    entries: list[LogEntry] = []
    for np in fb.namespaces:
        if np.namespace in seen:
            raise _fail(header.height, f"namespace {np.namespace!r} sent twice")
        seen[np.namespace], es = _check_namespace(header, np)
        entries.extend(es)
    if namespaces is None:
        present = sorted(i for i in seen.values() if i >= 0)
        if present != list(range(header.namespace_count)) or len(entries) != header.entry_count:
            raise _fail(header.height, "block is missing namespaces of its table")
    else:
        missing = set(namespaces) - seen.keys()
        if missing:
            raise _fail(header.height, f"no proof for namespaces {sorted(missing)}")
    entries.sort(key=lambda e: e.index)
    return VerifiedBlock(header, fb.header.hash, fb.header.signature, tuple(entries))


def entry_proof(
    table: Sequence[NsRow], ns: str, ns_entries: Sequence[tuple[int, bytes]], index: int
) -> tuple[pb.NamespaceLeafProof, int, list[bytes]]:
    """Proof for the entry at block `index`: its namespace leaf, its leaf index and audit path.

    `ns_entries` is every (index, entry_id) of namespace `ns` in the block, in order.
    """
    ns_i = [r.namespace for r in table].index(ns)
    pos = [i for i, _ in ns_entries].index(index)
    entry_leaves = [codec.entry_leaf(j, eid) for j, eid in ns_entries]
    leaves = [r.leaf() for r in table]
    return _leaf_proof(table, leaves, ns_i), pos, merkle.audit_path(entry_leaves, pos)


def verify_entry(resp: pb.GetEntryResponse, sequencer_key: bytes) -> LogEntry:
    """Check a GetEntry answer: signed header, namespace leaf, and the entry's audit path."""
    header = verify_header(resp.header, sequencer_key)
    row = _check_leaf(header, resp.namespace_proof)
    ns, idx = resp.entry.namespace, resp.position.index
    if row.namespace != ns or resp.position.height != header.height:
        raise _fail(header.height, "entry proof names another namespace or height")
    eid = codec.entry_id(ns, resp.entry.data)
    if not merkle.verify_path(
        codec.entry_leaf(idx, eid),
        resp.entry_leaf_index,
        row.count,
        list(resp.entry_path),
        row.entries_root,
    ):
        raise _fail(header.height, f"entry {eid.hex()} not in namespace {ns!r}")
    return LogEntry(ns, resp.entry.data, header.height, idx, eid)
