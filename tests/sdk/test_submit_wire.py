"""The hand-joined submit messages parse as the protobuf messages they stand for."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rollup_client import submit_wire
from rollup_client.wire import sequencer_pb2 as pb

namespaces = st.sampled_from(["a", "bench", "n" * 63])
# Sizes around the varint steps of the length fields (1 and 2 bytes, up to 3).
sizes = st.one_of(st.integers(0, 300), st.integers(16_370, 16_400))
datas = st.one_of(
    st.binary(max_size=300), st.builds(lambda n, b: bytes([b]) * n, sizes, st.integers(0, 255))
)
ids = st.binary(min_size=32, max_size=32)
heights = st.one_of(st.integers(0, 300), st.integers(0, 2**64 - 1))


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
        submit_wire.batch_request(key, entries, bundle, signature)
    )
    assert [(e.namespace, e.data) for e in req.entries] == entries
    assert (req.client_key, req.bundle, req.signature) == (key, bundle, signature)


@given(
    st.lists(ids, min_size=1, max_size=40),
    heights,
    st.one_of(st.integers(0, 20_000), st.integers(0, 2**32 - 41)),
)
def test_a_fresh_run_parses_to_consecutive_acks(run: list[bytes], height: int, first: int) -> None:
    resp = pb.SubmitBatchResponse.FromString(submit_wire.ack_run(run, height, first))
    got = [(a.entry_id, a.position.height, a.position.index, a.duplicate) for a in resp.acks]
    assert got == [(e, height, first + k, False) for k, e in enumerate(run)]


@given(ids, heights, st.integers(0, 2**32 - 1), st.booleans())
def test_one_ack_parses_to_its_fields(eid: bytes, height: int, index: int, dup: bool) -> None:
    (a,) = pb.SubmitBatchResponse.FromString(submit_wire.ack(eid, height, index, dup)).acks
    assert (a.entry_id, a.position.height, a.position.index, a.duplicate) == (
        eid,
        height,
        index,
        dup,
    )
