"""Atomic swaps end to end: a real sequencer, real rollup nodes, real coordinators, the CLI.

Nothing here is mocked: votes come from the rollup nodes' ledgers, outcomes from the log.
The network is shared by the package (this module, test_swap_faults and test_swap_tls), so
each test checks balance *changes*.
"""

from __future__ import annotations

import urllib.request

import pytest

from rollup_client.protocol import swap
from rollup_client.protocol.errors import InvalidArgument
from rollup_client.sdk import RollupClient, SequencerClient
from rollup_client.wire import swap_pb2 as pb
from swap_coordinator.client import SwapClient
from tests.network import HEARTBEAT_MS, Net, cli
from tests.swap.e2e import ALICE, BOB, CAROL, balances, changed, decided, doc

pytestmark = pytest.mark.processes


def test_run_commits_two_legs_and_the_audit_agrees(net: Net) -> None:
    before = balances(net)
    r = cli(
        net,
        "swap",
        "run",
        "--coordinator",
        net.coordinator,
        "--leg",
        "alpha:alice:bob:10:gold",
        "--leg",
        f"beta:bob:{ALICE.public.hex()}:20:silver",
        "--timeout",
        "10",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    st = doc(r)
    assert st["state"] == "committed"
    assert st["reason"] == "every rollup voted YES"
    assert [leg["lock"] for leg in st["legs"]] == ["paid", "paid"]
    assert [leg["from"] for leg in st["legs"]] == ["alice", "bob"]
    after = balances(net, st["decision_position"]["height"])
    assert changed(before, after) == {
        "alpha": {"alice": -10, "bob": 10},
        "beta": {"alice": 20, "bob": -20},
    }
    a = cli(
        net,
        "swap",
        "audit",
        st["swap_id"],
        "--sequencer",
        net.sequencer,
        "--genesis",
        str(net.genesis_path),
        "--rollup",
        ",".join(f"{r}={t}" for r, t in net.nodes.items()),
        "--json",
    )
    assert a.returncode == 0, a.stderr
    audit = doc(a)
    assert audit["outcome"] == "committed"
    assert audit["ok"]
    assert audit["decision_position"] == {**st["decision_position"], "block_start": False}
    assert {r: row["check"] for r, row in audit["rollups"].items()} == {"alpha": "ok", "beta": "ok"}
    with urllib.request.urlopen(f"http://{net.metrics['coord']}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    assert 'tandem_coordinator_decisions_total{outcome="committed"} 1.0' in text
    assert "tandem_coordinator_submissions_total 1.0" in text


def test_three_legs_proposed_signed_by_each_party_then_waited(net: Net) -> None:
    everywhere = ("alpha", "beta", "gamma")
    before = balances(net, rollups=everywhere)
    common = ("--coordinator", net.coordinator, "--json")
    p = cli(
        net,
        "swap",
        "propose",
        "--leg",
        "alpha:alice:bob:1:gold",
        "--leg",
        "beta:bob:carol:2:silver",
        "--leg",
        "gamma:carol:alice:3:bronze",
        "--timeout",
        "20",
        "--sign-as",
        "alice",
        *common,
    )
    assert p.returncode == 0, p.stderr
    proposed = doc(p)
    sid = proposed["swap_id"]
    assert proposed["state"] == "proposed"
    assert sorted(proposed["missing_signers"]) == ["bob", "carol"]
    assert proposed["time_left_ms"] == pytest.approx(20_000, abs=2_000)
    assert cli(net, "swap", "sign", sid, "--key", "bob", *common).returncode == 0
    with SwapClient(net.coordinator) as c:  # the last payer signs through the library
        c.sign(
            bytes.fromhex(sid), CAROL.public, CAROL.sign(bytes.fromhex(proposed["signing_bytes"]))
        )
    w = cli(
        net,
        "swap",
        "wait",
        sid,
        "--timeout",
        "20",
        "--json",
        env={"TANDEM_COORDINATOR": net.coordinator},
    )
    assert w.returncode == 0, w.stderr
    st = doc(w)
    assert st["state"] == "committed"
    assert st["intent_position"]["height"] < st["decision_position"]["height"]
    after = balances(net, st["decision_position"]["height"], everywhere)
    assert changed(before, after) == {
        "alpha": {"alice": -1, "bob": 1},
        "beta": {"bob": -2, "carol": 2},
        "gamma": {"carol": -3, "alice": 3},
    }
    listed = doc(cli(net, "swap", "list", "--state", "committed", *common))
    assert sid in [s["swap_id"] for s in listed["swaps"]]


def test_proposed_and_signed_in_one_call_by_a_client_holding_both_keys(net: Net) -> None:
    before = balances(net)
    legs = [
        swap.Leg("alpha", ALICE.public, BOB.public, "gold", 4),
        swap.Leg("beta", BOB.public, ALICE.public, "silver", 6),
    ]
    with SwapClient(net.coordinator) as c:
        with SequencerClient(net.sequencer) as seq:
            head = seq.status().head_time_ms
        assert c.log_time() >= head - 2 * HEARTBEAT_MS
        resp = c.propose_signed(legs, (ALICE, BOB), timeout_ms=20_000)
        # Submitted while being saved: by the answer it may be further on already.
        assert resp.status.state != pb.SWAP_STATE_PROPOSED
        assert not resp.status.missing_signers
        st = decided(c, resp.swap_id)
    assert st.state == pb.SWAP_STATE_COMMITTED
    after = balances(net, st.decision_position.height)
    assert changed(before, after) == {
        "alpha": {"alice": -4, "bob": 4},
        "beta": {"alice": 6, "bob": -6},
    }


def test_many_proposed_at_once_answer_in_order_and_a_bad_one_fails_alone(net: Net) -> None:
    before = balances(net)
    good = [swap.Leg("alpha", ALICE.public, BOB.public, "gold", 2)]
    bad = [swap.Leg("nowhere", ALICE.public, BOB.public, "gold", 2)]
    with SwapClient(net.coordinator) as c:
        done = c.propose_signed_many([(good, b"one"), (good, b"two")], (ALICE,), timeout_ms=20_000)
        assert [r.status.nonce for r in done] == [b"one", b"two"]
        deadline = done[0].deadline_ms
        with pytest.raises(InvalidArgument, match="genesis"):
            c.propose_signed_many([(bad, b"x"), (good, b"three")], (ALICE,), deadline_ms=deadline)
        ids = [r.swap_id for r in done] + [swap.Intent(tuple(good), deadline, b"three").swap_id]
        ends = [decided(c, sid) for sid in ids]  # the good one of the failed call went ahead
    assert [st.state for st in ends] == [pb.SWAP_STATE_COMMITTED] * 3
    after = balances(net, max(st.decision_position.height for st in ends))
    assert changed(before, after) == {"alpha": {"alice": -6, "bob": 6}, "beta": {}}


def test_a_timeout_counts_from_the_log_time_last_seen_while_fresh(
    net: Net, monkeypatch: pytest.MonkeyPatch
) -> None:
    legs = [swap.Leg("alpha", ALICE.public, BOB.public, "gold", 1)]
    with SwapClient(net.coordinator) as c:
        first = c.propose_signed(legs, (ALICE,), timeout_ms=20_000)
        seen = c.get(first.swap_id).log_time_ms
        monkeypatch.setattr("swap_coordinator.client.FRESH_S", 3600.0)
        again = c.propose_signed(legs, (ALICE,), timeout_ms=20_000)
        assert again.deadline_ms == seen + 20_000  # no LogTime call: the last answer's time
        monkeypatch.setattr("swap_coordinator.client.FRESH_S", 0.0)
        latest = c.propose_signed(legs, (ALICE,), timeout_ms=20_000)
        assert latest.deadline_ms >= seen + 20_000
        for resp in (first, again, latest):  # settled before the next test reads balances
            assert decided(c, resp.swap_id).state == pb.SWAP_STATE_COMMITTED


def test_a_leg_short_of_funds_votes_no_and_everyone_is_refunded(net: Net) -> None:
    before = balances(net)
    r = cli(
        net,
        "swap",
        "run",
        "--coordinator",
        net.coordinator,
        "--leg",
        "alpha:alice:bob:10:gold",
        "--leg",
        "beta:bob:alice:1000000000:silver",
        "--timeout",
        "10",
        "--json",
    )
    assert r.returncode == 3, r.stderr
    st = doc(r)
    assert st["state"] == "aborted"
    assert st["reason"] == "beta voted NO"
    assert {leg["rollup"]: leg["vote"] for leg in st["legs"]}["beta"] == "no"
    assert changed(before, balances(net, st["decision_position"]["height"])) == {
        "alpha": {},
        "beta": {},
    }
    for rollup in ("alpha", "beta"):
        with RollupClient(net.nodes[rollup]) as node:
            assert node.escrow(bytes.fromhex(st["swap_id"])) == []


def test_a_silent_rollup_aborts_at_the_first_block_past_the_deadline(net: Net) -> None:
    before = balances(net)
    legs = [
        swap.Leg("alpha", ALICE.public, BOB.public, "gold", 10),
        swap.Leg("beta", BOB.public, CAROL.public, "silver", 20),
        swap.Leg("delta", CAROL.public, ALICE.public, "lead", 30),  # no node: never votes
    ]
    with SwapClient(net.coordinator) as c:
        resp = c.propose(legs, timeout_ms=1_500)
        for k in (ALICE, BOB, CAROL):
            c.sign(resp.swap_id, k.public, k.sign(resp.signing_bytes))
        st = decided(c, resp.swap_id)
    assert st.state == pb.SWAP_STATE_ABORTED
    assert st.reason == "deadline passed"
    assert st.decision_at_block_start
    assert st.time_left_ms < 0
    locks = [ls.lock for ls in st.legs]
    assert locks == [pb.LOCK_STATE_REFUNDED, pb.LOCK_STATE_REFUNDED, pb.LOCK_STATE_RELEASED]
    after = balances(net, st.decision_position.height)
    assert changed(before, after) == {"alpha": {}, "beta": {}}


def test_wait_gives_up_with_4_while_pending(net: Net) -> None:
    legs = [swap.Leg("delta", ALICE.public, BOB.public, "lead", 1)]
    with SwapClient(net.coordinator) as c:
        sid = c.propose(legs, timeout_ms=60_000).swap_id
    w = cli(net, "swap", "wait", sid.hex(), "--coordinator", net.coordinator, "--timeout", "0.3")
    assert w.returncode == 4, w.stderr
