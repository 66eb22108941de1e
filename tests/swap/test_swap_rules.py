"""The swap rules on hand-picked logs: each case of DESIGN.md section 4, named."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rollup_client.protocol import swap
from rollup_client.protocol.block import VerifiedBlock
from rollup_client.protocol.errors import InvalidArgument, Unauthenticated
from rollup_client.protocol.swap import Decided, IntentOrdered, Outcome
from tests.keys import key

from .helpers import ASSET, USERS, genesis, make_block, signed, vote

A, B, C = USERS
G = genesis()


def two_leg(deadline: int = 100, nonce: bytes = b"n") -> swap.Intent:
    return swap.Intent(
        (
            swap.Leg("alpha", A.public, B.public, ASSET, 5),
            swap.Leg("beta", B.public, A.public, ASSET, 7),
        ),
        deadline,
        nonce,
    )


def log(*blocks: tuple[int, list[bytes]]) -> list[VerifiedBlock]:
    return [make_block(h, t, d) for h, (t, d) in enumerate(blocks)]


def outcome(blocks: list[VerifiedBlock], intent: swap.Intent) -> tuple[Outcome, int, int]:
    d = swap.decide(blocks, intent.swap_id, G)
    return d.outcome, d.height, d.index


def test_commit_at_the_vote_completing_the_yes_set() -> None:
    it = two_leg()
    sid = it.swap_id
    blocks = log(
        (10, [signed(it)]), (20, [vote(sid, "alpha", True)]), (30, [vote(sid, "beta", True)])
    )
    assert outcome(blocks, it) == (Outcome.COMMIT, 2, 0)
    assert outcome(blocks[:2], it) == (Outcome.PENDING, -1, -1)


def test_three_legs_on_three_rollups_need_three_yes() -> None:
    it = swap.Intent(
        tuple(
            swap.Leg(r, p.public, q.public, ASSET, 1)
            for r, p, q in (("alpha", A, B), ("beta", B, C), ("gamma", C, A))
        ),
        100,
        b"",
    )
    sid = it.swap_id
    yes = [vote(sid, r, True) for r in ("gamma", "alpha", "beta")]
    assert outcome(log((0, [signed(it), *yes[:2]])), it)[0] is Outcome.PENDING
    assert outcome(log((0, [signed(it), *yes])), it) == (Outcome.COMMIT, 0, 3)


def test_several_legs_on_one_rollup_need_one_vote() -> None:
    it = swap.Intent(
        (
            swap.Leg("alpha", A.public, B.public, ASSET, 1),
            swap.Leg("alpha", B.public, A.public, ASSET, 2),
        ),
        100,
        b"",
    )
    assert outcome(log((0, [signed(it), vote(it.swap_id, "alpha", True)])), it) == (
        Outcome.COMMIT,
        0,
        1,
    )


def test_vote_in_the_last_block_at_the_deadline_counts() -> None:
    it = two_leg(deadline=50)
    sid = it.swap_id
    blocks = log((10, [signed(it), vote(sid, "alpha", True)]), (50, [vote(sid, "beta", True)]))
    assert outcome(blocks, it) == (Outcome.COMMIT, 1, 0)


def test_vote_in_the_first_block_after_the_deadline_is_too_late() -> None:
    it = two_leg(deadline=50)
    sid = it.swap_id
    blocks = log((10, [signed(it), vote(sid, "alpha", True)]), (51, [vote(sid, "beta", True)]))
    assert outcome(blocks, it) == (Outcome.ABORT, 1, swap.BLOCK_START)


def test_deadline_passes_in_an_empty_block() -> None:
    it = two_leg(deadline=50)
    blocks = log((10, [signed(it)]), (50, []), (60, []), (70, []))
    assert outcome(blocks, it) == (Outcome.ABORT, 2, swap.BLOCK_START)
    assert swap.decide(blocks, it.swap_id, G).reason == "deadline passed"


def test_first_no_aborts_and_later_votes_change_nothing() -> None:
    it = two_leg()
    sid = it.swap_id
    blocks = log(
        (10, [signed(it), vote(sid, "alpha", True), vote(sid, "beta", False)]),
        (20, [vote(sid, "beta", True)]),
    )
    assert outcome(blocks, it) == (Outcome.ABORT, 0, 2)


def test_first_vote_of_a_rollup_counts() -> None:
    it = two_leg()
    sid = it.swap_id
    blocks = log(
        (10, [signed(it), vote(sid, "alpha", True), vote(sid, "alpha", False)]),
        (20, [vote(sid, "beta", True)]),
    )
    assert outcome(blocks, it) == (Outcome.COMMIT, 1, 0)


def test_uninvolved_forged_and_early_votes_are_ignored() -> None:
    it = two_leg()
    sid = it.swap_id
    blocks = log(
        (5, [vote(sid, "alpha", False)]),  # before the intent
        (
            10,
            [
                signed(it),
                vote(sid, "delta", False),  # no leg on delta
                vote(sid, "alpha", False, signer=key("mallory")),  # forged
                vote(sid, "alpha", True),
                vote(sid, "beta", True),
            ],
        ),
    )
    assert outcome(blocks, it) == (Outcome.COMMIT, 1, 4)


def test_intent_ordered_at_its_deadline_is_void() -> None:
    it = two_leg(deadline=10)
    sid = it.swap_id
    tracker = swap.SwapTracker(G)
    block = make_block(0, 10, [signed(it), vote(sid, "alpha", True), vote(sid, "beta", True)])
    tracker.begin_block(0, 10)
    assert [tracker.apply(e) for e in block.entries] == [[], [], []]
    assert tracker.get(sid) is None
    d = swap.decide([block], sid, G)
    assert (d.outcome, d.height, d.index) == (Outcome.ABORT, 0, 0)
    assert "deadline" in d.reason


def test_duplicate_intent_is_ordered_once() -> None:
    it = two_leg()
    tracker = swap.SwapTracker(G)
    block = make_block(0, 10, [signed(it), signed(it)])
    tracker.begin_block(0, 10)
    first, second = (tracker.apply(e) for e in block.entries)
    assert first == [IntentOrdered(it, 0, 0)]
    assert second == []
    assert outcome([block], it)[0] is Outcome.PENDING


def test_tracker_events_and_snapshot_resume() -> None:
    it = two_leg(deadline=100)
    sid = it.swap_id
    blocks = log((10, [signed(it), vote(sid, "alpha", True)]), (20, [vote(sid, "beta", True)]))
    t = swap.SwapTracker(G)
    t.begin_block(0, 10)
    for e in blocks[0].entries:
        t.apply(e)
    resumed = swap.SwapTracker.from_bytes(t.to_bytes(), G)
    assert resumed.begin_block(1, 20) == []
    assert resumed.apply(blocks[1].entries[0]) == [Decided(sid, Outcome.COMMIT, 1, 0)]
    rec = resumed.get(sid)
    assert rec is not None
    assert set(rec.votes) == {"alpha", "beta"}


def test_pending_swaps_abort_at_block_start_in_log_order() -> None:
    first, second = two_leg(deadline=30, nonce=b"1"), two_leg(deadline=20, nonce=b"2")
    t = swap.SwapTracker(G)
    t.begin_block(0, 10)
    for e in make_block(0, 10, [signed(first), signed(second)]).entries:
        t.apply(e)
    assert t.begin_block(1, 40) == [
        Decided(first.swap_id, Outcome.ABORT, 1, swap.BLOCK_START),
        Decided(second.swap_id, Outcome.ABORT, 1, swap.BLOCK_START),
    ]
    assert t.pending() == []


@pytest.mark.parametrize(
    ("legs", "deadline", "why"),
    [
        ((), 10, "legs"),
        ((swap.Leg("nowhere", A.public, B.public, ASSET, 1),), 10, "genesis"),
        ((swap.Leg("alpha", A.public, B.public, ASSET, 0),), 10, "amount"),
        ((swap.Leg("alpha", A.public[:5], B.public, ASSET, 1),), 10, "32-byte"),
        ((swap.Leg("alpha", A.public, B.public, "bad asset!", 1),), 10, "asset"),
        ((swap.Leg("alpha", A.public, B.public, ASSET, 1),), 0, "deadline"),
        ((swap.Leg("alpha", A.public, B.public, ASSET, 1),) * 2, 10, "repeats"),
    ],
)
def test_bad_terms_are_refused(legs: tuple[swap.Leg, ...], deadline: int, why: str) -> None:
    with pytest.raises(InvalidArgument, match=why):
        swap.check_intent(swap.Intent(legs, deadline, b""), G)


def test_signature_checks() -> None:
    it = two_leg()
    with pytest.raises(Unauthenticated, match="unsigned"):
        swap.check_signed_intent(swap.sign_intent(swap.SignedIntent(it), A), G)
    with pytest.raises(InvalidArgument, match="pays no leg"):
        swap.sign_intent(swap.SignedIntent(it), C)
    with pytest.raises(Unauthenticated):
        swap.check_signature(it, A.public, B.sign(it.signing_bytes()))
    with pytest.raises(Unauthenticated):
        swap.check_vote(swap.sign_vote(key("mallory"), it.swap_id, "alpha", True), G)


def test_encodings_round_trip_and_are_deterministic() -> None:
    it = two_leg()
    data = signed(it)
    assert data == signed(it)
    back = swap.decode_swap_entry(data)
    assert isinstance(back, swap.SignedIntent)
    assert back.intent == it
    v = vote(it.swap_id, "beta", False)
    assert swap.decode_swap_entry(v) == swap.sign_vote(
        key("rollup-beta"), it.swap_id, "beta", False
    )


@given(st.binary(max_size=300))
def test_decoding_garbage_only_raises_invalid_argument(data: bytes) -> None:
    try:
        item = swap.decode_swap_entry(data)
    except InvalidArgument:
        return
    encoded = swap.encode_vote(item) if isinstance(item, swap.Vote) else swap.encode_intent(item)
    assert encoded == data


@given(st.integers(0, 300), st.binary(max_size=1))
def test_mutated_entries_never_break_the_tracker(cut: int, junk: bytes) -> None:
    it = two_leg()
    data = signed(it)
    mutated = data[:cut] + junk + data[cut + 1 :]
    t = swap.SwapTracker(G)
    t.begin_block(0, 10)
    events = t.apply(make_block(0, 10, [mutated]).entries[0])
    assert events in ([], [IntentOrdered(it, 0, 0)])


def test_vouched_bytes_skip_only_the_signature_checks() -> None:
    it = two_leg()
    sid = it.swap_id
    entries = [
        signed(it),
        vote(sid, "delta", False),  # no leg on delta: ignored, vouched or not
        vote(sid, "alpha", True),
        vote(sid, "beta", True),
    ]
    blocks = log((10, entries[:2]), (20, entries[2:]))
    plain, vouching = swap.SwapTracker(G), swap.SwapTracker(G)
    for data in entries:
        vouching.vouch(data)
    for t in (plain, vouching):
        for b in blocks:
            t.begin_block(b.height, b.time_ms)
            for e in b.entries:
                t.apply(e)
    assert vouching.decision(sid) == plain.decision(sid)
    assert vouching.decision(sid).outcome is Outcome.COMMIT
    assert vouching.to_bytes() == plain.to_bytes()
    # The skip is real: the tracker takes the voucher's word for the signature.
    forged = vote(sid, "alpha", False, signer=key("mallory"))
    trusting = swap.SwapTracker(G)
    trusting.vouch(forged)
    for b in log((10, [signed(it), forged])):
        trusting.begin_block(b.height, b.time_ms)
        for e in b.entries:
            trusting.apply(e)
    assert trusting.decision(sid).outcome is Outcome.ABORT


def test_a_tracker_for_one_rollup_keeps_only_swaps_with_a_leg_there() -> None:
    it = two_leg()
    sid = it.swap_id
    blocks = log((10, [signed(it), vote(sid, "alpha", True)]), (20, [vote(sid, "beta", True)]))
    alpha, gamma = swap.SwapTracker(G, "alpha"), swap.SwapTracker(G, "gamma")
    for t in (alpha, gamma):
        for b in blocks:
            t.begin_block(b.height, b.time_ms)
            for e in b.entries:
                t.apply(e)
    assert alpha.decision(sid) == swap.decide(blocks, sid, G)
    assert gamma.get(sid) is None
    assert gamma.decision(sid).outcome is Outcome.PENDING
    again = swap.SwapTracker.from_bytes(gamma.to_bytes(), G, "gamma")
    assert again.rollup == "gamma"
    assert again.to_bytes() == gamma.to_bytes()
