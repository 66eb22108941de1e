"""Swaps end to end when something fails: a coordinator killed or doubled, a rollup down,
funds contested, bad requests, a loaded sequencer. Same shared network as test_swap_e2e."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import grpc
import pytest
import trio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from rollup_client.protocol import swap
from rollup_client.protocol.errors import InvalidArgument, NotFound, Unauthenticated
from rollup_client.protocol.genesis import SWAP_NAMESPACE
from rollup_client.sdk import RollupClient, TrioSequencerClient
from rollup_client.wire import swap_pb2 as pb
from rollup_client.wire import swap_pb2_grpc as pb_grpc
from swap_coordinator import convert
from swap_coordinator.client import SwapClient
from swap_coordinator.store import Store
from tests.keys import key
from tests.network import HEARTBEAT_MS, Net, cli, spawn_node, start_coordinator, until
from tests.procs import Proc
from tests.swap.e2e import ALICE, BOB, CAROL, balances, changed, decided, doc

from .conftest import LOAD_NAMESPACE

pytestmark = pytest.mark.processes


def test_coordinator_killed_after_submitting_the_swap_still_settles(
    net: Net, procs: list[Proc]
) -> None:
    before = balances(net)
    own, target = start_coordinator(net, procs, "doomed")
    legs = [
        swap.Leg("alpha", ALICE.public, BOB.public, "gold", 5),
        swap.Leg("beta", BOB.public, ALICE.public, "silver", 6),
    ]
    with SwapClient(target) as c:
        resp = c.propose(legs, timeout_ms=20_000)
        sid = resp.swap_id
        for k in (ALICE, BOB):
            c.sign(sid, k.public, k.sign(resp.signing_bytes))

    log = net.dir / "doomed" / "coordinator.log"
    until("the intent acknowledged", lambda: '"event": "submitted"' in log.read_text() or None)
    own.kill9()
    # nobody drives the swap now: the rollups decide and settle it from the log alone
    with RollupClient(net.nodes["beta"]) as beta:
        until(
            "alice paid on beta",
            lambda: beta.balance(ALICE.public, "silver") == before["beta"]["alice"] + 6 or None,
        )
    _, again = start_coordinator(net, procs, "doomed")  # same data dir: store + log replay
    with SwapClient(again) as c:
        st = decided(c, sid)
    assert st.state == pb.SWAP_STATE_COMMITTED
    assert [ls.lock for ls in st.legs] == [pb.LOCK_STATE_PAID, pb.LOCK_STATE_PAID]
    assert changed(before, balances(net, st.decision_position.height)) == {
        "alpha": {"alice": -5, "bob": 5},
        "beta": {"alice": 6, "bob": -6},
    }


def test_a_complete_intent_answered_on_its_ack_is_kept_by_the_log_not_the_store(
    net: Net, procs: list[Proc]
) -> None:
    own, target = start_coordinator(net, procs, "acked")
    legs = [
        swap.Leg("alpha", CAROL.public, BOB.public, "gold", 2),
        swap.Leg("beta", BOB.public, CAROL.public, "silver", 3),
    ]
    with SwapClient(target) as c:
        resp = c.propose_signed(legs, (CAROL, BOB), timeout_ms=20_000)
    # Answered once the sequencer acknowledged it: in the log, so not written here.
    assert resp.status.state in (pb.SWAP_STATE_SUBMITTED, pb.SWAP_STATE_ORDERED)
    own.kill9()
    store = Store(net.dir / "acked" / "coordinator.db")
    try:
        assert store.proposals() == []
    finally:
        store.close()
    _, again = start_coordinator(net, procs, "acked")

    def known(c: SwapClient) -> pb.SwapStatus | None:
        try:  # NotFound until the restarted coordinator has followed the log that far
            st = c.get(resp.swap_id)
        except NotFound:
            return None
        return st if st.decided else None

    with SwapClient(again) as c:
        st = until("the swap learnt from the log alone", partial(known, c))
    assert st.state == pb.SWAP_STATE_COMMITTED


def test_two_coordinators_drive_the_same_swap_once(net: Net, procs: list[Proc]) -> None:
    before = balances(net)
    second_proc, second = start_coordinator(net, procs, "second")
    legs = [
        swap.Leg("alpha", ALICE.public, CAROL.public, "gold", 7),
        swap.Leg("beta", CAROL.public, ALICE.public, "silver", 8),
    ]
    with SwapClient(net.coordinator) as a, SwapClient(second) as b:
        pa = a.propose(legs, timeout_ms=20_000, nonce=b"same")
        pb_ = b.propose(legs, deadline_ms=pa.deadline_ms, nonce=b"same")
        assert pa.swap_id == pb_.swap_id
        assert pa.signing_bytes == pb_.signing_bytes
        sid = pa.swap_id
        for client in (a, b):
            for k in (ALICE, CAROL):
                client.sign(sid, k.public, k.sign(pa.signing_bytes))
        done = [decided(c, sid) for c in (a, b)]
    assert {d.state for d in done} == {pb.SWAP_STATE_COMMITTED}
    assert done[0].intent_position == done[1].intent_position
    assert done[0].decision_position == done[1].decision_position
    assert changed(before, balances(net, done[0].decision_position.height)) == {
        "alpha": {"alice": -7, "carol": 7},  # paid once, not twice
        "beta": {"alice": 8, "carol": -8},
    }
    # a clean stop checkpoints: the restart resumes from there, not from height 0
    assert second_proc.stop() == 0
    _, again = start_coordinator(net, procs, "second")
    ready = [
        json.loads(line)
        for line in (net.dir / "second" / "coordinator.log").read_text().splitlines()
        if '"ready"' in line
    ]
    assert ready[0]["height"] == -1
    assert ready[1]["height"] >= done[1].decision_position.height
    with SwapClient(again) as b:
        assert b.get(sid).state == pb.SWAP_STATE_COMMITTED


async def test_void_intent_and_resubmitted_votes_through_a_real_sequencer(net: Net) -> None:
    intent = swap.Intent((swap.Leg("alpha", ALICE.public, BOB.public, "gold", 3),), 1_001, b"v")
    data = swap.encode_intent(swap.sign_intent(swap.SignedIntent(intent), ALICE))
    anchors: dict[str, Any] = {
        "chain_id": net.genesis.chain_id,
        "sequencer_key": net.genesis.sequencer_key,
    }
    async with (
        TrioSequencerClient(net.sequencer, key("coordinator"), **anchors) as coordinator,
        TrioSequencerClient(net.sequencer, key("alpha"), **anchors) as alpha,
    ):
        with trio.fail_after(10):
            (first,) = await coordinator.submit_batch([(SWAP_NAMESPACE, data)])
            (again,) = await coordinator.submit_batch([(SWAP_NAMESPACE, data)])
        assert not first.duplicate
        assert again.duplicate
        assert (again.height, again.index) == (first.height, first.index)
        v = swap.encode_vote(swap.sign_vote(key("alpha"), intent.swap_id, "alpha", True))
        with trio.fail_after(10):
            (vote1,) = await alpha.submit_batch([(SWAP_NAMESPACE, v)])
            (vote2,) = await alpha.submit_batch([(SWAP_NAMESPACE, v)])
        assert vote2.duplicate
        assert (vote2.height, vote2.index) == (vote1.height, vote1.index)
    with RollupClient(net.nodes["alpha"]) as node:
        until("alpha past the vote", lambda: node.status().height >= vote1.height or None)
        assert node.escrow(intent.swap_id) == []  # void: never escrowed
    with SwapClient(net.coordinator) as c, pytest.raises(NotFound):
        c.get(intent.swap_id)  # void: never ordered, and not proposed there
    a = cli(
        net,
        "swap",
        "audit",
        intent.swap_id.hex(),
        "--sequencer",
        net.sequencer,
        "--genesis",
        str(net.genesis_path),
        "--json",
    )
    audit = doc(a)
    assert audit["outcome"] == "aborted"
    assert "deadline" in audit["reason"]
    assert audit["decision_position"]["height"] == first.height


def test_bad_requests_get_their_codes_and_change_nothing(net: Net) -> None:
    leg = swap.Leg("alpha", ALICE.public, BOB.public, "gold", 1)
    with SwapClient(net.coordinator) as c:
        known = len(c.list())
        with pytest.raises(InvalidArgument, match="legs"):
            c.propose([], timeout_ms=1_000)
        with pytest.raises(InvalidArgument, match="exactly one"):
            c.propose([leg])
        with pytest.raises(InvalidArgument, match="genesis"):
            c.propose([swap.Leg("nowhere", ALICE.public, BOB.public, "gold", 1)], timeout_ms=1)
        resp = c.propose([leg], timeout_ms=10_000)
        with pytest.raises(Unauthenticated):
            c.sign(resp.swap_id, ALICE.public, BOB.sign(resp.signing_bytes))
        with pytest.raises(InvalidArgument, match="pays no leg"):
            c.sign(resp.swap_id, BOB.public, BOB.sign(resp.signing_bytes))
        with pytest.raises(NotFound):
            c.get(b"\x01" * 32)
        st = c.get(resp.swap_id)
        assert st.state == pb.SWAP_STATE_PROPOSED
        assert list(st.missing_signers) == [ALICE.public]
        with pytest.raises(InvalidArgument, match="pays no leg"):
            c.propose_signed([leg], (BOB,), deadline_ms=resp.deadline_ms)
        forged = pb.PayerSignature(payer=ALICE.public, signature=BOB.sign(resp.signing_bytes))
        with grpc.insecure_channel(net.coordinator) as ch:
            propose = pb_grpc.SwapServiceStub(ch).Propose
            timed = pb.ProposeRequest(timeout_ms=10_000, nonce=b"n")
            dated = pb.ProposeRequest(deadline_ms=resp.deadline_ms, nonce=b"f")
            for req, code, says in (
                (timed, "INVALID_ARGUMENT", "deadline"),
                (dated, "UNAUTHENTICATED", ""),
            ):
                req.legs.append(convert.leg_to_pb(leg))
                req.signatures.append(forged)
                with pytest.raises(grpc.RpcError) as err:
                    propose(req, timeout=5)
                assert err.value.code().name == code
                assert says in str(err.value.details())
        assert len(c.list()) == known + 1
    with grpc.insecure_channel(net.coordinator) as ch:
        for method in ("Propose", "Sign", "Get", "List"):
            raw: grpc.UnaryUnaryMultiCallable[bytes, bytes] = ch.unary_unary(
                f"/tandem.v1.SwapService/{method}"
            )
            with pytest.raises(grpc.RpcError) as err:
                raw(b"\xff\xff\xff", timeout=5)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, method
        watch: grpc.UnaryStreamMultiCallable[bytes, bytes] = ch.unary_stream(
            "/tandem.v1.SwapService/Watch"
        )
        with pytest.raises(grpc.RpcError) as err:
            list(watch(b"\x0a\xff", timeout=5))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        # types-grpcio-health-checking's HealthStub declares no Check (grpcio sets it per stub).
        health = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)  # type: ignore[attr-defined]
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        refl = reflection_pb2_grpc.ServerReflectionStub(ch)
        listing = reflection_pb2.ServerReflectionRequest(list_services="")
        # types-grpcio-reflection types ServerReflectionInfo as binascii's Incomplete, no callable.
        (answer,) = list(refl.ServerReflectionInfo(iter([listing]), timeout=5))  # type: ignore[operator]
        names = {svc.name for svc in answer.list_services_response.service}
        assert "tandem.v1.SwapService" in names
        assert "grpc.health.v1.Health" in names
    bad = cli(
        net, "swap", "propose", "--coordinator", net.coordinator, "--leg", "alpha:alice:bob:x:gold"
    )
    assert bad.returncode == 1
    assert "not an integer" in bad.stderr
    bad = cli(
        net,
        "swap",
        "run",
        "--coordinator",
        net.coordinator,
        "--leg",
        "alpha:alice:bob:-5:gold",
        "--timeout",
        "5",
    )
    assert bad.returncode == 1
    assert "positive" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_two_swaps_competing_for_the_same_funds_only_one_escrows(net: Net) -> None:
    before = balances(net)
    half = before["alpha"]["alice"] // 2 + 1  # both cannot be escrowed at once
    with SwapClient(net.coordinator) as c:
        ids = []
        for payee in (BOB, CAROL):
            legs = [
                swap.Leg("alpha", ALICE.public, payee.public, "gold", half),
                swap.Leg("beta", payee.public, ALICE.public, "silver", 1),
            ]
            resp = c.propose(legs, timeout_ms=20_000)
            ids.append(resp.swap_id)
            for k in (ALICE, payee):
                c.sign(resp.swap_id, k.public, k.sign(resp.signing_bytes))
        done = [decided(c, sid) for sid in ids]
    assert sorted(d.state for d in done) == [pb.SWAP_STATE_COMMITTED, pb.SWAP_STATE_ABORTED]
    loser = next(d for d in done if d.state == pb.SWAP_STATE_ABORTED)
    assert loser.reason == "alpha voted NO"
    winner = BOB if done[0].state == pb.SWAP_STATE_COMMITTED else CAROL
    name = "bob" if winner is BOB else "carol"
    height = max(d.decision_position.height for d in done)
    assert changed(before, balances(net, height)) == {
        "alpha": {"alice": -half, name: half},
        "beta": {"alice": 1, name: -1},
    }


async def test_a_short_deadline_commits_while_the_sequencer_is_under_load(net: Net) -> None:
    """Deadlines are log time: blocks cut back to back do not bring D closer."""
    anchors: dict[str, Any] = {
        "chain_id": net.genesis.chain_id,
        "sequencer_key": net.genesis.sequencer_key,
    }
    legs = [
        swap.Leg("alpha", ALICE.public, BOB.public, "gold", 2),
        swap.Leg("beta", BOB.public, ALICE.public, "silver", 3),
    ]

    def run_swap() -> pb.SwapStatus:
        with SwapClient(net.coordinator) as c:
            resp = c.propose(legs, timeout_ms=3_000)
            for k in (ALICE, BOB):
                c.sign(resp.swap_id, k.public, k.sign(resp.signing_bytes))
            return decided(c, resp.swap_id)

    async with TrioSequencerClient(net.sequencer, key("loader"), **anchors) as loader:
        start = (await loader.status()).height
        done = trio.Event()

        async def hammer(task: int) -> None:
            n = 0
            while not done.is_set():
                batch = [(LOAD_NAMESPACE, f"{task}:{n}:{i}".encode() * 8) for i in range(200)]
                await loader.submit_batch(batch)
                n += 1

        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                for task in range(3):
                    nursery.start_soon(hammer, task)
                t0 = trio.current_time()
                st = await trio.to_thread.run_sync(run_swap)
                elapsed = trio.current_time() - t0
                done.set()
        blocks = (await loader.status()).height - start
    assert st.state == pb.SWAP_STATE_COMMITTED, st.reason
    assert blocks / elapsed > 2 * 1000 / HEARTBEAT_MS, "the sequencer was not under load"
    print(f"swap committed in {elapsed:.2f} s while {blocks} blocks were cut")


def test_a_rollup_down_at_the_intent_votes_after_restart_before_the_deadline(net: Net) -> None:
    before = balances(net)
    net.node_procs["beta"].kill9()
    legs = [
        swap.Leg("alpha", ALICE.public, CAROL.public, "gold", 4),
        swap.Leg("beta", CAROL.public, ALICE.public, "silver", 5),
    ]
    with SwapClient(net.coordinator) as c:
        resp = c.propose(legs, timeout_ms=20_000)
        sid = resp.swap_id
        for k in (ALICE, CAROL):
            c.sign(sid, k.public, k.sign(resp.signing_bytes))

        def alpha_locked() -> bool | None:
            return c.get(sid).legs[0].lock == pb.LOCK_STATE_LOCKED or None

        until("alpha's escrow", alpha_locked)
        assert c.get(sid).legs[1].lock == pb.LOCK_STATE_WAITING
        restarted = spawn_node(net, net.procs, "beta")  # same data dir: resumes, then votes
        net.node_procs["beta"] = restarted
        net.nodes["beta"] = restarted.ready()["listen"]
        st = decided(c, sid)
    assert st.state == pb.SWAP_STATE_COMMITTED
    assert changed(before, balances(net, st.decision_position.height)) == {
        "alpha": {"alice": -4, "carol": 4},
        "beta": {"alice": 5, "carol": -5},
    }


def test_a_rollup_down_past_the_deadline_applies_the_abort_on_restart(net: Net) -> None:
    before = balances(net)
    net.node_procs["beta"].kill9()
    legs = [
        swap.Leg("alpha", BOB.public, CAROL.public, "gold", 6),
        swap.Leg("beta", CAROL.public, BOB.public, "silver", 7),
    ]
    with SwapClient(net.coordinator) as c:
        resp = c.propose(legs, timeout_ms=1_000)
        sid = resp.swap_id
        for k in (BOB, CAROL):
            c.sign(sid, k.public, k.sign(resp.signing_bytes))
        st = decided(c, sid)
    assert st.state == pb.SWAP_STATE_ABORTED
    assert st.decision_at_block_start
    assert [ls.lock for ls in st.legs] == [pb.LOCK_STATE_REFUNDED, pb.LOCK_STATE_RELEASED]
    restarted = spawn_node(net, net.procs, "beta")  # replays the intent, then the abort
    net.node_procs["beta"] = restarted
    net.nodes["beta"] = restarted.ready()["listen"]
    assert changed(before, balances(net)) == {"alpha": {}, "beta": {}}
    with RollupClient(net.nodes["beta"]) as beta:
        assert beta.escrow(sid) == []
