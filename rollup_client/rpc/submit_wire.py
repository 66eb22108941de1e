"""Wire bytes of the submit calls, joined by hand: SDK requests and sequencer answers.

Building a protobuf object per entry (an `Entry` in every request, an `EntryAck` and a
`Position` in every answer) and reading each field back cost more Python time per entry
than hashing it. Both sides here join whole messages from a few shared byte strings with
no Python step per entry. The sequencer answers a run of fresh entries with `ack_run`, and
the SDK, which knows the ids it sent, recognises that answer by comparing it byte for byte
with the same encoding; any other answer is parsed and checked field by field. The other
way round, the sequencer reads a batch laid out as the SDK writes it (`read_batch`)
straight from its bytes, and hands any other layout to protobuf.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from rollup_client.protocol.codec import HASH_BYTES

MAX_UINT32 = (1 << 32) - 1
# SubmitBatchRequest.linger_ms: field 5, varint.
_LINGER_TAG = 0x28


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
        tail += bytes((_LINGER_TAG,)) + varint(linger_ms)
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


class BatchFields(NamedTuple):
    """The fields of a SubmitBatchRequest, entries as columns (what the sequencer checks)."""

    client_key: bytes
    namespaces: Sequence[str]
    datas: Sequence[bytes]
    bundle: bool
    signature: bytes
    linger_ms: int = 0


def _read_varint(raw: bytes, at: int) -> tuple[int, int]:
    """The varint at `at` and where it ends; (-1, at) when it is longer than a protobuf
    varint may be (10 bytes) or runs past the end."""
    n = 0
    for k, b in enumerate(raw[at : at + 10]):
        n |= (b & 0x7F) << (7 * k)
        if b < 0x80:
            return n, at + k + 1
    return -1, at


def _short_field(raw: bytes, at: int, tag: int) -> tuple[bytes, int] | None:
    """A field `tag` of under 128 bytes at `at` (its length is one byte), and where it ends."""
    if raw[at : at + 1] != bytes((tag,)) or at + 1 >= len(raw) or raw[at + 1] >= 0x80:
        return None
    end = at + 2 + raw[at + 1]
    return (raw[at + 2 : end], end) if end <= len(raw) else None


def read_batch(raw: bytes) -> BatchFields | None:
    """The fields of SubmitBatchRequest bytes laid out as `batch_request` writes them (its
    entries of one namespace and one size), or None for any other layout, which the
    caller then parses with protobuf.

    Parsing a batch into protobuf objects and reading two fields back from each entry
    took twice as long as this walk over the bytes (100 entries: 50 -> 24 us). Accepting
    only that exact layout (short key and signature, fields in order and once each,
    canonical varints, an ASCII namespace) keeps the answer identical to protobuf's
    wherever there is one. A single entry (Submit) parses faster with protobuf.
    """
    key = _short_field(raw, 0, 0x0A)
    if key is None or raw[key[1] : key[1] + 1] != b"\x12":
        return None
    client_key, at = key
    # The first entry's namespace and data length give the bytes before every entry's
    # data; entries are accepted only while each starts with exactly those bytes.
    _, ns_at = _read_varint(raw, at + 1)
    ns_field = _short_field(raw, ns_at, 0x0A)
    if ns_field is None or not ns_field[0].isascii():
        return None
    ns, data_tag = ns_field
    if raw[data_tag : data_tag + 1] != b"\x12":
        return None
    data_len, _ = _read_varint(raw, data_tag + 1)
    head = entry_head(ns, data_len) if data_len >= 0 else b""
    if not head or not raw.startswith(head, at):
        return None
    stride = len(head) + data_len
    # Entry k starts at at + k * stride as long as entries 0..k-1 were `stride` long, and
    # the field after the last entry is not an entry: count the leading entry tags on
    # those positions, then check every byte of every head in `len(head)` strided slices.
    tags = raw[at::stride]
    n = len(tags) - len(tags.lstrip(b"\x12"))
    end = at + n * stride
    if end > len(raw) or any(
        raw[at + j : end : stride] != head[j : j + 1] * n for j in range(1, len(head))
    ):
        return None
    first = at + len(head)
    datas = [raw[p : p + data_len] for p in range(first, first + n * stride, stride)]
    bundle = raw[end : end + 2] == b"\x18\x01"
    sig = _short_field(raw, end + 2 * bundle, 0x22)
    if sig is None:
        return None
    linger = _linger(raw, sig[1])
    if linger is None:
        return None
    return BatchFields(client_key, (ns.decode(),) * n, datas, bundle, sig[0], linger)


def _linger(raw: bytes, at: int) -> int | None:
    """linger_ms when it is all that follows `at` (0 when nothing does), written as
    `batch_request` writes it (nonzero, canonical, 32 bits); None otherwise."""
    if at == len(raw):
        return 0
    if raw[at] != _LINGER_TAG:
        return None
    n, end = _read_varint(raw, at + 1)
    if end != len(raw) or not 0 < n <= MAX_UINT32 or raw[at + 1 : end] != varint(n):
        return None
    return n
