"""The swap rules (DESIGN.md section 4): `SwapTracker` fed the log in order, and `decide()`.

The rules, with D the intent's deadline in log time:

- An INTENT counts when it is well formed (at least one leg, legs on genesis rollups,
  amounts in 1..MAX_AMOUNT, no two legs with the same rollup, payer, payee and asset,
  deadline > 0), every payer signed it, it is ordered in a block with log time < D, and
  the same swap id was not ordered before. One ordered at time >= D is void (ABORT,
  nothing escrowed); anything else in the `swap` namespace that fails is ignored.
- A VOTE counts when the intent is ordered before it, its rollup has a leg in the swap,
  it verifies under that rollup's genesis key, and it is that rollup's first vote.
- COMMIT at the position of the vote that completes the YES set; ABORT at the position
  of the first NO; ABORT at the start (index BLOCK_START) of the first block with log time
  > D while undecided. The first decisive event wins and nothing later changes it.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from rollup_client.protocol.block import LogEntry, VerifiedBlock
from rollup_client.protocol.errors import InvalidArgument, Unauthenticated
from rollup_client.protocol.genesis import SWAP_NAMESPACE, Genesis
from rollup_client.protocol.swap.messages import (
    Intent,
    SignedIntent,
    Vote,
    check_signed_intent,
    check_vote,
    decode_swap_entry,
    encode_intent,
)

BLOCK_START = -1
"""Index of a decision taken at the start of a block (a deadline passing)."""
_SNAPSHOT_VERSION = 1
_VOUCHED = 100_000


class Outcome(enum.Enum):
    PENDING = "pending"
    COMMIT = "committed"
    ABORT = "aborted"


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of a swap and the log position where it became decisive.

    PENDING has height = index = -1. `reason` says why, for people.
    """

    outcome: Outcome
    height: int = -1
    index: int = -1
    reason: str = ""


PENDING = Decision(Outcome.PENDING)


@dataclass(frozen=True, slots=True)
class IntentOrdered:
    intent: Intent
    height: int
    index: int


@dataclass(frozen=True, slots=True)
class Decided:
    swap_id: bytes
    outcome: Outcome
    height: int
    index: int


SwapEvent = IntentOrdered | Decided


@dataclass(frozen=True, slots=True)
class VoteSeen:
    """A vote that counted, at its position."""

    yes: bool
    height: int
    index: int


@dataclass
class SwapRecord:
    """What the log says about one ordered swap so far."""

    signed: SignedIntent
    height: int
    index: int
    votes: dict[str, VoteSeen] = field(default_factory=dict)
    decision: Decision = PENDING

    @property
    def intent(self) -> Intent:
        return self.signed.intent


class SwapTracker:
    """The swap rules, applied incrementally to the log; snapshot with to_bytes().

    With `rollup`, only swaps with a leg on that rollup are tracked and the rest of the
    `swap` namespace is skipped unchecked: a rollup's state depends on no other swap, and
    checking every swap's signatures on every rollup cost each one the whole network's.
    """

    def __init__(self, genesis: Genesis, rollup: str | None = None) -> None:
        self.genesis = genesis
        self.rollup = rollup
        self.height = -1
        self.time_ms = genesis.time_ms
        self._swaps: dict[bytes, SwapRecord] = {}
        self._pending: dict[bytes, SwapRecord] = {}
        self._void: dict[bytes, Decision] = {}
        self._vouched: dict[bytes, None] = {}
        self._decided_json: dict[bytes, str] = {}
        """Each decided record's part of `to_bytes`: it never changes once decided."""

    def vouch(self, data: bytes) -> None:
        """Entry bytes whose signatures this process verified or made itself.

        Applied later, they skip the Ed25519 checks (same bytes, same result; only the
        signatures are skipped, every other rule runs). Not part of the snapshot: it
        changes no outcome, only what it costs. Bounded: the oldest are forgotten.
        """
        self._vouched[data] = None
        if len(self._vouched) > _VOUCHED:
            del self._vouched[next(iter(self._vouched))]

    def get(self, swap_id: bytes) -> SwapRecord | None:
        """The record of an ordered (non-void) swap."""
        return self._swaps.get(swap_id)

    def decision(self, swap_id: bytes) -> Decision:
        rec = self._swaps.get(swap_id)
        if rec is not None:
            return rec.decision
        return self._void.get(swap_id, PENDING)

    def records(self) -> list[SwapRecord]:
        """Every ordered (non-void) swap, in log order."""
        return list(self._swaps.values())

    def pending(self) -> list[SwapRecord]:
        """Ordered and undecided swaps, in log order."""
        return list(self._pending.values())

    def begin_block(self, height: int, time_ms: int) -> list[Decided]:
        """Start a block: ABORT every undecided swap whose deadline this block's time passes."""
        self.height, self.time_ms = height, time_ms
        out: list[Decided] = []
        for sid, rec in list(self._pending.items()):
            if time_ms > rec.intent.deadline_ms:
                out.append(
                    self._decide(sid, rec, Outcome.ABORT, height, BLOCK_START, "deadline passed")
                )
        return out

    def apply(self, entry: LogEntry) -> list[SwapEvent]:
        """Apply one `swap` entry of the current block (entries in index order)."""
        if entry.namespace != SWAP_NAMESPACE:
            return []
        try:
            item = decode_swap_entry(entry.data)
        except InvalidArgument:
            return []
        verified = self._vouched.pop(entry.data, False) is None
        if isinstance(item, Vote):
            return self._vote(item, entry, verified)
        return self._intent(item, entry, verified)

    def _intent(self, signed: SignedIntent, entry: LogEntry, verified: bool) -> list[SwapEvent]:
        if self.rollup is not None and all(leg.rollup != self.rollup for leg in signed.intent.legs):
            return []
        sid = signed.swap_id
        if sid in self._swaps or sid in self._void:
            return []
        try:
            check_signed_intent(signed, self.genesis, signatures=not verified)
        except (InvalidArgument, Unauthenticated):
            return []
        if self.time_ms >= signed.intent.deadline_ms:
            self._void[sid] = Decision(
                Outcome.ABORT, entry.height, entry.index, "intent ordered at or after its deadline"
            )
            return []
        rec = SwapRecord(signed, entry.height, entry.index)
        self._swaps[sid] = self._pending[sid] = rec
        return [IntentOrdered(signed.intent, entry.height, entry.index)]

    def _vote(self, vote: Vote, entry: LogEntry, verified: bool) -> list[SwapEvent]:
        rec = self._pending.get(vote.swap_id)
        if rec is None or vote.rollup in rec.votes or vote.rollup not in rec.intent.rollups():
            return []
        try:
            if not verified:
                check_vote(vote, self.genesis)
        except (InvalidArgument, Unauthenticated):
            return []
        rec.votes[vote.rollup] = VoteSeen(vote.yes, entry.height, entry.index)
        if not vote.yes:
            why = f"{vote.rollup} voted NO"
            return [self._decide(vote.swap_id, rec, Outcome.ABORT, entry.height, entry.index, why)]
        if len(rec.votes) == len(rec.intent.rollups()) and all(v.yes for v in rec.votes.values()):
            why = "every rollup voted YES"
            return [self._decide(vote.swap_id, rec, Outcome.COMMIT, entry.height, entry.index, why)]
        return []

    def _decide(
        self, sid: bytes, rec: SwapRecord, outcome: Outcome, height: int, index: int, why: str
    ) -> Decided:
        rec.decision = Decision(outcome, height, index, why)
        del self._pending[sid]
        return Decided(sid, outcome, height, index)

    # -- snapshots ------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """Deterministic snapshot: equal trackers give equal bytes.

        The JSON document `{"height", "swaps", "time_ms", "v", "void"}` with sorted keys
        and no spaces, written out by hand around each record's part so that a decided
        record (final, never changed again) is encoded once, not in every snapshot: the
        records are never dropped, and encoding them all again on every snapshot would
        grow a rollup node's follow loop with every swap ever decided.
        """
        swaps = ",".join(self._record_json(sid, r) for sid, r in self._swaps.items())
        void = _dumps([[sid.hex(), _decision_json(d)] for sid, d in self._void.items()])
        return (
            f'{{"height":{self.height},"swaps":[{swaps}],"time_ms":{self.time_ms},'
            f'"v":{_SNAPSHOT_VERSION},"void":{void}}}'
        ).encode()

    def _record_json(self, swap_id: bytes, r: SwapRecord) -> str:
        done = self._decided_json.get(swap_id)
        if done is not None:
            return done
        out = _dumps(
            {
                "intent": encode_intent(r.signed).hex(),
                "at": [r.height, r.index],
                "votes": [[k, v.yes, v.height, v.index] for k, v in sorted(r.votes.items())],
                "decision": _decision_json(r.decision),
            }
        )
        if r.decision.outcome is not Outcome.PENDING:
            self._decided_json[swap_id] = out
        return out

    @classmethod
    def from_bytes(cls, data: bytes, genesis: Genesis, rollup: str | None = None) -> SwapTracker:
        """Rebuild a tracker from to_bytes(); raises InvalidArgument if corrupt."""
        t = cls(genesis, rollup)
        try:
            doc = json.loads(data)
            if doc["v"] != _SNAPSHOT_VERSION:
                raise InvalidArgument(f"swap snapshot version {doc['v']} is not supported")
            t.height, t.time_ms = int(doc["height"]), int(doc["time_ms"])
            for s in doc["swaps"]:
                signed = decode_swap_entry(bytes.fromhex(s["intent"]))
                if not isinstance(signed, SignedIntent):
                    raise InvalidArgument("swap snapshot holds a vote where an intent belongs")
                rec = SwapRecord(signed, int(s["at"][0]), int(s["at"][1]))
                rec.votes = {k: VoteSeen(bool(y), int(h), int(i)) for k, y, h, i in s["votes"]}
                rec.decision = _decision_from_json(s["decision"])
                t._swaps[signed.swap_id] = rec
                if rec.decision.outcome is Outcome.PENDING:
                    t._pending[signed.swap_id] = rec
            t._void = {bytes.fromhex(sid): _decision_from_json(d) for sid, d in doc["void"]}
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgument(f"corrupt swap snapshot: {exc!r}") from exc
        return t


def _dumps(doc: object) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def _decision_json(d: Decision) -> list[object]:
    return [d.outcome.value, d.height, d.index, d.reason]


def _decision_from_json(doc: list[object]) -> Decision:
    outcome, height, index, reason = doc
    return Decision(Outcome(outcome), int(str(height)), int(str(index)), str(reason))


def decide(blocks: Iterable[VerifiedBlock], swap_id: bytes, genesis: Genesis) -> Decision:
    """The outcome of `swap_id` given the log from height 0 (DESIGN.md section 4).

    Stops reading at the decisive position: appending to the log never changes it.
    """
    tracker = SwapTracker(genesis)
    for block in blocks:
        tracker.begin_block(block.height, block.time_ms)
        if tracker.decision(swap_id).outcome is not Outcome.PENDING:
            break
        for entry in block.entries:
            tracker.apply(entry)
        if tracker.decision(swap_id).outcome is not Outcome.PENDING:
            break
    return tracker.decision(swap_id)
