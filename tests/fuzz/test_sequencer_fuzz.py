"""Fuzzed input against one real `tandem sequencer` process (shared by the whole module).

Every request here is bad in some way (or an exact replay): each must get its documented
status code, the server must stay SERVING, and no block after the baseline may hold an
entry, so the log is exactly what it was. Replays must return their original positions.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rollup_client.protocol import codec
from rollup_client.protocol.keys import SigningKey
from rollup_client.wire import sequencer_pb2 as pb
from rollup_client.wire import sequencer_pb2_grpc as pb_grpc
from tests.fuzz.common import (
    TIMEOUT_S,
    C,
    assert_documented,
    assert_serving,
    budget,
    code_of,
    raw_code,
    raw_stream_code,
)
from tests.sequencer.helpers import CHAIN_ID, Net, make_net, signed_batch
from tests.sequencer.proc import running

pytestmark = pytest.mark.processes

SERVICE = "/tandem.v1.SequencerService/"
MAX_ENTRY = 64 * 1024
MAX_BATCH_ENTRIES = 1000
MAX_MESSAGE = 4 * 1024 * 1024

SUBMIT_CODES = {C.INVALID_ARGUMENT, C.UNAUTHENTICATED, C.PERMISSION_DENIED}


@dataclass
class Seq:
    net: Net
    channel: grpc.Channel
    stub: pb_grpc.SequencerServiceStub
    baseline: int
    acked: pb.SubmitBatchRequest
    positions: list[tuple[int, int]]


@pytest.fixture(scope="module")
def seq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seq]:
    """One sequencer with one acknowledged batch; `baseline` is the height after it."""
    data = tmp_path_factory.mktemp("fuzz-seq")
    net = make_net(data)
    with running(data, "--heartbeat-ms", "200") as proc:
        channel = grpc.insecure_channel(proc.listen)
        try:
            stub = pb_grpc.SequencerServiceStub(channel)
            req = signed_batch(net.client, [("alpha", b"one"), ("beta", b"two")], bundle=True)
            acks = stub.SubmitBatch(req, timeout=TIMEOUT_S).acks
            positions = [(a.position.height, a.position.index) for a in acks]
            baseline = stub.Status(pb.StatusRequest(), timeout=TIMEOUT_S).height
            yield Seq(net, channel, stub, baseline, req, positions)
            assert proc.popen.poll() is None, "the sequencer died during fuzzing"
        finally:
            channel.close()


def assert_log_unchanged(s: Seq) -> None:
    """Still SERVING, and every block after the baseline is empty (heartbeats only)."""
    assert_serving(s.channel)
    head = s.stub.Status(pb.StatusRequest(), timeout=TIMEOUT_S).height
    for h in range(s.baseline + 1, head + 1):
        header = s.stub.GetBlock(pb.GetBlockRequest(height=h), timeout=TIMEOUT_S).block.header
        assert header.header.entry_count == 0, f"block {h} gained entries from bad input"
    for eid, pos in zip(
        (codec.entry_id(e.namespace, e.data) for e in s.acked.entries), s.positions, strict=True
    ):
        got = s.stub.GetEntry(pb.GetEntryRequest(entry_id=eid), timeout=TIMEOUT_S).position
        assert (got.height, got.index) == pos


namespaces = st.one_of(
    st.sampled_from(["alpha", "beta", "swap", "gamma", "Upper", "", "-x", "a" * 64, "é"]),
    st.text(max_size=70),
)
entry_lists = st.lists(
    st.builds(pb.Entry, namespace=namespaces, data=st.binary(max_size=64)), max_size=6
)


def _digest(entries: list[pb.Entry], bundle: bool, chain: str = CHAIN_ID) -> bytes:
    return codec.batch_digest(chain, [codec.entry_id(e.namespace, e.data) for e in entries], bundle)


def _well_formed(entries: list[pb.Entry], bundle: bool) -> bool:
    ids = [codec.entry_id(e.namespace, e.data) for e in entries]
    return (
        bool(entries)
        and all(codec.NAMESPACE_RE.match(e.namespace) for e in entries)
        and not (bundle and len(set(ids)) != len(ids))
    )


@st.composite
def bad_batches(draw: st.DrawFn, s: Seq) -> tuple[pb.SubmitBatchRequest, grpc.StatusCode | None]:
    """A batch that must be refused, with its exact code when the case pins it down."""
    entries = draw(entry_lists)
    bundle = draw(st.booleans())
    net = s.net
    case = draw(
        st.sampled_from(
            ["random", "wrong-chain", "flipped-bundle", "other-entries", "outsider", "limited"]
        )
    )
    key: SigningKey = net.client
    expected: grpc.StatusCode | None = C.UNAUTHENTICATED
    if case == "random":
        client_key = draw(
            st.one_of(st.binary(max_size=40), st.just(net.client.public), st.just(b""))
        )
        req = pb.SubmitBatchRequest(
            client_key=client_key,
            entries=entries,
            bundle=bundle,
            signature=draw(st.binary(max_size=80)),
        )
        return req, None
    if case == "wrong-chain":
        sig = key.sign(_digest(entries, bundle, chain=draw(st.text(max_size=12)) + "-other"))
    elif case == "flipped-bundle":
        sig = key.sign(_digest(entries, not bundle))
    elif case == "other-entries":
        sig = key.sign(_digest([*entries, pb.Entry(namespace="alpha", data=b"x")], bundle))
    elif case == "outsider":
        key = net.outsider
        sig = key.sign(_digest(entries, bundle))
    else:
        key = net.limited
        entries = [*entries, pb.Entry(namespace="beta", data=draw(st.binary(max_size=8)))]
        sig = key.sign(_digest(entries, bundle))
        expected = C.PERMISSION_DENIED
    if case == "outsider":
        expected = C.UNAUTHENTICATED
    elif not _well_formed(entries, bundle):
        expected = None
    req = pb.SubmitBatchRequest(
        client_key=key.public, entries=entries, bundle=bundle, signature=sig
    )
    return req, expected


def test_bad_batches_get_their_code_and_change_nothing(seq: Seq) -> None:
    @budget(150, 3000)
    @given(st.data())
    def run(data: st.DataObject) -> None:
        req, expected = data.draw(bad_batches(seq))
        code = code_of(seq.stub.SubmitBatch, req, timeout=TIMEOUT_S)
        assert code in SUBMIT_CODES, (code, req)
        if expected is not None:
            assert code == expected, (code, req)
        # Submit signs as a non-bundle batch of one, so a bundle of one signed as a plain
        # batch ("flipped-bundle") is a valid Submit: only re-send the non-bundle forms.
        if len(req.entries) <= 1 and not req.bundle:
            single = pb.SubmitRequest(
                client_key=req.client_key,
                entry=req.entries[0] if req.entries else None,
                signature=req.signature,
            )
            assert code_of(seq.stub.Submit, single, timeout=TIMEOUT_S) in SUBMIT_CODES

    run()
    assert_log_unchanged(seq)


def test_replays_return_the_original_positions_and_add_nothing(seq: Seq) -> None:
    @budget(20, 500)
    @given(st.integers(0, 3))
    def run(_: int) -> None:
        acks = seq.stub.SubmitBatch(seq.acked, timeout=TIMEOUT_S).acks
        assert [(a.position.height, a.position.index) for a in acks] == seq.positions
        assert all(a.duplicate for a in acks)

    run()
    # The same signature over a different batch shape never verifies.
    tampered = pb.SubmitBatchRequest()
    tampered.CopyFrom(seq.acked)
    tampered.bundle = False
    assert code_of(seq.stub.SubmitBatch, tampered, timeout=TIMEOUT_S) == C.UNAUTHENTICATED
    del tampered.entries[1]
    assert code_of(seq.stub.SubmitBatch, tampered, timeout=TIMEOUT_S) == C.UNAUTHENTICATED
    assert_log_unchanged(seq)


def test_oversized_messages_and_repeated_fields(seq: Seq) -> None:
    key = seq.net.client
    huge = pb.SubmitBatchRequest(
        client_key=key.public,
        entries=[pb.Entry(namespace="alpha", data=b"\x00" * MAX_MESSAGE)],
        signature=bytes(64),
    )
    assert code_of(seq.stub.SubmitBatch, huge, timeout=TIMEOUT_S) == C.RESOURCE_EXHAUSTED
    too_many = signed_batch(key, [("alpha", b"%d" % i) for i in range(MAX_BATCH_ENTRIES + 1)])
    assert code_of(seq.stub.SubmitBatch, too_many, timeout=TIMEOUT_S) == C.INVALID_ARGUMENT
    big_entry = signed_batch(key, [("alpha", b"\x01" * (MAX_ENTRY + 1))])
    assert code_of(seq.stub.SubmitBatch, big_entry, timeout=TIMEOUT_S) == C.INVALID_ARGUMENT
    big_batch = signed_batch(key, [("alpha", bytes([i]) * MAX_ENTRY) for i in range(20)])
    assert code_of(seq.stub.SubmitBatch, big_batch, timeout=TIMEOUT_S) == C.INVALID_ARGUMENT
    dup_bundle = signed_batch(key, [("alpha", b"same"), ("alpha", b"same")], bundle=True)
    assert code_of(seq.stub.SubmitBatch, dup_bundle, timeout=TIMEOUT_S) == C.INVALID_ARGUMENT
    many_names = pb.GetBlockRequest(height=0, namespaces=[f"ns-{i}" for i in range(2000)])
    assert code_of(seq.stub.GetBlock, many_names, timeout=TIMEOUT_S) == C.OK
    bad_name = pb.GetBlockRequest(height=0, namespaces=["ok", *["fine"] * 5000, "NOT OK"])
    assert code_of(seq.stub.GetBlock, bad_name, timeout=TIMEOUT_S) == C.INVALID_ARGUMENT
    assert_log_unchanged(seq)


def test_reads_with_random_fields(seq: Seq) -> None:
    @budget(150, 3000)
    @given(
        st.integers(0, 2**64 - 1) | st.integers(0, 10),
        st.lists(namespaces, max_size=4),
        st.booleans(),
        st.binary(max_size=40) | st.binary(min_size=32, max_size=32),
    )
    def run(height: int, names: list[str], all_ns: bool, entry_id: bytes) -> None:
        head = seq.stub.Status(pb.StatusRequest(), timeout=TIMEOUT_S).height
        req = pb.GetBlockRequest(height=height, namespaces=names, all_namespaces=all_ns)
        code = code_of(seq.stub.GetBlock, req, timeout=TIMEOUT_S)
        if not all(codec.NAMESPACE_RE.match(n) for n in names):
            assert code == C.INVALID_ARGUMENT
        elif height <= head:
            assert code == C.OK
        else:
            assert code in {C.OUT_OF_RANGE, C.OK}  # OK only if the head moved meanwhile
        got = code_of(seq.stub.GetEntry, pb.GetEntryRequest(entry_id=entry_id), timeout=TIMEOUT_S)
        assert got == (C.INVALID_ARGUMENT if len(entry_id) != 32 else C.NOT_FOUND)

    run()
    assert_log_unchanged(seq)


def test_subscribe_with_random_fields(seq: Seq) -> None:
    @budget(25, 400)
    @given(st.lists(namespaces, max_size=3), st.integers(0, 2**64 - 1) | st.integers(0, 5))
    def run(names: list[str], from_height: int) -> None:
        stream = seq.stub.Subscribe(
            pb.SubscribeRequest(namespaces=names, from_height=from_height), timeout=0.5
        )
        try:
            first = next(stream)
            code = C.OK
        except grpc.RpcError as exc:
            assert isinstance(exc, grpc.Call)
            code = exc.code()
        finally:
            stream.cancel()
        if not all(codec.NAMESPACE_RE.match(n) for n in names):
            assert code == C.INVALID_ARGUMENT
        elif code == C.OK:
            assert first.block.header.header.height == from_height
        else:
            assert code == C.DEADLINE_EXCEEDED
            assert from_height > seq.baseline

    run()
    assert_log_unchanged(seq)


UNARY = {
    "SubmitBatch": (pb.SubmitBatchRequest, SUBMIT_CODES),
    "Submit": (pb.SubmitRequest, SUBMIT_CODES),
    "GetBlock": (pb.GetBlockRequest, {C.OK, C.OUT_OF_RANGE, C.INVALID_ARGUMENT}),
    "GetEntry": (pb.GetEntryRequest, {C.INVALID_ARGUMENT, C.NOT_FOUND}),
    "Status": (pb.StatusRequest, {C.OK}),
}


def test_random_bytes_as_the_serialized_request(seq: Seq) -> None:
    """Bytes that parse get the method's documented codes; others only grpcio's refusal."""

    @budget(200, 4000)
    @given(st.sampled_from(sorted(UNARY)), st.binary(max_size=300))
    def run(method: str, payload: bytes) -> None:
        cls, allowed = UNARY[method]
        code = raw_code(seq.channel, SERVICE + method, payload)
        assert_documented(cls, payload, code, allowed, method)

    run()
    assert_log_unchanged(seq)


def test_random_bytes_as_the_subscribe_request(seq: Seq) -> None:
    @budget(25, 400)
    @given(st.binary(max_size=120))
    def run(payload: bytes) -> None:
        code = raw_stream_code(seq.channel, SERVICE + "Subscribe", payload)
        assert_documented(
            pb.SubscribeRequest, payload, code, {C.OK, C.INVALID_ARGUMENT, C.DEADLINE_EXCEEDED}
        )

    run()
    assert_log_unchanged(seq)


def test_unparseable_bytes_get_invalid_argument(seq: Seq) -> None:
    for method in UNARY:
        for junk in (b"\xff\xff\xff", b"\x0a\x05ab", b"\x08"):
            assert raw_code(seq.channel, SERVICE + method, junk) == C.INVALID_ARGUMENT
