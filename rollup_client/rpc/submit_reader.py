"""The one reader of submit requests: SubmitBatch and Submit bytes in, `BatchFields` out.

A batch laid out as the SDK writes it (`wire_bytes.batch_request`) is read straight from
its bytes (`read_sdk_layout`); any other layout, and every Submit, is parsed by protobuf
into the same columns, so the sequencer checks one shape whichever way a request came.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from rollup_client.rpc import wire_bytes
from rollup_client.wire import sequencer_pb2 as pb


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


def read_sdk_layout(raw: bytes) -> BatchFields | None:
    """The fields of SubmitBatchRequest bytes laid out as `wire_bytes.batch_request`
    writes them (its entries of one namespace and one size), or None for any other
    layout, which `read_batch` then leaves to protobuf.

    Parsing a batch into protobuf objects and reading two fields back from each entry
    took twice as long as this walk over the bytes. Accepting only that exact layout
    (short key and signature, fields in order and once each, canonical varints, an ASCII
    namespace) keeps the answer identical to protobuf's wherever there is one.
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
    head = wire_bytes.entry_head(ns, data_len) if data_len >= 0 else b""
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
    `wire_bytes.batch_request` writes it (nonzero, canonical, 32 bits); None otherwise."""
    if at == len(raw):
        return 0
    if raw[at] != wire_bytes.LINGER_TAG:
        return None
    n, end = _read_varint(raw, at + 1)
    if (
        end != len(raw)
        or not 0 < n <= wire_bytes.MAX_UINT32
        or raw[at + 1 : end] != wire_bytes.varint(n)
    ):
        return None
    return n


def read_batch(raw: bytes) -> BatchFields:
    """The fields of SubmitBatchRequest bytes: read from them when they are laid out as the
    SDK writes them, else parsed by protobuf; raises DecodeError as protobuf does."""
    fields = read_sdk_layout(raw)
    if fields is not None:
        return fields
    req = pb.SubmitBatchRequest.FromString(raw)
    return _from_entries(req.client_key, req.entries, req.bundle, req.signature, req.linger_ms)


def read_submit(raw: bytes) -> BatchFields:
    """The fields of SubmitRequest bytes as an unbundled batch of its entry (of none when
    it has no entry); a single entry parses faster with protobuf than by a walk over it."""
    req = pb.SubmitRequest.FromString(raw)
    entries = [req.entry] if req.HasField("entry") else []
    return _from_entries(req.client_key, entries, False, req.signature, 0)


def _from_entries(
    client_key: bytes, entries: Sequence[pb.Entry], bundle: bool, signature: bytes, linger_ms: int
) -> BatchFields:
    namespaces = [e.namespace for e in entries]
    datas = [e.data for e in entries]
    return BatchFields(client_key, namespaces, datas, bundle, signature, linger_ms)
