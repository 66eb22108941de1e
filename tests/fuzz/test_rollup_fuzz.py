"""Fuzzed input against real rollup nodes (alpha and beta) and their sequencer.

Transactions are generated with at least one defect each (bad signature, amount zero or
beyond 2**63 - 1, another or an unknown rollup, a used nonce, a bad asset name, junk
bytes), reads with random fields, and random bytes as the serialized request. Swap
attacks go straight into the `swap` namespace: forged votes, votes from a rollup outside
the swap, intents with duplicate or zero-amount legs or missing signatures. Every answer
has its documented code, both nodes stay SERVING, and balances, nonces, escrow and state
roots are exactly what they were.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rollup_client.protocol import block, codec, swap, tx
from rollup_client.protocol.genesis import SWAP_NAMESPACE
from rollup_client.protocol.keys import SigningKey
from rollup_client.sdk import RollupClient
from rollup_client.wire import rollup_pb2 as rpb
from rollup_client.wire import rollup_pb2_grpc as rpb_grpc
from rollup_client.wire import sequencer_pb2 as pb
from rollup_client.wire import sequencer_pb2_grpc as pb_grpc
from tests.fuzz.common import (
    TIMEOUT_S,
    C,
    assert_documented,
    assert_serving,
    budget,
    code_of,
    parses,
    raw_code,
)
from tests.keys import key
from tests.network import HEARTBEAT_MS, Net, spawn_node, start_sequencer, wait_height
from tests.procs import Proc
from tests.rollup_node.conftest import CHAIN_ID, FUNDS, GOLD, SILVER, write_net

pytestmark = pytest.mark.processes

SERVICE = "/tandem.v1.RollupService/"
ACCOUNTS = ("alice", "bob", "carol")


@dataclass
class World:
    net: Net
    seq: pb_grpc.SequencerServiceStub
    seq_channel: grpc.Channel
    nodes: dict[str, RollupClient]
    channels: dict[str, grpc.Channel]
    replay: tx.SignedTransfer


def snapshot(w: World, roots: bool = True) -> tuple[object, ...]:
    """Everything bad input must not change: roots, balances and nonces on both rollups.

    A valid swap that aborts locks and refunds, which leaves balances as they were but may
    reshape the escrow tree, so `roots=False` leaves roots out for that case.
    """
    out: list[object] = []
    for name, c in sorted(w.nodes.items()):
        if roots:
            out.append((name, c.state_root().state_root))
        for a in ACCOUNTS:
            out.append((name, a, c.balances(key(a).public), c.nonce(key(a).public)))
    return tuple(out)


def settle(w: World) -> None:
    """Wait until both nodes applied the sequencer's current head."""
    head = w.seq.Status(pb.StatusRequest(), timeout=TIMEOUT_S).height
    for c in w.nodes.values():
        wait_height(c, head)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    net = write_net(tmp_path_factory.mktemp("fuzz-rollup"))
    procs: list[Proc] = []
    clients: dict[str, RollupClient] = {}
    channels: dict[str, grpc.Channel] = {}
    try:
        sequencer = start_sequencer(net, procs)
        for r in ("alpha", "beta"):
            target = spawn_node(net, procs, r, "--attest-every", "0").ready()["listen"]
            clients[r] = RollupClient(target)
            channels[r] = grpc.insecure_channel(target)
        seq_channel = grpc.insecure_channel(sequencer)
        channels["sequencer"] = seq_channel
        alice, bob = key("alice"), key("bob")
        receipt = clients["alpha"].transfer(alice, bob.public, GOLD, 1)
        assert receipt.ok
        replay = tx.Transfer(alice.public, bob.public, GOLD, 1, 0, "alpha").sign(alice)
        w = World(
            net, pb_grpc.SequencerServiceStub(seq_channel), seq_channel, clients, channels, replay
        )
        settle(w)
        yield w
        for p in procs:
            assert p.proc.poll() is None, f"{p.argv[2]} died during fuzzing"
    finally:
        for c in clients.values():
            c.close()
        for ch in channels.values():
            ch.close()
        for p in reversed(procs):
            p.stop()


@st.composite
def bad_transfers(draw: st.DrawFn) -> tuple[bytes, grpc.StatusCode]:
    """Transaction bytes with at least one defect, and the code alpha must answer."""
    alice, bob = key("alice"), key("bob")
    defect = draw(
        st.sampled_from(
            [
                "signature",
                "zero",
                "overflow",
                "other-rollup",
                "unknown-rollup",
                "used-nonce",
                "asset",
                "junk",
                "truncated",
            ]
        )
    )
    amount = draw(st.integers(1, FUNDS))
    nonce = draw(st.integers(1, 2**64 - 1))
    asset, rollup, code = GOLD, "alpha", C.INVALID_ARGUMENT
    if defect == "zero":
        amount = 0
    elif defect == "overflow":
        amount = draw(st.integers(tx.MAX_AMOUNT + 1, 2**64 - 1))
    elif defect == "other-rollup":
        rollup = "beta"
    elif defect == "unknown-rollup":
        rollup = draw(st.sampled_from(["gamma", "Alpha", "", "x" * 70]))
    elif defect == "used-nonce":
        nonce, code = 0, C.FAILED_PRECONDITION
    elif defect == "asset":
        asset = draw(st.sampled_from(["", "-x", "a" * 33, "g o"]))
    t = tx.Transfer(alice.public, bob.public, asset, amount, nonce, rollup)
    if defect == "signature":
        signer = draw(st.sampled_from([bob, SigningKey.from_seed(b"\x07" * 32)]))
        forged = draw(
            st.one_of(st.just(signer.sign(t.signing_bytes())), st.binary(min_size=64, max_size=64))
        )
        return tx.SignedTransfer(t, forged).encode(), C.UNAUTHENTICATED
    data = t.sign(alice).encode()
    if defect == "junk":
        return draw(st.binary(max_size=300)), C.INVALID_ARGUMENT
    if defect == "truncated":
        return data[: draw(st.integers(0, len(data) - 1))], C.INVALID_ARGUMENT
    return data, code


def test_bad_transactions_get_their_code_and_change_nothing(world: World) -> None:
    before = snapshot(world)
    stub = rpb_grpc.RollupServiceStub(world.channels["alpha"])

    @budget(150, 3000)
    @given(bad_transfers())
    def run(case: tuple[bytes, grpc.StatusCode]) -> None:
        data, expected = case
        req = rpb.SubmitTransactionRequest(transaction=data)
        assert code_of(stub.SubmitTransaction, req, timeout=TIMEOUT_S) == expected
        many = rpb.SubmitTransactionsRequest(transactions=[data, data[:5]])
        results = stub.SubmitTransactions(many, timeout=TIMEOUT_S).results
        assert [r.code for r in results] == [expected.value[0], C.INVALID_ARGUMENT.value[0]]

    run()
    # An exact replay of an executed transfer is refused by its used nonce.
    req = rpb.SubmitTransactionRequest(transaction=world.replay.encode())
    assert code_of(stub.SubmitTransaction, req, timeout=TIMEOUT_S) == C.FAILED_PRECONDITION
    settle(world)
    assert snapshot(world) == before
    assert_serving(world.channels["alpha"])


def test_reads_with_random_fields(world: World) -> None:
    stub = rpb_grpc.RollupServiceStub(world.channels["alpha"])
    ids = st.binary(max_size=40) | st.binary(min_size=32, max_size=32)

    @budget(120, 2500)
    @given(ids, st.text(max_size=40) | st.just(GOLD), st.integers(0, 2**64 - 1), st.booleans())
    def run(raw: bytes, asset: str, height: int, latest: bool) -> None:
        bad_len = len(raw) != 32
        for method, req, ok in (
            (stub.GetReceipt, rpb.GetReceiptRequest(tx_id=raw), C.NOT_FOUND),
            (stub.WaitReceipt, rpb.WaitReceiptRequest(tx_id=raw, timeout_ms=1), C.NOT_FOUND),
            (stub.GetBalances, rpb.GetBalancesRequest(account=raw), C.OK),
            (stub.GetNonce, rpb.GetNonceRequest(account=raw), C.OK),
            (stub.GetEscrow, rpb.GetEscrowRequest(swap_id=raw), C.OK),
        ):
            assert code_of(method, req, timeout=TIMEOUT_S) == (
                C.INVALID_ARGUMENT if bad_len else ok
            )
        code = code_of(
            stub.GetBalance, rpb.GetBalanceRequest(account=raw, asset=asset), timeout=TIMEOUT_S
        )
        # A well-formed but unknown asset name is refused like a malformed one.
        assert code == (C.OK if asset in (GOLD, SILVER) and not bad_len else C.INVALID_ARGUMENT)
        code = code_of(
            stub.GetStateRoot,
            rpb.GetStateRootRequest(height=height, latest=latest),
            timeout=TIMEOUT_S,
        )
        assert code in ({C.OK} if latest else {C.OK, C.OUT_OF_RANGE, C.NOT_FOUND})

    run()
    assert_serving(world.channels["alpha"])


UNARY = {
    "SubmitTransaction": (
        rpb.SubmitTransactionRequest,
        {C.INVALID_ARGUMENT, C.UNAUTHENTICATED, C.FAILED_PRECONDITION},
    ),
    "SubmitTransactions": (rpb.SubmitTransactionsRequest, {C.OK, C.INVALID_ARGUMENT}),
    "GetReceipt": (rpb.GetReceiptRequest, {C.INVALID_ARGUMENT, C.NOT_FOUND}),
    "WaitReceipt": (rpb.WaitReceiptRequest, {C.INVALID_ARGUMENT, C.NOT_FOUND}),
    "GetBalance": (rpb.GetBalanceRequest, {C.OK, C.INVALID_ARGUMENT}),
    "GetBalances": (rpb.GetBalancesRequest, {C.OK, C.INVALID_ARGUMENT}),
    "GetNonce": (rpb.GetNonceRequest, {C.OK, C.INVALID_ARGUMENT}),
    "GetStateRoot": (rpb.GetStateRootRequest, {C.OK, C.OUT_OF_RANGE, C.NOT_FOUND}),
    "GetEscrow": (rpb.GetEscrowRequest, {C.OK, C.INVALID_ARGUMENT}),
    "Status": (rpb.RollupStatusRequest, {C.OK}),
}


def test_random_bytes_as_the_serialized_request(world: World) -> None:
    before = snapshot(world)

    @budget(200, 4000)
    @given(st.sampled_from(sorted(UNARY)), st.binary(max_size=300))
    def run(method: str, payload: bytes) -> None:
        cls, allowed = UNARY[method]
        if method == "WaitReceipt" and parses(cls, payload):
            req = rpb.WaitReceiptRequest.FromString(payload)
            req.timeout_ms = min(req.timeout_ms, 20) or 1
            payload = req.SerializeToString()
        code = raw_code(world.channels["alpha"], SERVICE + method, payload)
        assert_documented(cls, payload, code, allowed, method)

    run()
    settle(world)
    assert snapshot(world) == before
    assert_serving(world.channels["alpha"])


def _submit_swap_entries(w: World, items: list[bytes]) -> list[bytes]:
    """Put raw `swap` entries in the log with beta's key (allowed to write `swap`)."""
    beta = key("beta")
    pairs = [(SWAP_NAMESPACE, d) for d in items]
    digest = codec.batch_digest(CHAIN_ID, [codec.entry_id(*p) for p in pairs], False)
    w.seq.SubmitBatch(
        pb.SubmitBatchRequest(
            client_key=beta.public,
            entries=[pb.Entry(namespace=n, data=d) for n, d in pairs],
            signature=beta.sign(digest),
        ),
        timeout=TIMEOUT_S,
    )
    return [codec.entry_id(*p) for p in pairs]


def _log(w: World) -> list[block.VerifiedBlock]:
    head = w.seq.Status(pb.StatusRequest(), timeout=TIMEOUT_S).height
    return [
        block.verify_block(
            w.seq.GetBlock(
                pb.GetBlockRequest(height=h, all_namespaces=True), timeout=TIMEOUT_S
            ).block,
            w.net.genesis.sequencer_key,
            None,
        )
        for h in range(head + 1)
    ]


def test_forged_votes_and_bad_intents_move_no_funds(world: World) -> None:
    alice, bob, carol = key("alice"), key("bob"), key("carol")
    forger = SigningKey.from_seed(b"\x09" * 32)
    now = world.seq.Status(pb.StatusRequest(), timeout=TIMEOUT_S).head_time_ms
    deadline = now + 3_000
    before = snapshot(world, roots=False)

    def signed(legs: tuple[swap.Leg, ...], *signers: SigningKey, nonce: bytes) -> bytes:
        s = swap.SignedIntent(swap.Intent(legs, deadline, nonce))
        for k in signers:
            s = swap.SignedIntent(
                s.intent, {**s.signatures, k.public: k.sign(s.intent.signing_bytes())}
            )
        return swap.encode_intent(s)

    pay = swap.Leg("alpha", alice.public, bob.public, GOLD, 5)
    # Alpha must refuse this one (alice cannot pay), so only forged votes could commit it.
    too_much = swap.Leg("alpha", alice.public, bob.public, GOLD, FUNDS * 10)
    back = swap.Leg("beta", carol.public, alice.public, GOLD, 5)
    live = swap.Intent((too_much, back), deadline, b"live")
    live_signed = signed(live.legs, alice, carol, nonce=b"live")
    alpha_only = swap.Intent((swap.Leg("alpha", alice.public, bob.public, GOLD, 6),), deadline, b"")
    items = [
        live_signed,
        # Forged YES votes for the live swap: wrong key for alpha, and an outsider rollup name.
        swap.encode_vote(swap.sign_vote(forger, live.swap_id, "alpha", True)),
        swap.encode_vote(swap.sign_vote(forger, live.swap_id, "gamma", True)),
        # An alpha-only swap that alpha refuses ... plus a genuine YES from beta, not in it.
        signed((swap.Leg("alpha", alice.public, bob.public, GOLD, FUNDS * 10),), alice, nonce=b"a"),
        swap.encode_vote(
            swap.sign_vote(
                key("beta"),
                swap.Intent(
                    (swap.Leg("alpha", alice.public, bob.public, GOLD, FUNDS * 10),), deadline, b"a"
                ).swap_id,
                "beta",
                True,
            )
        ),
        # Invalid intents: duplicate legs, a zero-amount leg, an unknown rollup, a missing
        # or forged payer signature.
        signed((pay, pay), alice, nonce=b"dup"),
        signed((swap.Leg("alpha", alice.public, bob.public, GOLD, 0),), alice, nonce=b"zero"),
        signed((swap.Leg("gamma", alice.public, bob.public, GOLD, 1),), alice, nonce=b"gamma"),
        signed((pay, back), alice, nonce=b"missing"),
        signed((pay,), forger, nonce=b"forged"),
        swap.encode_intent(
            swap.SignedIntent(alpha_only, {alice.public: forger.sign(alpha_only.signing_bytes())})
        ),
    ]
    _submit_swap_entries(world, items)
    # Let log time pass every deadline, then let both nodes apply it.
    limit = time.monotonic() + 20
    while world.seq.Status(pb.StatusRequest(), timeout=TIMEOUT_S).head_time_ms <= deadline:
        assert time.monotonic() < limit, "log time did not pass the deadline"
        time.sleep(HEARTBEAT_MS / 1000)
    settle(world)
    assert snapshot(world, roots=False) == before
    log = _log(world)
    assert swap.decide(log, live.swap_id, world.net.genesis).outcome is swap.Outcome.ABORT
    for c in world.nodes.values():
        assert c.escrow(live.swap_id) == []
    for name in ("alpha", "beta"):
        assert_serving(world.channels[name])


def test_unparseable_bytes_get_invalid_argument(world: World) -> None:
    code = raw_code(world.channels["alpha"], SERVICE + "SubmitTransaction", b"\xff\xff\xff")
    assert code == C.INVALID_ARGUMENT
