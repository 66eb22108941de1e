"""Between the core's views and the wire, and from the wire to JSON for people and scripts."""

from __future__ import annotations

from typing import Any

from rollup_client.protocol import swap
from rollup_client.wire import sequencer_pb2 as spb
from rollup_client.wire import swap_pb2 as pb
from swap_coordinator.core import Lock, State, SwapView

STATES: dict[State, pb.SwapState.ValueType] = {
    State.PROPOSED: pb.SWAP_STATE_PROPOSED,
    State.SUBMITTED: pb.SWAP_STATE_SUBMITTED,
    State.ORDERED: pb.SWAP_STATE_ORDERED,
    State.COMMITTED: pb.SWAP_STATE_COMMITTED,
    State.ABORTED: pb.SWAP_STATE_ABORTED,
    State.EXPIRED: pb.SWAP_STATE_EXPIRED,
}
STATE_NAMES: dict[int, str] = {int(v): k.value for k, v in STATES.items()}
LOCKS: dict[Lock, pb.LockState.ValueType] = {
    Lock.WAITING: pb.LOCK_STATE_WAITING,
    Lock.LOCKED: pb.LOCK_STATE_LOCKED,
    Lock.REFUSED: pb.LOCK_STATE_REFUSED,
    Lock.PAID: pb.LOCK_STATE_PAID,
    Lock.REFUNDED: pb.LOCK_STATE_REFUNDED,
    Lock.RELEASED: pb.LOCK_STATE_RELEASED,
}
LOCK_NAMES: dict[int, str] = {int(v): k.value for k, v in LOCKS.items()}
VOTE_NAMES = {pb.VOTE_STATE_NONE: "none", pb.VOTE_STATE_YES: "yes", pb.VOTE_STATE_NO: "no"}


def leg_to_pb(leg: swap.Leg) -> pb.SwapLeg:
    out = pb.SwapLeg()
    set_leg(out, leg)
    return out


def set_leg(out: pb.SwapLeg, leg: swap.Leg) -> None:
    """Fill `out` (e.g. a field of a message being built in place) with `leg`."""
    out.rollup, out.payer, out.payee = leg.rollup, leg.payer, leg.payee
    out.asset, out.amount = leg.asset, leg.amount


def leg_from_pb(leg: pb.SwapLeg) -> swap.Leg:
    return swap.Leg(leg.rollup, leg.payer, leg.payee, leg.asset, leg.amount)


def _set_pos(p: spb.Position, at: tuple[int, int]) -> None:
    p.height, p.index = at[0], max(at[1], 0)


def _vote(vote: bool | None) -> pb.VoteState.ValueType:
    if vote is None:
        return pb.VOTE_STATE_NONE
    return pb.VOTE_STATE_YES if vote else pb.VOTE_STATE_NO


def view_to_pb(v: SwapView) -> pb.SwapStatus:
    """The status message of a view, built in place: nested messages passed as keyword
    arguments are built and then copied in, about twice the work (and a swap's status is
    built two or three times)."""
    decided = v.decision.outcome is not swap.Outcome.PENDING
    st = pb.SwapStatus(
        swap_id=v.swap_id,
        state=STATES[v.state],
        deadline_ms=v.deadline_ms,
        nonce=v.nonce,
        log_time_ms=v.log_time_ms,
        time_left_ms=v.time_left_ms,
        log_height=max(v.log_height, 0),
        ordered=v.intent_at is not None,
        decided=decided,
        decision_at_block_start=decided and v.decision.index == swap.BLOCK_START,
        reason=v.reason,
        missing_signers=v.missing,
        signing_bytes=v.signing_bytes,
    )
    for lv in v.legs:
        ls = st.legs.add(signed=lv.signed, lock=LOCKS[lv.lock], vote=_vote(lv.vote))
        set_leg(ls.leg, lv.leg)
        if lv.vote_at is not None:
            _set_pos(ls.vote_position, lv.vote_at)
    if v.intent_at is not None:
        _set_pos(st.intent_position, v.intent_at)
    if decided:
        _set_pos(st.decision_position, (v.decision.height, v.decision.index))
    return st


def _pos_json(p: spb.Position) -> dict[str, int]:
    return {"height": p.height, "index": p.index}


def status_json(s: pb.SwapStatus, names: dict[bytes, str] | None = None) -> dict[str, Any]:
    """A swap status as plain JSON; keys shown by keystore name where `names` knows them."""
    names = names or {}

    def who(k: bytes) -> str:
        return names.get(k, k.hex())

    return {
        "swap_id": s.swap_id.hex(),
        "state": STATE_NAMES.get(s.state, "unspecified"),
        "deadline_ms": s.deadline_ms,
        "log_time_ms": s.log_time_ms,
        "time_left_ms": s.time_left_ms,
        "log_height": s.log_height,
        "nonce": s.nonce.hex(),
        "intent_position": _pos_json(s.intent_position) if s.ordered else None,
        "decision_position": (
            {**_pos_json(s.decision_position), "block_start": s.decision_at_block_start}
            if s.decided
            else None
        ),
        "reason": s.reason,
        "missing_signers": [who(k) for k in s.missing_signers],
        "legs": [
            {
                "rollup": ls.leg.rollup,
                "from": who(ls.leg.payer),
                "to": who(ls.leg.payee),
                "asset": ls.leg.asset,
                "amount": ls.leg.amount,
                "signed": ls.signed,
                "lock": LOCK_NAMES.get(ls.lock, "unspecified"),
                "vote": VOTE_NAMES.get(ls.vote, "none"),
                "vote_position": (
                    _pos_json(ls.vote_position) if ls.vote != pb.VOTE_STATE_NONE else None
                ),
            }
            for ls in s.legs
        ],
    }
