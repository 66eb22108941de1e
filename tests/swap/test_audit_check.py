"""The audit's escrow comparison: what a node may hold at its height, given the log."""

from __future__ import annotations

from rollup_client.protocol import swap
from swap_coordinator.audit import Audit, Held, _check_escrow

from .helpers import ASSET, USERS, genesis, make_block, signed, vote

A, B, _ = USERS
INTENT = swap.Intent(
    (
        swap.Leg("alpha", A.public, B.public, ASSET, 5),
        swap.Leg("beta", B.public, A.public, ASSET, 7),
    ),
    100,
    b"",
)
ALPHA_LEGS = ((A.public, B.public, ASSET, 5),)


def record() -> tuple[swap.SwapRecord, swap.Decision]:
    """Intent at height 0, alpha YES at 1, beta YES (commit) at 3."""
    sid = INTENT.swap_id
    blocks = [
        make_block(0, 10, [signed(INTENT)]),
        make_block(1, 20, [vote(sid, "alpha", True)]),
        make_block(2, 30, []),
        make_block(3, 40, [vote(sid, "beta", True)]),
    ]
    t = swap.SwapTracker(genesis())
    for b in blocks:
        t.begin_block(b.height, b.time_ms)
        for e in b.entries:
            t.apply(e)
    rec = t.get(sid)
    assert rec is not None
    return rec, t.decision(sid)


def check(held: Held) -> tuple[str, list[str]]:
    rec, decision = record()
    out = Audit(INTENT.swap_id, decision, INTENT, 3, 40)
    row: dict[str, object] = {}
    _check_escrow(out, "alpha", row, held, rec)
    return str(row["check"]), out.problems


def test_a_node_between_its_yes_and_the_decision_holds_the_legs() -> None:
    assert check(Held("alpha", 2, ALPHA_LEGS)) == ("ok", [])
    assert check(Held("alpha", 0, ALPHA_LEGS)) == ("ok", [])  # escrowed at the intent
    status, problems = check(Held("alpha", 2, ()))
    assert status == "MISMATCH"
    assert problems


def test_a_node_past_the_decision_holds_nothing() -> None:
    assert check(Held("alpha", 3, ())) == ("ok", [])
    assert check(Held("alpha", 9, ALPHA_LEGS))[0] == "MISMATCH"


def test_a_node_behind_the_intent_or_serving_another_rollup() -> None:
    rec, decision = record()
    out = Audit(INTENT.swap_id, decision, INTENT, 3, 40)
    _check_escrow(out, "alpha", {}, Held("beta", 3, ()), rec)
    assert out.problems == ["the node given for 'alpha' serves 'beta'"]
    assert check(Held("alpha", -1, ())) == ("node has not reached the intent yet", [])
