"""Swaps through real rollup nodes: each node escrows or refuses its legs, submits its vote
from its outbox, and settles at the decisive position; a node started late votes on replay."""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc

from rollup_client.protocol import codec, swap
from rollup_client.protocol.genesis import SWAP_NAMESPACE
from rollup_client.protocol.keys import SigningKey
from rollup_client.sdk import RollupClient
from rollup_client.wire import sequencer_pb2 as pb
from rollup_client.wire import sequencer_pb2_grpc as pb_grpc
from tests.keys import key
from tests.network import HEARTBEAT_MS

from .conftest import CHAIN_ID, FUNDS, GOLD, StartNode


def _propose(sequencer: str, legs: tuple[swap.Leg, ...], payers: list[SigningKey]) -> bytes:
    """Sign an intent with a 20 s deadline in log time and order it in `swap`."""
    feeder = key("feeder")
    with grpc.insecure_channel(sequencer) as channel:
        stub = pb_grpc.SequencerServiceStub(channel)
        now = stub.Status(pb.StatusRequest(), timeout=10).head_time_ms
        intent = swap.Intent(legs, now + 20_000, b"n")
        signed = swap.SignedIntent(intent)
        for k in payers:
            signed = swap.sign_intent(signed, k)
        data = swap.encode_intent(signed)
        digest = codec.batch_digest(CHAIN_ID, [codec.entry_id(SWAP_NAMESPACE, data)], False)
        stub.SubmitBatch(
            pb.SubmitBatchRequest(
                client_key=feeder.public,
                entries=[pb.Entry(namespace=SWAP_NAMESPACE, data=data)],
                signature=feeder.sign(digest),
            ),
            timeout=10,
        )
    return intent.swap_id


def _eventually(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(HEARTBEAT_MS / 1000)


def test_swap_commits_even_when_one_node_starts_after_the_intent(
    sequencer: str, start_node: StartNode
) -> None:
    alice, carol = key("alice"), key("carol")
    _, a_target = start_node("alpha")
    legs = (
        swap.Leg("alpha", alice.public, carol.public, GOLD, 100),
        swap.Leg("beta", carol.public, alice.public, GOLD, 30),
    )
    sid = _propose(sequencer, legs, [alice, carol])
    with RollupClient(a_target) as a:
        _eventually(lambda: a.escrow(sid) != [], "alpha to escrow")
        [leg] = a.escrow(sid)
        assert (leg.sender, leg.to, leg.amount) == (alice.public, carol.public, 100)
        assert a.balance(alice.public, GOLD) == FUNDS - 100
        _, b_target = start_node("beta")  # replays the intent, escrows and votes late
        with RollupClient(b_target) as b:
            _eventually(lambda: b.balance(alice.public, GOLD) == 30, "beta to pay alice")
            _eventually(lambda: a.balance(carol.public, GOLD) == 100, "alpha to pay carol")
            assert b.balance(carol.public, GOLD) == FUNDS - 30
            assert a.escrow(sid) == []
            assert b.escrow(sid) == []


def test_swap_aborts_on_a_no_vote_and_refunds(sequencer: str, start_node: StartNode) -> None:
    alice, bob, carol = key("alice"), key("bob"), key("carol")
    _, a_target = start_node("alpha")
    _, b_target = start_node("beta")
    legs = (
        swap.Leg("alpha", bob.public, carol.public, GOLD, 10),  # bob holds only 5
        swap.Leg("beta", carol.public, alice.public, GOLD, 30),
    )
    sid = _propose(sequencer, legs, [bob, carol])
    # Votes are deterministic (Ed25519), so the test knows the entry id of alpha's NO.
    no = swap.encode_vote(swap.sign_vote(key("alpha"), sid, "alpha", False))
    no_id = codec.entry_id(SWAP_NAMESPACE, no)
    with RollupClient(a_target) as a, RollupClient(b_target) as b:
        refund = b.wait_receipt(no_id, 20)
        assert (refund.kind, refund.ok, refund.swap_id) == ("abort", True, sid), refund
        assert b.escrow(sid) == []
        assert b.balance(carol.public, GOLD) == FUNDS
        assert b.balance(alice.public, GOLD) == 0
        assert a.balance(bob.public, GOLD) == 5
        assert a.balance(carol.public, GOLD) == 0
