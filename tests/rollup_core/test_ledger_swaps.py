"""The ledger side of swaps: escrow or refuse, vote, settle or refund at the decisive spot."""

from __future__ import annotations

from rollup_client.ledger import TokenLedger
from rollup_client.protocol import swap
from rollup_client.protocol.genesis import SWAP_NAMESPACE
from rollup_client.protocol.statemachine import BLOCK_START

from .helpers import key, make_genesis, rollup_key
from .network import Network, intent_entry
from .test_ledger_transfers import transfer

A, B, C = key(1), key(2), key(3)
BAL = {A.public: {"USD": 100, "EUR": 0}, B.public: {"USD": 0, "EUR": 50}, C.public: {"USD": 10}}
GENESIS = make_genesis({"alpha": BAL, "beta": BAL, "gamma": BAL}, ["USD", "EUR"])
DEADLINE = 1_500


def two_way(amount_a: int = 30, amount_b: int = 20, nonce: bytes = b"n") -> swap.Intent:
    """A pays B `amount_a` USD on alpha; B pays A `amount_b` EUR on beta."""
    return swap.Intent(
        (
            swap.Leg("alpha", A.public, B.public, "USD", amount_a),
            swap.Leg("beta", B.public, A.public, "EUR", amount_b),
        ),
        DEADLINE,
        nonce,
    )


def test_two_rollup_swap_commits_and_pays_exactly() -> None:
    net = Network(GENESIS)
    intent = two_way()
    got = net.step([intent_entry(intent, [A, B])])
    assert sorted(r.kind for r in got) == ["escrow", "escrow"]
    assert all(r.ok for r in got)
    alpha, beta = net.ledgers["alpha"], net.ledgers["beta"]
    assert alpha.balance(A.public, "USD") == 70
    assert alpha.escrow(intent.swap_id)
    assert len(net.queued["alpha"]) == len(net.queued["beta"]) == 1
    got = net.step()
    assert sorted(r.kind for r in got) == ["commit", "commit"]
    assert alpha.balance(B.public, "USD") == 30
    assert alpha.balance(A.public, "USD") == 70
    assert beta.balance(A.public, "EUR") == 20
    assert beta.balance(B.public, "EUR") == 30
    assert not alpha.escrow(intent.swap_id)
    assert not beta.escrow(intent.swap_id)
    assert net.supply("USD") == 330
    assert net.supply("EUR") == 150
    assert alpha.owed_votes() == []
    assert alpha.take_outbox() == []


def test_three_legs_on_three_rollups_and_two_legs_on_one() -> None:
    net = Network(GENESIS)
    intent = swap.Intent(
        (
            swap.Leg("alpha", A.public, B.public, "USD", 60),
            swap.Leg("alpha", A.public, C.public, "USD", 40),
            swap.Leg("beta", B.public, C.public, "EUR", 50),
            swap.Leg("gamma", C.public, A.public, "USD", 10),
        ),
        DEADLINE,
        b"3",
    )
    net.step([intent_entry(intent, [A, B, C])])
    assert net.ledgers["alpha"].balance(A.public, "USD") == 0
    net.step()
    alpha, beta, gamma = (net.ledgers[r] for r in ("alpha", "beta", "gamma"))
    assert (alpha.balance(B.public, "USD"), alpha.balance(C.public, "USD")) == (60, 50)
    assert beta.balance(C.public, "EUR") == 50
    assert gamma.balance(A.public, "USD") == 110
    assert net.supply("USD") == 330


def test_leg_short_of_funds_votes_no_and_every_rollup_refunds() -> None:
    net = Network(GENESIS)
    intent = two_way(amount_b=51)
    got = net.step([intent_entry(intent, [A, B])])
    (refused,) = [r for r in got if not r.ok]
    assert refused.kind == "refuse"
    assert "has 50 EUR, needs 51" in refused.reason
    net.step()
    assert net.ledgers["alpha"].balance(A.public, "USD") == 100
    assert not net.ledgers["alpha"].escrow(intent.swap_id)
    assert {r.kind for _, r in net.receipts[-2:]} == {"abort"}
    assert net.supply("USD") == 330
    assert net.supply("EUR") == 150


def test_several_legs_on_one_rollup_are_checked_together() -> None:
    net = Network(GENESIS)
    intent = swap.Intent(
        (
            swap.Leg("alpha", A.public, B.public, "USD", 60),
            swap.Leg("alpha", A.public, C.public, "USD", 41),
        ),
        DEADLINE,
        b"x",
    )
    (r,) = net.step([intent_entry(intent, [A])])
    assert not r.ok
    assert "has 100 USD, needs 101" in r.reason
    assert net.ledgers["alpha"].balance(A.public, "USD") == 100


def test_silent_rollup_aborts_at_the_first_block_past_the_deadline() -> None:
    net = Network(GENESIS)
    intent = two_way()
    net.step([intent_entry(intent, [A, B])])
    net.step(deliver=["alpha"])  # beta's YES is never submitted
    alpha = net.ledgers["alpha"]
    assert alpha.escrow(intent.swap_id)
    assert net.step(deliver=[], dt_ms=DEADLINE - net.time_ms) == []  # time == D: not past it
    got = net.step(deliver=[], dt_ms=1)
    assert (
        sorted((r.kind, r.index, r.entry_id) for r in got)
        == [("abort", BLOCK_START, intent.swap_id)] * 2
    )
    assert alpha.balance(A.public, "USD") == 100
    assert not alpha.escrow(intent.swap_id)
    assert net.ledgers["beta"].balance(B.public, "EUR") == 50


def test_escrowed_funds_cannot_be_spent_and_competing_swaps_get_one_escrow() -> None:
    net = Network(GENESIS)
    first, second = two_way(80, 1, b"1"), two_way(80, 1, b"2")
    got = net.step([intent_entry(first, [A, B]), intent_entry(second, [A, B])], deliver=[])
    alpha_kinds = [(r.swap_id, r.kind) for r in got if r.kind in ("escrow", "refuse")][:2]
    assert (first.swap_id, "escrow") in alpha_kinds
    assert (second.swap_id, "refuse") in alpha_kinds
    spend = transfer(sender=A, to=C, amount=21, rollup="alpha")
    (r,) = net.step([("alpha", spend)], deliver=[])
    assert not r.ok
    assert r.reason == "insufficient balance: has 20, needs 21"


def test_owed_votes_survive_restore_until_seen_in_the_log() -> None:
    net = Network(GENESIS)
    intent = two_way()
    net.step([intent_entry(intent, [A, B])], deliver=[])
    alpha = net.ledgers["alpha"]
    owed = alpha.owed_votes()
    assert owed == net.queued["alpha"]
    assert owed[0][0] == SWAP_NAMESPACE
    restarted = TokenLedger(GENESIS, "alpha", rollup_key("alpha"))
    restarted.restore(alpha.snapshot())
    assert restarted.owed_votes() == owed
    assert restarted.take_outbox() == []
    assert restarted.state_root() == alpha.state_root()
    observer = TokenLedger(GENESIS, "alpha")
    observer.restore(alpha.snapshot())
    assert observer.owed_votes() == []
    net.step(deliver=["alpha"])
    assert alpha.owed_votes() == []
    # Duplicate votes are harmless: resubmitting changes nothing.
    before = alpha.state_root()
    net.step(list(owed), deliver=[])
    assert alpha.state_root() == before
    assert alpha.escrow(intent.swap_id)


def test_intent_ordered_at_its_deadline_is_void_and_escrows_nothing() -> None:
    net = Network(GENESIS)
    net.step(dt_ms=DEADLINE - net.time_ms)
    assert net.step([intent_entry(two_way(), [A, B])], dt_ms=0) == []
    assert net.ledgers["alpha"].balance(A.public, "USD") == 100
