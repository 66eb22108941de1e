"""The coordinator's pure core: proposals, signatures, and a status view of the log.

No I/O and no clock: log time arrives with each block, the sequencer's head time and any
nonce arrive as arguments. The swap outcome is never computed here: it is read from a
`SwapTracker` fed the `swap` namespace in log order, the same rules `decide()` runs.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from rollup_client.protocol import swap
from rollup_client.protocol.block import VerifiedBlock
from rollup_client.protocol.errors import FailedPrecondition, InvalidArgument, NotFound
from rollup_client.protocol.genesis import SWAP_NAMESPACE, Genesis
from rollup_client.protocol.swap import Outcome

_VOTE_KIND = bytes([swap.KIND_VOTE])
_SWAP_ID_END = 33
"""A vote entry is its kind byte, then the 32-byte swap id (`swap.encode_vote`)."""


class State(enum.Enum):
    PROPOSED = "proposed"
    SUBMITTED = "submitted"
    ORDERED = "ordered"
    COMMITTED = "committed"
    ABORTED = "aborted"
    EXPIRED = "expired"

    @property
    def final(self) -> bool:
        return self in (State.COMMITTED, State.ABORTED, State.EXPIRED)


class Lock(enum.Enum):
    WAITING = "waiting"
    LOCKED = "locked"
    REFUSED = "refused"
    PAID = "paid"
    REFUNDED = "refunded"
    RELEASED = "released"


@dataclass(frozen=True)
class LegView:
    leg: swap.Leg
    signed: bool
    lock: Lock
    vote: bool | None
    vote_at: tuple[int, int] | None


@dataclass(frozen=True)
class SwapView:
    """Everything a person asks about one swap, as of log height `log_height`."""

    swap_id: bytes
    state: State
    legs: tuple[LegView, ...]
    deadline_ms: int
    nonce: bytes
    log_time_ms: int
    log_height: int
    intent_at: tuple[int, int] | None
    decision: swap.Decision
    missing: tuple[bytes, ...]
    signing_bytes: bytes

    @property
    def time_left_ms(self) -> int:
        return self.deadline_ms - self.log_time_ms

    @property
    def reason(self) -> str:
        if self.state is State.EXPIRED:
            return "deadline passed before the intent was ordered: nothing can be escrowed"
        return self.decision.reason


def deadline_for(head_time_ms: int, timeout_ms: int, deadline_ms: int) -> int:
    """The deadline in log time from exactly one of a timeout and an absolute deadline."""
    if (timeout_ms > 0) == (deadline_ms > 0):
        raise InvalidArgument("give exactly one of timeout_ms and deadline_ms")
    deadline = head_time_ms + timeout_ms if timeout_ms else deadline_ms
    if deadline <= head_time_ms:
        raise InvalidArgument(
            f"deadline {deadline} is not after the current log time {head_time_ms}"
        )
    return deadline


def changed_swaps(block: VerifiedBlock, events: Sequence[swap.SwapEvent]) -> list[bytes]:
    """The swaps whose status `block` (applied, giving `events`) may have changed.

    Every ordered intent, vote and decision, each swap once. Ordered intents and
    decisions come from the events; a vote names its swap in its first bytes, so only an
    intent the rules passed over (void, repeated, malformed) is decoded again: decoding
    every entry a second time after the tracker did doubled the decode work per intent.
    """
    out: dict[bytes, None] = {}
    ordered: dict[int, bytes] = {}
    for ev in events:
        if isinstance(ev, swap.IntentOrdered):
            ordered[ev.index] = ev.intent.swap_id
    for entry in block.entries:
        if entry.namespace != SWAP_NAMESPACE:
            continue
        data = entry.data
        if entry.index in ordered:
            out[ordered[entry.index]] = None
        elif data[:1] == _VOTE_KIND and len(data) > _SWAP_ID_END:
            out[data[1:_SWAP_ID_END]] = None  # a malformed one only wakes watchers for nothing
        else:
            with contextlib.suppress(InvalidArgument):  # the rules ignore it too
                out[swap.decode_swap_entry(data).swap_id] = None
    for ev in events:
        if isinstance(ev, swap.Decided):
            out[ev.swap_id] = None
    return list(out)


@dataclass
class Proposal:
    signed: swap.SignedIntent
    seq: int
    submitted_at: tuple[int, int] | None = field(default=None)

    @property
    def complete(self) -> bool:
        return not self.signed.missing()


class Coordinator:
    """Proposals collected here plus the swap rules applied to the log read so far."""

    def __init__(self, genesis: Genesis, tracker: swap.SwapTracker | None = None) -> None:
        self.genesis = genesis
        self.tracker = tracker or swap.SwapTracker(genesis)
        self.proposals: dict[bytes, Proposal] = {}
        # Complete intents that may still need submitting, in signing order: `to_submit`
        # looks at these only, not at every proposal ever made, on each block.
        self._ready: dict[bytes, None] = {}

    @property
    def height(self) -> int:
        """The last log height applied (-1 before any)."""
        return self.tracker.height

    @property
    def time_ms(self) -> int:
        return self.tracker.time_ms

    # -- proposals ------------------------------------------------------------------------

    def propose(
        self,
        legs: Iterable[swap.Leg],
        deadline_ms: int,
        nonce: bytes,
        signatures: Mapping[bytes, bytes] | None = None,
    ) -> Proposal:
        """Record terms (idempotent: the same terms are the same swap), with any payers'
        signatures already made over them; nothing is kept unless every one checks out."""
        intent = swap.Intent(tuple(legs), deadline_ms, nonce)
        swap.check_intent(intent, self.genesis)
        sigs = dict(signatures or {})
        for payer, sig in sigs.items():
            swap.check_signature(intent, payer, sig)
        return self._keep(swap.SignedIntent(intent, sigs))

    def add(self, signed: swap.SignedIntent) -> Proposal:
        """Keep a (partly) signed intent, e.g. from the store; merges signatures if known."""
        for payer, sig in signed.signatures.items():
            swap.check_signature(signed.intent, payer, sig)
        return self._keep(signed)

    def _keep(self, signed: swap.SignedIntent) -> Proposal:
        """Merge checked signatures into the proposal of this intent, made if new."""
        sid = signed.swap_id
        p = self.proposals.get(sid)
        if p is None:
            p = Proposal(swap.SignedIntent(signed.intent, {}), len(self.proposals))
            self.proposals[sid] = p
        new = {k: v for k, v in signed.signatures.items() if k not in p.signed.signatures}
        if new:
            p.signed = swap.SignedIntent(p.signed.intent, {**p.signed.signatures, **new})
        if p.complete and p.submitted_at is None:
            self._ready[sid] = None
        return p

    def sign(self, swap_id: bytes, payer: bytes, signature: bytes) -> Proposal:
        """Add one payer's signature after checking it; a repeat is a no-op."""
        p = self._proposal(swap_id)
        swap.check_signature(p.signed.intent, payer, signature)
        if payer not in p.signed.signatures:
            sigs = {**p.signed.signatures, payer: signature}
            p.signed = swap.SignedIntent(p.signed.intent, sigs)
            if p.complete and p.submitted_at is None:
                self._ready[swap_id] = None
        return p

    def _proposal(self, swap_id: bytes) -> Proposal:
        p = self.proposals.get(swap_id)
        if p is None:
            raise NotFound(f"no proposal {swap_id.hex()} here: propose it first")
        return p

    def to_submit(self) -> list[tuple[bytes, bytes]]:
        """(swap_id, entry data) of complete intents not yet acknowledged nor in the log."""
        out = []
        for sid in list(self._ready):
            p = self.proposals[sid]
            if p.submitted_at is None and self._state(sid, p) is State.SUBMITTED:
                data = swap.encode_intent(p.signed)
                self.tracker.vouch(data)  # every signature was checked on its way in
                out.append((sid, data))
            else:  # acknowledged, ordered or expired: never submittable again
                del self._ready[sid]
        return out

    def submitted(self, swap_id: bytes, height: int, index: int) -> None:
        """The sequencer acknowledged the intent at (height, index)."""
        self._proposal(swap_id).submitted_at = (height, index)

    def check_submittable(self, swap_id: bytes) -> None:
        """Raise FailedPrecondition if the intent can no longer be ordered validly."""
        p = self._proposal(swap_id)
        if self._state(swap_id, p) is State.EXPIRED:
            raise FailedPrecondition(
                f"swap {swap_id.hex()} expired: log time {self.time_ms} passed its deadline"
            )

    # -- the log --------------------------------------------------------------------------

    def apply_block(self, block: VerifiedBlock) -> list[swap.SwapEvent]:
        """Feed one block (its `swap` entries) to the rules, in log order; returns the events."""
        events: list[swap.SwapEvent] = list(self.tracker.begin_block(block.height, block.time_ms))
        for entry in block.entries:
            if entry.namespace == SWAP_NAMESPACE:
                events += self.tracker.apply(entry)
        return events

    # -- views ----------------------------------------------------------------------------

    def _state(self, swap_id: bytes, p: Proposal | None) -> State:
        d = self.tracker.decision(swap_id)
        if d.outcome is Outcome.COMMIT:
            return State.COMMITTED
        if d.outcome is Outcome.ABORT:
            return State.ABORTED
        if self.tracker.get(swap_id) is not None:
            return State.ORDERED
        if p is not None and self.time_ms >= p.signed.intent.deadline_ms:
            return State.EXPIRED
        if p is not None and p.complete:
            return State.SUBMITTED
        return State.PROPOSED

    def view(self, swap_id: bytes) -> SwapView:
        """The status of a swap proposed here or ordered in the log; NotFound otherwise."""
        p = self.proposals.get(swap_id)
        rec = self.tracker.get(swap_id)
        if rec is not None:
            signed = rec.signed
        elif p is not None:
            signed = p.signed
        else:
            raise NotFound(f"swap {swap_id.hex()} is neither proposed here nor in the log")
        state = self._state(swap_id, p)
        decision = self.tracker.decision(swap_id)
        legs = tuple(self._leg(leg, signed, rec, decision) for leg in signed.intent.legs)
        return SwapView(
            swap_id=swap_id,
            state=state,
            legs=legs,
            deadline_ms=signed.intent.deadline_ms,
            nonce=signed.intent.nonce,
            log_time_ms=self.time_ms,
            log_height=self.height,
            intent_at=(rec.height, rec.index) if rec is not None else None,
            decision=decision,
            missing=signed.missing(),
            signing_bytes=signed.intent.signing_bytes(),
        )

    @staticmethod
    def _leg(
        leg: swap.Leg,
        signed: swap.SignedIntent,
        rec: swap.SwapRecord | None,
        decision: swap.Decision,
    ) -> LegView:
        seen = rec.votes.get(leg.rollup) if rec is not None else None
        vote = None if seen is None else seen.yes
        if decision.outcome is Outcome.COMMIT:
            lock = Lock.PAID
        elif decision.outcome is Outcome.ABORT:
            lock = Lock.REFUNDED if vote else Lock.RELEASED
        elif vote is None:
            lock = Lock.WAITING
        else:
            lock = Lock.LOCKED if vote else Lock.REFUSED
        return LegView(
            leg,
            leg.payer in signed.signatures,
            lock,
            vote,
            (seen.height, seen.index) if seen is not None else None,
        )

    def list(self, state: State | None = None, limit: int = 100) -> list[SwapView]:
        """Swaps proposed here (newest first), then the others ordered in the log (newest first)."""
        ids = [
            r.signed.swap_id
            for r in self.tracker.records()
            if r.signed.swap_id not in self.proposals
        ]
        ids += list(self.proposals)
        out = []
        for sid in reversed(ids):
            v = self.view(sid)
            if state is None or v.state is state:
                out.append(v)
                if len(out) >= limit:
                    break
        return out
