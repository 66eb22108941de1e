"""The coordinator core without I/O: proposals, signatures, states read off the log."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollup_client.protocol import swap
from rollup_client.protocol.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unauthenticated,
)
from rollup_client.wire import sequencer_pb2 as spb
from rollup_client.wire import swap_pb2 as pb
from swap_coordinator import convert
from swap_coordinator.core import Coordinator, Lock, State, SwapView, deadline_for
from swap_coordinator.store import Store
from tests.keys import key

from .helpers import ASSET, USERS, genesis, make_block, vote

A, B, _ = USERS
G = genesis()
LEGS = (
    swap.Leg("alpha", A.public, B.public, ASSET, 5),
    swap.Leg("beta", B.public, A.public, ASSET, 7),
)


def signed_proposal(core: Coordinator, deadline: int = 100) -> swap.Intent:
    p = core.propose(LEGS, deadline, b"n")
    intent = p.signed.intent
    for k in (A, B):
        core.sign(intent.swap_id, k.public, k.sign(intent.signing_bytes()))
    return intent


def test_deadline_for() -> None:
    assert deadline_for(1_000, 500, 0) == 1_500
    assert deadline_for(1_000, 0, 2_000) == 2_000
    for timeout, deadline in ((0, 0), (5, 5), (0, 1_000)):
        with pytest.raises(InvalidArgument):
            deadline_for(1_000, timeout, deadline)


def test_propose_is_idempotent_and_checks_terms() -> None:
    core = Coordinator(G)
    first = core.propose(LEGS, 100, b"n")
    assert core.propose(LEGS, 100, b"n") is first
    assert core.view(first.signed.swap_id).state is State.PROPOSED
    with pytest.raises(InvalidArgument):
        core.propose((), 100, b"n")


def test_signatures_are_checked_and_complete_the_proposal() -> None:
    core = Coordinator(G)
    intent = core.propose(LEGS, 100, b"n").signed.intent
    sid = intent.swap_id
    with pytest.raises(Unauthenticated):
        core.sign(sid, A.public, B.sign(intent.signing_bytes()))
    with pytest.raises(InvalidArgument, match="pays no leg"):
        core.sign(sid, key("x").public, key("x").sign(intent.signing_bytes()))
    with pytest.raises(NotFound):
        core.sign(b"\0" * 32, A.public, A.sign(b""))
    core.sign(sid, A.public, A.sign(intent.signing_bytes()))
    assert core.view(sid).missing == (B.public,)
    assert core.to_submit() == []
    core.sign(sid, B.public, B.sign(intent.signing_bytes()))
    v = core.view(sid)
    assert v.state is State.SUBMITTED
    assert v.missing == ()
    ((got_sid, data),) = core.to_submit()
    assert got_sid == sid
    assert swap.decode_swap_entry(data).swap_id == sid
    core.submitted(sid, 3, 0)
    assert core.to_submit() == []


def test_propose_with_signatures_keeps_all_or_nothing() -> None:
    core = Coordinator(G)
    intent = swap.Intent(LEGS, 100, b"n")
    data = intent.signing_bytes()
    with pytest.raises(Unauthenticated):
        core.propose(LEGS, 100, b"n", {A.public: A.sign(data), B.public: A.sign(data)})
    assert core.proposals == {}
    assert core.to_submit() == []
    half = core.propose(LEGS, 100, b"n", {A.public: A.sign(data)})
    assert core.view(intent.swap_id).missing == (B.public,)
    both = core.propose(LEGS, 100, b"n", {A.public: A.sign(data), B.public: B.sign(data)})
    assert both is half
    assert core.view(intent.swap_id).state is State.SUBMITTED
    assert [sid for sid, _ in core.to_submit()] == [intent.swap_id]


def test_states_follow_the_log_to_commit() -> None:
    core = Coordinator(G)
    intent = signed_proposal(core)
    sid = intent.swap_id
    data = core.to_submit()[0][1]
    core.apply_block(make_block(0, 10, [data, vote(sid, "alpha", True)]))
    v = core.view(sid)
    assert v.state is State.ORDERED
    assert v.intent_at == (0, 0)
    assert [lv.lock for lv in v.legs] == [Lock.LOCKED, Lock.WAITING]
    assert v.time_left_ms == 90
    core.apply_block(make_block(1, 20, [vote(sid, "beta", True)]))
    v = core.view(sid)
    assert v.state is State.COMMITTED
    assert (v.decision.height, v.decision.index) == (1, 0)
    assert [lv.lock for lv in v.legs] == [Lock.PAID, Lock.PAID]
    st = convert.status_json(convert.view_to_pb(v))
    assert st["state"] == "committed"
    assert st["decision_position"]["height"] == 1


def test_abort_by_deadline_marks_refunds_and_releases() -> None:
    core = Coordinator(G)
    intent = signed_proposal(core, deadline=50)
    sid = intent.swap_id
    core.apply_block(make_block(0, 10, [core.to_submit()[0][1], vote(sid, "alpha", True)]))
    core.apply_block(make_block(1, 51, []))
    v = core.view(sid)
    assert v.state is State.ABORTED
    assert v.decision.index == swap.BLOCK_START
    assert [lv.lock for lv in v.legs] == [Lock.REFUNDED, Lock.RELEASED]
    pbv = convert.view_to_pb(v)
    assert pbv.decision_at_block_start
    assert pbv.time_left_ms == -1


def test_unordered_proposal_expires_and_cannot_be_signed() -> None:
    core = Coordinator(G)
    sid = core.propose(LEGS, 50, b"n").signed.swap_id
    core.apply_block(make_block(0, 50, []))
    assert core.view(sid).state is State.EXPIRED
    with pytest.raises(FailedPrecondition, match="expired"):
        core.check_submittable(sid)


def test_swaps_of_other_coordinators_are_visible_from_the_log() -> None:
    other = Coordinator(G)
    intent = signed_proposal(other)
    core = Coordinator(G)
    core.apply_block(make_block(0, 10, [other.to_submit()[0][1]]))
    assert core.view(intent.swap_id).state is State.ORDERED
    assert [v.swap_id for v in core.list()] == [intent.swap_id]
    assert core.list(State.COMMITTED) == []
    with pytest.raises(NotFound):
        core.view(b"\1" * 32)


def test_store_round_trip(tmp_path: Path) -> None:
    core = Coordinator(G)
    intent = core.propose(LEGS, 100, b"n").signed.intent
    core.sign(intent.swap_id, A.public, A.sign(intent.signing_bytes()))
    core.apply_block(make_block(0, 10, []))
    store = Store(tmp_path / "c.db")
    try:
        store.save_proposal(core.proposals[intent.swap_id].signed)
        store.save_checkpoint(core.tracker)
    finally:
        store.close()
    store = Store(tmp_path / "c.db")
    try:
        again = Coordinator(G, store.checkpoint(G))
        for s in store.proposals():
            again.add(s)
    finally:
        store.close()
    assert again.height == 0
    assert again.view(intent.swap_id) == core.view(intent.swap_id)


def test_a_damaged_store_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "c.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(FailedPrecondition, match="unusable"):
        Store(tmp_path / "c.db")


def _status_by_kwargs(v: SwapView) -> pb.SwapStatus:
    """The status spelt out with nested keyword arguments: the oracle for `view_to_pb`."""

    def pos(at: tuple[int, int] | None) -> spb.Position | None:
        return None if at is None else spb.Position(height=at[0], index=max(at[1], 0))

    decided = v.decision.outcome is not swap.Outcome.PENDING
    votes = {None: pb.VOTE_STATE_NONE, True: pb.VOTE_STATE_YES, False: pb.VOTE_STATE_NO}
    return pb.SwapStatus(
        swap_id=v.swap_id,
        state=convert.STATES[v.state],
        legs=[
            pb.LegStatus(
                leg=convert.leg_to_pb(lv.leg),
                signed=lv.signed,
                lock=convert.LOCKS[lv.lock],
                vote=votes[lv.vote],
                vote_position=pos(lv.vote_at),
            )
            for lv in v.legs
        ],
        deadline_ms=v.deadline_ms,
        nonce=v.nonce,
        log_time_ms=v.log_time_ms,
        time_left_ms=v.time_left_ms,
        log_height=max(v.log_height, 0),
        ordered=v.intent_at is not None,
        intent_position=pos(v.intent_at),
        decided=decided,
        decision_position=pos((v.decision.height, v.decision.index) if decided else None),
        decision_at_block_start=decided and v.decision.index == swap.BLOCK_START,
        reason=v.reason,
        missing_signers=list(v.missing),
        signing_bytes=v.signing_bytes,
    )


def test_view_to_pb_in_every_state_down_to_which_positions_are_present() -> None:
    core = Coordinator(G)
    seen: list[SwapView] = []
    half = core.propose(LEGS, 50, b"half")  # proposed, one signature missing
    data = half.signed.intent.signing_bytes()
    core.sign(half.signed.swap_id, A.public, A.sign(data))
    ok, late = signed_proposal(core, deadline=100), signed_proposal(core, deadline=30)
    ready = dict(core.to_submit())
    seen += [core.view(half.signed.swap_id), core.view(ok.swap_id)]
    core.apply_block(make_block(0, 10, [ready[ok.swap_id], vote(ok.swap_id, "alpha", True)]))
    seen.append(core.view(ok.swap_id))  # ordered at (0, 0), a vote at (0, 1): both present
    core.apply_block(make_block(1, 20, [ready[late.swap_id], vote(ok.swap_id, "beta", True)]))
    seen.append(core.view(ok.swap_id))  # committed
    core.apply_block(make_block(2, 60, []))
    seen += [core.view(late.swap_id), core.view(half.signed.swap_id)]  # aborted, expired
    assert [v.state for v in seen] == [
        State.PROPOSED,
        State.SUBMITTED,
        State.ORDERED,
        State.COMMITTED,
        State.ABORTED,
        State.EXPIRED,
    ]
    for v in seen:
        built = convert.view_to_pb(v)
        assert built == _status_by_kwargs(v)
        assert built.SerializeToString() == _status_by_kwargs(v).SerializeToString()
        assert built.HasField("intent_position") == (v.intent_at is not None)
    assert convert.view_to_pb(seen[2]).intent_position.height == 0
    assert convert.view_to_pb(seen[4]).decision_at_block_start
