"""Canonical byte encodings that are hashed or signed.

Protobuf serialisation is not canonical, so nothing Tandem hashes or signs is protobuf:
it is one of the fixed layouts below, each behind its own domain tag.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Iterable, Sequence

from rollup_client.protocol import merkle
from rollup_client.protocol.errors import InvalidArgument

NAMESPACE_RE = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,62}$")
HASH_BYTES = 32
ZERO_HASH = b"\x00" * HASH_BYTES

_BATCH_TAG = b"tandem.v1.batch\x00"
_HEADER_TAG = b"tandem.v1.header\x00"


def check_namespace(ns: str) -> str:
    """Return `ns` if it is a valid namespace name, else raise InvalidArgument."""
    if not NAMESPACE_RE.match(ns):
        raise InvalidArgument(
            f"namespace {ns!r} is invalid: use 1-63 chars of a-z 0-9 _ . - "
            "starting with a letter or digit"
        )
    return ns


def entry_id(namespace: str, data: bytes) -> bytes:
    """The entry's id: SHA-256 of its canonical encoding. Used for dedup and lookup."""
    ns = namespace.encode()
    return hashlib.sha256(struct.pack(">H", len(ns)) + ns + data).digest()


def entry_ids(namespaces: Sequence[str], datas: Sequence[bytes]) -> list[bytes]:
    """`entry_id(ns, d)` for each pair; when every entry has the same namespace (a batch
    usually does), its prefix is encoded once, not per entry."""
    if not namespaces or namespaces.count(namespaces[0]) != len(namespaces):
        return list(map(entry_id, namespaces, datas))
    ns = namespaces[0].encode()
    prefix = struct.pack(">H", len(ns)) + ns
    sha256 = hashlib.sha256
    return [sha256(prefix + d).digest() for d in datas]


def entry_leaf(index: int, eid: bytes) -> bytes:
    """Merkle leaf of an entry at block index `index`, binding its position."""
    return merkle.leaf_hash(struct.pack(">I", index) + eid)


# b"\x00" + u32 index: the leaf prefix of each block index, extended on demand. Replaced,
# never mutated, so a reader in another thread sees a complete list.
_LEAF_PREFIXES: list[bytes] = []


def entry_leaves(indices: Sequence[int], ids: Sequence[bytes]) -> list[bytes]:
    """`entry_leaf(i, eid)` for each pair, without packing each index anew."""
    global _LEAF_PREFIXES
    top = max(indices, default=-1) + 1
    prefixes = _LEAF_PREFIXES
    if top > len(prefixes):
        prefixes = [b"\x00" + struct.pack(">I", i) for i in range(max(top, 2 * len(prefixes)))]
        _LEAF_PREFIXES = prefixes
    sha256 = hashlib.sha256
    return [sha256(prefixes[i] + eid).digest() for i, eid in zip(indices, ids, strict=True)]


def namespace_leaf(namespace: str, count: int, entries_root: bytes) -> bytes:
    """Merkle leaf of one row of the namespace table."""
    ns = namespace.encode()
    return merkle.leaf_hash(
        struct.pack(">H", len(ns)) + ns + struct.pack(">I", count) + entries_root
    )


def batch_digest(chain_id: str, entry_ids: Iterable[bytes], bundle: bool) -> bytes:
    """What a client signs for a batch: the chain, the bundle flag and every entry id."""
    h = hashlib.sha256(_BATCH_TAG)
    cid = chain_id.encode()
    h.update(struct.pack(">H", len(cid)) + cid + (b"\x01" if bundle else b"\x00"))
    h.update(b"".join(entry_ids))
    return h.digest()


def header_hash(
    height: int,
    prev_hash: bytes,
    time_ms: int,
    entry_count: int,
    namespace_count: int,
    namespace_root: bytes,
) -> bytes:
    """Hash of a block header: what the sequencer signs and the next block links to."""
    return hashlib.sha256(
        _HEADER_TAG
        + struct.pack(">Q", height)
        + prev_hash
        + struct.pack(">QII", time_ms, entry_count, namespace_count)
        + namespace_root
    ).digest()
