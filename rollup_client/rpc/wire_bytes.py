"""Protobuf wire bytes joined by hand, for the hot paths: every hand-made message is
written here and nowhere else.

Building a protobuf object per entry (an `Entry` in every request, an `EntryAck` and a
`Position` in every answer, an `IndexedEntry` in every subscriber's proof) and reading
each field back cost more Python time per entry than hashing it. These join whole
messages from a few shared byte strings with no Python step per entry. The sequencer
answers a run of fresh entries with `ack_run`, and the SDK, which knows the ids it sent,
recognises that answer by comparing it byte for byte with the same encoding; any other
answer is parsed and checked field by field. Requests laid out as `batch_request` writes
them are read back by `rollup_client.rpc.submit_reader`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from rollup_client.protocol import block
from rollup_client.protocol.codec import HASH_BYTES

MAX_UINT32 = (1 << 32) - 1
# SubmitBatchRequest.linger_ms: field 5, varint.
LINGER_TAG = 0x28
# NamespaceProof.entries (field 5) and IndexedEntry.index (1, varint).
_ENTRIES_TAG, _INDEX_TAG = b"\x2a", b"\x08"


def varint(n: int) -> bytes:
    """Protobuf base-128 varint of `n` >= 0."""
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def field(number: int, value: bytes) -> bytes:
    """A length-delimited field (bytes, string or message) with its tag."""
    return bytes((number << 3 | 2,)) + varint(len(value)) + value


def entry_head(namespace: bytes, data_len: int) -> bytes:
    """Everything of a field-2 Entry (SubmitBatchRequest.entries, IndexedEntry.entry)
    before its data; the data field is written even when empty."""
    body_len = len(namespace) + 2 + len(varint(len(namespace))) + len(varint(data_len)) + data_len
    return b"\x12" + varint(body_len) + field(1, namespace) + b"\x12" + varint(data_len)


# The lengths and indices a subscriber's entries need, looked up once computed.
_small_varint = lru_cache(maxsize=1 << 14)(varint)


def batch_request(
    client_key: bytes,
    entries: Sequence[tuple[str, bytes]],
    bundle: bool,
    signature: bytes,
    linger_ms: int = 0,
) -> bytes:
    """A serialized SubmitBatchRequest; entries sharing a namespace and a size share the
    bytes before their data."""
    heads: dict[tuple[str, int], bytes] = {}
    parts: list[bytes] = [b""] * (2 * len(entries))
    for k, (ns, data) in enumerate(entries):
        key = (ns, len(data))
        head = heads.get(key)
        if head is None:
            head = heads[key] = entry_head(ns.encode(), len(data))
        parts[2 * k] = head
        parts[2 * k + 1] = data
    tail = (b"\x18\x01" if bundle else b"") + field(4, signature)
    if linger_ms:
        tail += bytes((LINGER_TAG,)) + varint(linger_ms)
    return field(1, client_key) + b"".join(parts) + tail


# For each length of the encoded height field: the leading bytes of the EntryAck of block
# index i, `acks` tag and length, `position` tag and length, Position.index; extended on
# demand, replaced and never mutated, so a reader in another thread sees a whole list.
_RUN_HEADS: dict[int, list[bytes]] = {}
# Indices up to here are kept in that table; beyond (no block of ours is that large, but an
# answer may claim any index) each is encoded when asked for, never a table that large.
_RUN_HEADS_KEPT = 1 << 16


def _run_heads(height_len: int, top: int) -> list[bytes]:
    table = _RUN_HEADS.get(height_len, [])
    if top > len(table):
        table = [_run_head(i, height_len) for i in range(max(top, 2 * len(table)))]
        _RUN_HEADS[height_len] = table
    return table


def _run_head(i: int, height_len: int) -> bytes:
    index = b"\x10" + varint(i)
    position = len(index) + height_len
    return bytes((0x0A, 4 + HASH_BYTES + position, 0x12, position)) + index


def ack_run(ids: Sequence[bytes], height: int, first: int) -> bytes:
    """The SubmitBatchResponse acknowledging `ids` as fresh at (height, first + k).

    In a run of fresh positions each EntryAck is (position first: protobuf parsers take
    fields in any order) a prefix that depends only on the index, the block's height field,
    and the id, so the answer is joined from three columns. With exactly one id these are
    also the bytes of a SubmitResponse (`ack` is field 1 too).
    """
    n = len(ids)
    height_field = b"\x08" + varint(height)
    if first + n <= _RUN_HEADS_KEPT:
        heads = _run_heads(len(height_field), first + n)[first : first + n]
    else:
        heads = [_run_head(i, len(height_field)) for i in range(first, first + n)]
    parts: list[bytes] = [b""] * (3 * n)
    parts[::3] = heads
    parts[1::3] = [height_field + b"\x0a\x20"] * n
    parts[2::3] = ids
    return b"".join(parts)


def ack(eid: bytes, height: int, index: int, duplicate: bool) -> bytes:
    """One SubmitBatchResponse.acks field: EntryAck{entry_id, position, duplicate}."""
    position = b"\x08" + varint(height) + b"\x10" + varint(index)
    body = b"\x0a\x20" + eid + field(2, position)
    if duplicate:
        body += b"\x18\x01"
    return field(1, body)


def acks(
    ids: Sequence[bytes],
    height: int,
    first: int,
    positions: Sequence[tuple[int, int, bool]] | None,
) -> bytes:
    """A batch's SubmitBatchResponse: the run `ack_run` writes when `positions` is None,
    else one `ack` per (height, index, duplicate). With exactly one ack these are also the
    bytes of a SubmitResponse (`ack` is field 1 too)."""
    if positions is None:
        return ack_run(ids, height, first)
    return b"".join([ack(eid, h, i, dup) for eid, (h, i, dup) in zip(ids, positions, strict=True)])


def proof_field(
    table: Sequence[block.NsRow], ns: str, entries: Sequence[tuple[int, bytes]]
) -> bytes:
    """FilteredBlock.namespaces field of `block.namespace_proof(table, ns, entries)`, the
    same bytes protobuf writes, with its entries joined from wire bytes.

    Every live subscriber gets each new block at once, and building an IndexedEntry and
    an Entry object per entry was most of the sequencer's work per block for it, taken
    while the block's handlers are answering and the next batches arriving; entries
    sharing a size share the bytes between their index and data. The entries field comes
    last (its number is the highest), so it follows protobuf's serialization of the rest.
    """
    parts = [block.namespace_proof(table, ns, ()).SerializeToString()]
    name = ns.encode()
    heads: dict[int, bytes] = {}  # data size -> the bytes of an entry before its data
    for i, data in entries:
        n = len(data)
        head = heads.get(n)
        if head is None:
            # Protobuf leaves an empty data field out: then the entry is its name alone.
            head = heads[n] = entry_head(name, n) if n else field(2, field(1, name))
        index = _INDEX_TAG + _small_varint(i) if i else b""
        parts += (_ENTRIES_TAG, _small_varint(len(index) + len(head) + n), index, head, data)
    return field(2, b"".join(parts))
