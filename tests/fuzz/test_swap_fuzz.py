"""Fuzzed input against a real swap coordinator (and its sequencer).

Proposals always carry a defect (duplicate or zero-amount legs, an unknown rollup, bad
keys, amounts beyond 2**63 - 1, both or neither of timeout and deadline, a long nonce,
too many legs); signatures are forged, from non-payers, or for unknown swaps; reads take
random ids, states and limits; random bytes go in as the serialized request. Every
answer has its documented code, the coordinator stays SERVING, its list of swaps is
unchanged and nothing reaches the `swap` namespace of the log.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rollup_client.protocol import swap, tx
from rollup_client.protocol.genesis import SWAP_NAMESPACE
from rollup_client.protocol.keys import SigningKey
from rollup_client.wire import sequencer_pb2 as pb
from rollup_client.wire import sequencer_pb2_grpc as pb_grpc
from rollup_client.wire import swap_pb2 as spb
from rollup_client.wire import swap_pb2_grpc as spb_grpc
from tests.fuzz.common import (
    TIMEOUT_S,
    C,
    assert_documented,
    assert_serving,
    budget,
    code_of,
    parses,
    raw_code,
    raw_stream_code,
)
from tests.keys import key
from tests.network import start_coordinator, start_sequencer
from tests.procs import Proc
from tests.rollup_node.conftest import GOLD, write_net

pytestmark = pytest.mark.processes

SERVICE = "/tandem.v1.SwapService/"


@dataclass
class Coord:
    stub: spb_grpc.SwapServiceStub
    channel: grpc.Channel
    seq: pb_grpc.SequencerServiceStub
    proposal: spb.ProposeResponse
    baseline: spb.ListSwapsResponse


@pytest.fixture(scope="module")
def coord(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coord]:
    """A sequencer and a coordinator holding one proposal (alice pays bob 5 gold on alpha)."""
    net = write_net(tmp_path_factory.mktemp("fuzz-swap"))
    procs: list[Proc] = []
    channels: list[grpc.Channel] = []
    try:
        seq_addr = start_sequencer(net, procs)
        # The rollup-node network has no coordinator client: alpha may write `swap`.
        _, addr = start_coordinator(net, procs, "coordinator", signer="alpha")
        channel, seq_channel = grpc.insecure_channel(addr), grpc.insecure_channel(seq_addr)
        channels += [channel, seq_channel]
        stub = spb_grpc.SwapServiceStub(channel)
        leg = spb.SwapLeg(
            rollup="alpha", payer=key("alice").public, payee=key("bob").public, asset=GOLD, amount=5
        )
        proposal = stub.Propose(
            spb.ProposeRequest(legs=[leg], timeout_ms=3_600_000), timeout=TIMEOUT_S
        )
        baseline = stub.List(spb.ListSwapsRequest(), timeout=TIMEOUT_S)
        yield Coord(stub, channel, pb_grpc.SequencerServiceStub(seq_channel), proposal, baseline)
        for p in procs:
            assert p.proc.poll() is None, f"{p.argv[1:3]} died during fuzzing"
    finally:
        for ch in channels:
            ch.close()
        for p in reversed(procs):
            p.stop()


def assert_unchanged(c: Coord) -> None:
    """Same swaps listed, still SERVING, and no `swap` entry anywhere in the log."""
    assert_serving(c.channel)
    now = c.stub.List(spb.ListSwapsRequest(), timeout=TIMEOUT_S)
    strip = [(s.swap_id, s.state, s.missing_signers) for s in now.swaps]
    assert strip == [(s.swap_id, s.state, s.missing_signers) for s in c.baseline.swaps]
    head = c.seq.Status(pb.StatusRequest(), timeout=TIMEOUT_S).height
    for h in range(head + 1):
        fb = c.seq.GetBlock(
            pb.GetBlockRequest(height=h, namespaces=[SWAP_NAMESPACE]), timeout=TIMEOUT_S
        ).block
        assert all(not ns.entries for ns in fb.namespaces), f"block {h} holds swap entries"


raw_keys = st.one_of(
    st.sampled_from([key("alice").public, key("bob").public, key("carol").public]),
    st.binary(max_size=40),
)


@st.composite
def legs(draw: st.DrawFn) -> spb.SwapLeg:
    return spb.SwapLeg(
        rollup=draw(st.sampled_from(["alpha", "beta", "gamma", "", "ALPHA"])),
        payer=draw(raw_keys),
        payee=draw(raw_keys),
        asset=draw(st.sampled_from([GOLD, "silver", "", "a" * 40]) | st.text(max_size=8)),
        amount=draw(st.sampled_from([0, 1, tx.MAX_AMOUNT, tx.MAX_AMOUNT + 1, 2**64 - 1])),
    )


def _valid_leg(leg: spb.SwapLeg) -> bool:
    return (
        leg.rollup in ("alpha", "beta")
        and len(leg.payer) == len(leg.payee) == 32
        and bool(tx.ASSET_RE.match(leg.asset))
        and 0 < leg.amount <= tx.MAX_AMOUNT
    )


@st.composite
def bad_proposals(draw: st.DrawFn) -> spb.ProposeRequest:
    """A proposal the coordinator must refuse with INVALID_ARGUMENT."""
    good = spb.SwapLeg(
        rollup="alpha", payer=key("alice").public, payee=key("carol").public, asset=GOLD, amount=1
    )
    defect = draw(st.sampled_from(["random", "duplicate", "times", "nonce", "many", "empty"]))
    items = draw(st.lists(legs(), max_size=4))
    timeout_ms, deadline_ms, nonce = draw(st.integers(1, 10**9)), 0, draw(st.binary(max_size=32))
    if defect == "random":
        items = [*items, draw(legs().filter(lambda g: not _valid_leg(g)))]
    elif defect == "duplicate":
        items = [good, good]
    elif defect == "times":
        items = [good]
        timeout_ms, deadline_ms = draw(
            st.sampled_from([(0, 0), (5, 5), (0, 1), (1, 2**64 - 1)])
            | st.tuples(st.integers(1, 9), st.integers(1, 9))
        )
    elif defect == "nonce":
        items, nonce = [good], draw(st.binary(min_size=33, max_size=64))
    elif defect == "many":
        items = [
            spb.SwapLeg(
                rollup="alpha",
                payer=key("alice").public,
                payee=SigningKey.from_seed(bytes([i]) * 32).public,
                asset=GOLD,
                amount=1,
            )
            for i in range(swap.MAX_LEGS + 1)
        ]
    else:
        items = []
    draw(st.randoms()).shuffle(items)
    return spb.ProposeRequest(
        legs=items, timeout_ms=timeout_ms, deadline_ms=deadline_ms, nonce=nonce
    )


def test_bad_proposals_are_refused_and_change_nothing(coord: Coord) -> None:
    @budget(150, 2500)
    @given(bad_proposals())
    def run(req: spb.ProposeRequest) -> None:
        assert code_of(coord.stub.Propose, req, timeout=TIMEOUT_S) == C.INVALID_ARGUMENT, req

    run()
    assert_unchanged(coord)


def test_forged_and_misplaced_signatures(coord: Coord) -> None:
    p = coord.proposal
    alice, bob = key("alice"), key("bob")

    @budget(100, 2500)
    @given(
        st.sampled_from(["forged", "random", "non-payer", "unknown-swap", "bad-id"]),
        st.binary(max_size=80),
    )
    def run(case: str, junk: bytes) -> None:
        req = spb.SignRequest(swap_id=p.swap_id, payer=alice.public, signature=junk)
        expected = {C.UNAUTHENTICATED, C.INVALID_ARGUMENT}
        if case == "forged":
            req.signature = bob.sign(p.signing_bytes)
            expected = {C.UNAUTHENTICATED}
        elif case == "non-payer":
            req.payer, req.signature = bob.public, bob.sign(p.signing_bytes)
            expected = {C.INVALID_ARGUMENT}
        elif case == "unknown-swap":
            req.swap_id = bytes(32)
            req.signature = alice.sign(p.signing_bytes)
            expected = {C.NOT_FOUND}
        elif case == "bad-id":
            req.swap_id = junk[:31]
            expected = {C.INVALID_ARGUMENT, C.NOT_FOUND}
        assert code_of(coord.stub.Sign, req, timeout=TIMEOUT_S) in expected, (case, req)

    run()
    assert_unchanged(coord)


def test_reads_with_random_fields(coord: Coord) -> None:
    @budget(150, 2500)
    @given(
        st.binary(max_size=40) | st.binary(min_size=32, max_size=32),
        st.integers(-(2**31), 2**31 - 1),
        st.integers(0, 2**32 - 1),
    )
    def run(swap_id: bytes, state: int, limit: int) -> None:
        got = code_of(coord.stub.Get, spb.GetSwapRequest(swap_id=swap_id), timeout=TIMEOUT_S)
        assert got in {C.INVALID_ARGUMENT, C.NOT_FOUND}
        req = spb.ListSwapsRequest(state=state, limit=limit)  # type: ignore[arg-type]
        listed = code_of(coord.stub.List, req, timeout=TIMEOUT_S)
        assert listed == (C.OK if state in spb.SwapState.values() else C.INVALID_ARGUMENT)
        stream = coord.stub.Watch(spb.WatchSwapRequest(swap_id=swap_id), timeout=TIMEOUT_S)
        try:
            next(stream)
            code = C.OK
        except grpc.RpcError as exc:
            assert isinstance(exc, grpc.Call)
            code = exc.code()
        finally:
            stream.cancel()
        assert code in {C.INVALID_ARGUMENT, C.NOT_FOUND}

    run()
    assert_unchanged(coord)


UNARY = {
    "Propose": (spb.ProposeRequest, {C.INVALID_ARGUMENT}),
    "Sign": (spb.SignRequest, {C.INVALID_ARGUMENT, C.NOT_FOUND, C.UNAUTHENTICATED}),
    "Get": (spb.GetSwapRequest, {C.INVALID_ARGUMENT, C.NOT_FOUND}),
    "List": (spb.ListSwapsRequest, {C.OK, C.INVALID_ARGUMENT}),
}


def test_random_bytes_as_the_serialized_request(coord: Coord) -> None:
    @budget(200, 4000)
    @given(st.sampled_from(sorted(UNARY)), st.binary(max_size=300))
    def run(method: str, payload: bytes) -> None:
        cls, allowed = UNARY[method]
        if method == "Propose" and parses(cls, payload):
            req = spb.ProposeRequest.FromString(payload)
            req.legs.append(req.legs[0] if req.legs else spb.SwapLeg())  # never valid terms
            req.legs.append(req.legs[0])
            payload = req.SerializeToString()
        code = raw_code(coord.channel, SERVICE + method, payload)
        assert_documented(cls, payload, code, allowed, method)

    run()
    assert_unchanged(coord)


def test_random_bytes_as_the_watch_request(coord: Coord) -> None:
    @budget(25, 400)
    @given(st.binary(max_size=80))
    def run(payload: bytes) -> None:
        code = raw_stream_code(coord.channel, SERVICE + "Watch", payload)
        assert_documented(spb.WatchSwapRequest, payload, code, {C.INVALID_ARGUMENT, C.NOT_FOUND})

    run()
    assert_unchanged(coord)
