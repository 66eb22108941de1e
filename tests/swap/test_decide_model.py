"""decide() and SwapTracker against an independent reference model of DESIGN.md section 4.

The state machine builds a log of `swap` entries, remembering for each entry what the test
meant it to be (valid or not, which swap, which vote). The reference model reads only that
bookkeeping, never the bytes, and states the rules directly (not incrementally).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from hypothesis import Phase, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from rollup_client.protocol import swap
from rollup_client.protocol.block import VerifiedBlock
from rollup_client.protocol.swap import Decided, Decision, IntentOrdered, Outcome
from swap_coordinator.core import Coordinator, State
from tests.keys import key

from .helpers import ASSET, ROLLUP_KEYS, ROLLUPS, USERS, genesis, make_block, signed, vote

INVOLVABLE = ROLLUPS[:3]  # "delta" never has a leg: its votes must be ignored


@dataclass(frozen=True)
class IntentMeta:
    sid: bytes
    valid: bool
    deadline: int
    rollups: frozenset[str]


@dataclass(frozen=True)
class VoteMeta:
    sid: bytes
    rollup: str
    yes: bool
    authentic: bool


Meta = IntentMeta | VoteMeta


def reference(times: list[int], log: list[tuple[int, int, int, Meta]], sid: bytes) -> Decision:
    """The rules read straight off DESIGN.md.

    `times` is every block's log time by height; `log` is (height, index, time, meta) of every
    entry in log order.
    """
    first = next(
        (e for e in log if isinstance(e[3], IntentMeta) and e[3].sid == sid and e[3].valid), None
    )
    if first is None:
        return swap.PENDING
    h0, i0, t0, meta = first
    assert isinstance(meta, IntentMeta)
    deadline = meta.deadline
    if t0 >= deadline:
        return Decision(Outcome.ABORT, h0, i0)
    firsts: dict[str, tuple[bool, int, int]] = {}
    for h, i, t, m in log:
        if (
            isinstance(m, VoteMeta)
            and (h, i) > (h0, i0)
            and m.sid == sid
            and m.authentic
            and m.rollup in meta.rollups
            and m.rollup not in firsts
            and t <= deadline
        ):
            firsts[m.rollup] = (m.yes, h, i)
    nos = sorted((h, i) for yes, h, i in firsts.values() if not yes)
    if nos:
        return Decision(Outcome.ABORT, *nos[0])
    if set(firsts) == meta.rollups:
        return Decision(Outcome.COMMIT, *max((h, i) for _, h, i in firsts.values()))
    late = [h for h, t in enumerate(times) if t > deadline]
    if late:
        return Decision(Outcome.ABORT, late[0], swap.BLOCK_START)
    return swap.PENDING


class SwapLog(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.genesis = genesis()
        self.tracker = swap.SwapTracker(self.genesis)
        self.blocks: list[tuple[int, list[bytes]]] = []
        self.log: list[tuple[int, int, int, Meta]] = []
        self.intents: list[tuple[swap.Intent, bytes, IntentMeta]] = []
        self.entries: list[tuple[bytes, Meta]] = []
        self.settled: dict[bytes, Decision] = {}
        self.ordered: set[bytes] = set()
        self.decided: dict[bytes, Decided] = {}
        self.coordinator = Coordinator(self.genesis)
        self._open(0)

    @property
    def now(self) -> int:
        return self.blocks[-1][0]

    def _open(self, time_ms: int) -> None:
        height = len(self.blocks)
        if self.blocks:  # the coordinator reads sealed blocks only, as from a subscription
            sealed_time, datas = self.blocks[-1]
            self.coordinator.apply_block(make_block(height - 1, sealed_time, datas))
        self.blocks.append((time_ms, []))
        for d in self.tracker.begin_block(height, time_ms):
            self._saw(d)

    def _saw(self, ev: IntentOrdered | Decided) -> None:
        if isinstance(ev, IntentOrdered):
            assert ev.intent.swap_id not in self.ordered
            self.ordered.add(ev.intent.swap_id)
        else:
            assert ev.swap_id not in self.decided
            self.decided[ev.swap_id] = ev

    def _append(self, data: bytes, meta: Meta) -> None:
        height = len(self.blocks) - 1
        time_ms, datas = self.blocks[-1]
        self.log.append((height, len(datas), time_ms, meta))
        datas.append(data)
        entry = make_block(height, time_ms, datas).entries[-1]
        for ev in self.tracker.apply(entry):
            self._saw(ev)

    def _verified(self) -> list[VerifiedBlock]:
        return [make_block(h, t, d) for h, (t, d) in enumerate(self.blocks)]

    @rule(
        legs=st.lists(
            st.tuples(st.sampled_from(INVOLVABLE), st.integers(0, 2), st.integers(0, 2)),
            min_size=1,
            max_size=4,
        ),
        ahead=st.sampled_from([0, 1, 3, 10, 40, 40]),
        nonce=st.binary(max_size=2),
        signing=st.sampled_from(["all", "all", "all", "missing", "forged"]),
    )
    def make_intent(
        self, legs: list[tuple[str, int, int]], ahead: int, nonce: bytes, signing: str
    ) -> None:
        """Terms, signed fully, partly or by an impostor; not yet submitted."""
        intent = swap.Intent(
            tuple(
                swap.Leg(r, USERS[a].public, USERS[b].public, ASSET, 1 + n)
                for n, (r, a, b) in enumerate(legs)
            ),
            max(1, self.now + ahead),
            nonce,
        )
        payers = [u for u in USERS if u.public in intent.payers()]
        if signing == "missing":
            data = signed(intent, payers[1:])
        elif signing == "forged":
            forged = swap.SignedIntent(
                intent, {p.public: key("mallory").sign(intent.signing_bytes()) for p in payers}
            )
            data = swap.encode_intent(forged)
        else:
            data = signed(intent)
        distinct = len({(r, a, b) for r, a, b in legs}) == len(legs)
        meta = IntentMeta(
            intent.swap_id,
            signing == "all" and distinct,
            intent.deadline_ms,
            frozenset(intent.rollups()),
        )
        self.intents.append((intent, data, meta))
        if meta.valid:
            decoded = swap.decode_swap_entry(data)
            assert isinstance(decoded, swap.SignedIntent)
            self.coordinator.add(decoded)

    @precondition(lambda self: self.intents)
    @rule(data=st.data())
    def submit_intent(self, data: st.DataObject) -> None:
        _, d, meta = data.draw(st.sampled_from(self.intents))
        self._append(d, meta)

    @precondition(lambda self: self.intents)
    @rule(
        data=st.data(),
        rollup=st.sampled_from(ROLLUPS),
        yes=st.booleans(),
        authentic=st.sampled_from([True, True, True, False]),
    )
    def cast_vote(self, data: st.DataObject, rollup: str, yes: bool, authentic: bool) -> None:
        intent, _, _ = data.draw(st.sampled_from(self.intents))
        sid = intent.swap_id
        signer = ROLLUP_KEYS[rollup] if authentic else key("mallory")
        self._append(vote(sid, rollup, yes, signer), VoteMeta(sid, rollup, yes, authentic))

    @precondition(lambda self: self.intents)
    @rule(data=st.data(), last_says_no=st.booleans())
    def everyone_votes(self, data: st.DataObject, last_says_no: bool) -> None:
        """Every involved rollup votes at once: YES, except perhaps the last one."""
        intent, _, _ = data.draw(st.sampled_from(self.intents))
        rollups = intent.rollups()
        for n, r in enumerate(rollups):
            yes = not (last_says_no and n == len(rollups) - 1)
            self._append(vote(intent.swap_id, r, yes), VoteMeta(intent.swap_id, r, yes, True))

    @precondition(lambda self: self.log)
    @rule(data=st.data())
    def resubmit(self, data: st.DataObject) -> None:
        """A duplicate intent or vote reaching the log again."""
        h, i, _, meta = data.draw(st.sampled_from(self.log))
        self._append(self.blocks[h][1][i], meta)

    @rule(dt=st.sampled_from([0, 1, 2, 7]))
    def next_block(self, dt: int) -> None:
        self._open(self.now + dt)

    @precondition(lambda self: self.intents)
    @rule(data=st.data(), past=st.sampled_from([0, 1]))
    def block_at_deadline(self, data: st.DataObject, past: int) -> None:
        """The last block at D, or the first block after it."""
        _, _, meta = data.draw(st.sampled_from(self.intents))
        self._open(max(self.now, meta.deadline + past))

    @invariant()
    def agrees_with_reference(self) -> None:
        blocks = self._verified()
        for sid in {meta.sid for _, _, meta in self.intents}:
            want = reference([t for t, _ in self.blocks], self.log, sid)
            got = swap.decide(blocks, sid, self.genesis)
            assert (got.outcome, got.height, got.index) == (
                want.outcome,
                want.height,
                want.index,
            ), (got, want)
            tracked = self.tracker.decision(sid)
            assert tracked == got
            if sid in self.settled:
                assert got == self.settled[sid], "appending changed a decision"
            elif got.outcome is not Outcome.PENDING:
                self.settled[sid] = got
                event(f"outcome {got.outcome.value}: {got.reason}")
            rec = self.tracker.get(sid)
            if rec is not None:
                assert sid in self.ordered
            if sid in self.decided:
                d = self.decided[sid]
                assert (d.outcome, d.height, d.index) == (got.outcome, got.height, got.index)
            elif rec is not None:
                assert got.outcome is Outcome.PENDING

    @invariant()
    def coordinator_never_contradicts_decide(self) -> None:
        open_height = len(self.blocks) - 1
        times = [t for t, _ in self.blocks[:open_height]]
        log = [e for e in self.log if e[0] < open_height]
        expected = {
            Outcome.COMMIT: {State.COMMITTED},
            Outcome.ABORT: {State.ABORTED},
            Outcome.PENDING: {State.PROPOSED, State.SUBMITTED, State.ORDERED, State.EXPIRED},
        }
        for sid in self.coordinator.proposals:
            view = self.coordinator.view(sid)
            assert view.state in expected[reference(times, log, sid).outcome]

    @invariant()
    def snapshot_round_trips(self) -> None:
        data = self.tracker.to_bytes()
        assert data == plain_snapshot(self.tracker)  # no record's cached part is stale
        again = swap.SwapTracker.from_bytes(data, self.genesis)
        assert again.to_bytes() == data


def plain_snapshot(t: swap.SwapTracker) -> bytes:
    """`SwapTracker.to_bytes` encoded from scratch as one JSON document, no part cached."""

    def decision(d: swap.Decision) -> list[object]:
        return [d.outcome.value, d.height, d.index, d.reason]

    doc = {
        "v": 1,
        "height": t.height,
        "time_ms": t.time_ms,
        "swaps": [
            {
                "intent": swap.encode_intent(r.signed).hex(),
                "at": [r.height, r.index],
                "votes": [[k, v.yes, v.height, v.index] for k, v in sorted(r.votes.items())],
                "decision": decision(r.decision),
            }
            for r in t.records()
        ],
        "void": [[sid.hex(), decision(d)] for sid, d in t._void.items()],
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


SwapLog.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=30,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)
TestSwapLog = SwapLog.TestCase
