"""The hand-joined submit messages parse as the protobuf messages they stand for, and the
one reader of submit requests reads every request as protobuf does."""

from __future__ import annotations

from google.protobuf.message import DecodeError
from hypothesis import given
from hypothesis import strategies as st

from rollup_client.rpc import submit_reader, wire_bytes
from rollup_client.wire import sequencer_pb2 as pb

namespaces = st.sampled_from(["a", "bench", "n" * 63])
# Sizes around the varint steps of the length fields (1 and 2 bytes, up to 3).
sizes = st.one_of(st.integers(0, 300), st.integers(16_370, 16_400))
datas = st.one_of(
    st.binary(max_size=300), st.builds(lambda n, b: bytes([b]) * n, sizes, st.integers(0, 255))
)
ids = st.binary(min_size=32, max_size=32)
heights = st.one_of(st.integers(0, 300), st.integers(0, 2**64 - 1))
lingers = st.one_of(st.just(0), st.integers(1, 300), st.integers(0, wire_bytes.MAX_UINT32))


@given(
    st.lists(st.tuples(namespaces, datas), min_size=1, max_size=20),
    st.booleans(),
    st.binary(min_size=32, max_size=32),
    st.binary(min_size=64, max_size=64),
)
def test_a_batch_request_parses_to_its_fields(
    entries: list[tuple[str, bytes]], bundle: bool, key: bytes, signature: bytes
) -> None:
    req = pb.SubmitBatchRequest.FromString(
        wire_bytes.batch_request(key, entries, bundle, signature)
    )
    assert [(e.namespace, e.data) for e in req.entries] == entries
    assert (req.client_key, req.bundle, req.signature) == (key, bundle, signature)


@given(
    st.lists(ids, min_size=1, max_size=40),
    heights,
    st.one_of(st.integers(0, 20_000), st.integers(0, 2**32 - 41)),
)
def test_a_fresh_run_parses_to_consecutive_acks(run: list[bytes], height: int, first: int) -> None:
    resp = pb.SubmitBatchResponse.FromString(wire_bytes.ack_run(run, height, first))
    got = [(a.entry_id, a.position.height, a.position.index, a.duplicate) for a in resp.acks]
    assert got == [(e, height, first + k, False) for k, e in enumerate(run)]


@given(ids, heights, st.integers(0, 2**32 - 1), st.booleans())
def test_one_ack_parses_to_its_fields(eid: bytes, height: int, index: int, dup: bool) -> None:
    (a,) = pb.SubmitBatchResponse.FromString(wire_bytes.ack(eid, height, index, dup)).acks
    assert (a.entry_id, a.position.height, a.position.index, a.duplicate) == (
        eid,
        height,
        index,
        dup,
    )


Fields = tuple[bytes, list[str], list[bytes], bool, bytes, int]


def _pb_fields(raw: bytes) -> Fields | None:
    try:
        req = pb.SubmitBatchRequest.FromString(raw)
    except DecodeError:
        return None
    names = [e.namespace for e in req.entries]
    datas = [e.data for e in req.entries]
    return req.client_key, names, datas, req.bundle, req.signature, req.linger_ms


def _columns(got: submit_reader.BatchFields) -> Fields:
    datas = list(got.datas)
    return got.client_key, list(got.namespaces), datas, got.bundle, got.signature, got.linger_ms


def _read_fields(raw: bytes) -> Fields | None:
    got = submit_reader.read_sdk_layout(raw)
    return None if got is None else _columns(got)


def _reader_fields(raw: bytes) -> Fields | None:
    try:
        return _columns(submit_reader.read_batch(raw))
    except DecodeError:
        return None


@given(
    namespaces,
    st.one_of(st.integers(0, 300), st.integers(16_370, 16_400)),
    st.lists(st.integers(0, 255), min_size=1, max_size=30),
    st.booleans(),
    st.binary(max_size=40),
    st.binary(min_size=1, max_size=127),
    lingers,
)
def test_a_batch_of_one_namespace_and_size_is_read_as_protobuf_reads_it(
    ns: str, size: int, fills: list[int], bundle: bool, key: bytes, signature: bytes, linger: int
) -> None:
    entries = [(ns, bytes([f]) * size) for f in fills]
    raw = wire_bytes.batch_request(key, entries, bundle, signature, linger)
    assert (
        _read_fields(raw)
        == _pb_fields(raw)
        == (key, [ns] * len(fills), [d for _, d in entries], bundle, signature, linger)
    )


@given(
    st.lists(st.tuples(namespaces, datas), min_size=0, max_size=8),
    st.booleans(),
    st.binary(max_size=200),
    st.binary(max_size=200),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255), st.integers(0, 2)), max_size=4),
    lingers,
)
def test_any_bytes_are_read_as_protobuf_reads_them_or_left_to_it(
    entries: list[tuple[str, bytes]],
    bundle: bool,
    key: bytes,
    signature: bytes,
    edits: list[tuple[int, int, int]],
    linger: int,
) -> None:
    """Mixed entries, long keys, missing fields and edited bytes: `read_sdk_layout` answers
    exactly what protobuf parses, or None (never a request protobuf would refuse), and
    `read_batch` always answers what protobuf does."""
    raw = bytearray(wire_bytes.batch_request(key, entries, bundle, signature, linger))
    for at, byte, op in edits:
        at %= len(raw) + 1
        if op == 0 and at < len(raw):
            raw[at] = byte
        elif op == 1:
            del raw[at : at + 1 + byte % 3]
        else:
            raw.insert(at, byte)
    got = _read_fields(bytes(raw))
    assert got is None or got == _pb_fields(bytes(raw))
    assert _reader_fields(bytes(raw)) == _pb_fields(bytes(raw))


def test_a_request_in_another_field_order_is_left_to_protobuf() -> None:
    raw = wire_bytes.batch_request(b"k" * 32, [("a", b"x")], False, b"s" * 64)
    moved = raw[-66:] + raw[:-66]  # the signature field first: valid protobuf
    assert _pb_fields(moved) == _pb_fields(raw)
    assert submit_reader.read_sdk_layout(moved) is None
    assert _reader_fields(moved) == _pb_fields(raw)


def test_a_linger_protobuf_would_read_differently_is_left_to_it() -> None:
    """A non-canonical or over-long varint: protobuf reads its low 32 bits (or refuses)."""
    raw = wire_bytes.batch_request(b"k" * 32, [("a", b"x")], False, b"s" * 64)
    for tail in (b"\x28\x85\x00", b"\x28\x80\x80\x80\x80\x10", b"\x28\x00", b"\x28"):
        assert submit_reader.read_sdk_layout(raw + tail) is None


@given(st.one_of(st.none(), st.tuples(namespaces, datas)), st.binary(max_size=40))
def test_a_submit_is_read_as_an_unbundled_batch_of_its_entry(
    entry: tuple[str, bytes] | None, signature: bytes
) -> None:
    req = pb.SubmitRequest(client_key=b"k" * 32, signature=signature)
    if entry is not None:
        req.entry.CopyFrom(pb.Entry(namespace=entry[0], data=entry[1]))
    got = _columns(submit_reader.read_submit(req.SerializeToString()))
    entries = [] if entry is None else [entry]
    names, datas = [n for n, _ in entries], [d for _, d in entries]
    assert got == (b"k" * 32, names, datas, False, signature, 0)
