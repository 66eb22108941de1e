"""The pure half of `tandem chaos`: the fault schedule and the invariant checker.

No I/O, clocks or randomness beyond the seed given: `schedule(seed, ...)` is the same list
of faults for the same arguments, and the `check_*` functions turn the verified log plus
what clients and servers reported into the violations of DESIGN.md section 4 (an empty
list when the run kept every invariant).

The reference model is built from the log alone: balances, nonces and escrow per rollup,
applied with the token-ledger rules written out again here, with decisions taken by the
swap rules of `rollup_client.protocol.swap` (the specification of `decide()`). It never asks a
rollup node what its state is; the live nodes are compared against it at the end.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from rollup_client.ledger import TokenLedger
from rollup_client.protocol import codec, swap, tx
from rollup_client.protocol.block import LogEntry, VerifiedBlock
from rollup_client.protocol.errors import TandemError
from rollup_client.protocol.genesis import SWAP_NAMESPACE, Genesis

KILL, STOP = "kill", "stop"


@dataclass(frozen=True)
class Fault:
    """At `at_s` seconds into the run, kill -9 (or SIGSTOP) `target` for `hold_s` seconds."""

    at_s: float
    target: str
    kind: str
    hold_s: float


def schedule(seed: int, duration_s: float, targets: Iterable[str]) -> list[Fault]:
    """A fault every 1 to 5 s until `duration_s`, each healed before the next one starts."""
    rng = random.Random(seed)
    names = sorted(targets)
    out: list[Fault] = []
    t = rng.uniform(1.0, 5.0)
    while t < duration_s:
        hold = rng.uniform(0.3, 2.0)
        out.append(Fault(round(t, 3), rng.choice(names), rng.choice((KILL, STOP)), round(hold, 3)))
        t += hold + rng.uniform(1.0, 5.0)
    return out


@dataclass(frozen=True)
class Violation:
    """One broken invariant, with the evidence a person needs to find it."""

    invariant: str
    evidence: str

    def to_json(self) -> dict[str, str]:
        return {"invariant": self.invariant, "evidence": self.evidence}


@dataclass
class _Escrow:
    legs: tuple[swap.Leg, ...]
    deadline_ms: int


@dataclass
class Reference:
    """Every rollup's ledger as the log alone defines it."""

    genesis: Genesis
    balances: dict[tuple[str, bytes, str], int] = field(default_factory=dict)
    nonces: dict[tuple[str, bytes], int] = field(default_factory=dict)
    escrow: dict[tuple[bytes, str], _Escrow] = field(default_factory=dict)
    effects: Counter[tuple[bytes, int, str]] = field(default_factory=Counter)
    decided: dict[bytes, swap.Outcome] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)
    height: int = -1
    time_ms: int = 0

    def __post_init__(self) -> None:
        self.tracker = swap.SwapTracker(self.genesis)
        self.assets = {r.id: set(r.assets) for r in self.genesis.rollups}
        for r in self.genesis.rollups:
            for account, held in r.balances.items():
                for asset, amount in held.items():
                    self.balances[(r.id, account, asset)] = amount
        self.supply0 = self.supply()

    def supply(self) -> dict[tuple[str, str], int]:
        """(rollup, asset) -> balances plus escrow."""
        total: Counter[tuple[str, str]] = Counter()
        for (rollup, _, asset), amount in self.balances.items():
            total[(rollup, asset)] += amount
        for (_, rollup), e in self.escrow.items():
            for leg in e.legs:
                total[(rollup, leg.asset)] += leg.amount
        return {k: v for k, v in total.items() if v}

    def _fail(self, invariant: str, evidence: str) -> None:
        self.violations.append(Violation(invariant, f"height {self.height}: {evidence}"))

    def apply(self, block: VerifiedBlock) -> None:
        """Apply one verified block, then check the per-block invariants."""
        self.height, self.time_ms = block.height, block.time_ms
        for d in self.tracker.begin_block(block.height, block.time_ms):
            self._settle(d)
        for entry in block.entries:
            if entry.namespace == SWAP_NAMESPACE:
                for ev in self.tracker.apply(entry):
                    if isinstance(ev, swap.IntentOrdered):
                        self._prepare(ev.intent)
                    else:
                        self._settle(ev)
            elif entry.namespace in self.assets:
                self._transfer(entry)
        if self.supply() != self.supply0:
            self._fail("supply", f"supply {self.supply()} differs from genesis {self.supply0}")
        for (sid, rollup), e in self.escrow.items():
            if block.time_ms > e.deadline_ms:
                self._fail(
                    "escrow-past-deadline",
                    f"swap {sid.hex()[:16]} still holds escrow on {rollup} at log time "
                    f"{block.time_ms} > deadline {e.deadline_ms}",
                )

    def _bal(self, rollup: str, account: bytes, asset: str) -> int:
        return self.balances.get((rollup, account, asset), 0)

    def _move(self, rollup: str, account: bytes, asset: str, delta: int) -> None:
        self.balances[(rollup, account, asset)] = self._bal(rollup, account, asset) + delta

    def _transfer(self, entry: LogEntry) -> None:
        rollup = entry.namespace
        try:
            t = tx.parse(entry.data).tx
        except TandemError:
            return
        if t.rollup != rollup or t.nonce != self.nonces.get((rollup, t.sender), 0):
            return
        self.nonces[(rollup, t.sender)] = t.nonce + 1
        if t.asset not in self.assets[rollup] or self._bal(rollup, t.sender, t.asset) < t.amount:
            return
        self._move(rollup, t.sender, t.asset, -t.amount)
        self._move(rollup, t.to, t.asset, t.amount)

    def _prepare(self, intent: swap.Intent) -> None:
        for rollup in intent.rollups():
            legs = intent.legs_on(rollup)
            need: Counter[tuple[bytes, str]] = Counter()
            for leg in legs:
                need[(leg.payer, leg.asset)] += leg.amount
            if any(leg.asset not in self.assets[rollup] for leg in legs) or any(
                self._bal(rollup, payer, asset) < amount for (payer, asset), amount in need.items()
            ):
                continue
            for n, leg in enumerate(intent.legs):
                if leg.rollup == rollup:
                    self._move(rollup, leg.payer, leg.asset, -leg.amount)
                    self.effects[(intent.swap_id, n, "escrow")] += 1
            self.escrow[(intent.swap_id, rollup)] = _Escrow(legs, intent.deadline_ms)

    def _settle(self, d: swap.Decided) -> None:
        rec = self.tracker.get(d.swap_id)
        assert rec is not None
        intent = rec.intent
        self.decided[d.swap_id] = d.outcome
        held = {r: self.escrow.pop((d.swap_id, r), None) for r in intent.rollups()}
        if d.outcome is swap.Outcome.COMMIT and any(e is None for e in held.values()):
            missing = sorted(r for r, e in held.items() if e is None)
            self._fail(
                "all-or-nothing",
                f"swap {d.swap_id.hex()[:16]} committed without escrow on {missing}",
            )
        for n, leg in enumerate(intent.legs):
            if held[leg.rollup] is None:
                continue
            paid = d.outcome is swap.Outcome.COMMIT
            self._move(leg.rollup, leg.payee if paid else leg.payer, leg.asset, leg.amount)
            self.effects[(d.swap_id, n, "pay" if paid else "refund")] += 1

    def check_effects(self) -> None:
        """Each leg's effect happened once: escrow then pay (COMMIT) or refund (ABORT)."""
        for sid, outcome in self.decided.items():
            rec = self.tracker.get(sid)
            assert rec is not None
            for n in range(len(rec.intent.legs)):
                escrowed = self.effects[(sid, n, "escrow")]
                paid, refunded = self.effects[(sid, n, "pay")], self.effects[(sid, n, "refund")]
                ok = (escrowed, paid, refunded) in (
                    ((1, 1, 0),) if outcome is swap.Outcome.COMMIT else ((1, 0, 1), (0, 0, 0))
                )
                if not ok:
                    self._fail(
                        "exactly-once",
                        f"swap {sid.hex()[:16]} leg {n} ({outcome.value}): escrowed {escrowed}, "
                        f"paid {paid}, refunded {refunded}",
                    )


@dataclass(frozen=True)
class Acked:
    """A submission a client saw acknowledged: entry id at (height, index)."""

    entry_id: bytes
    height: int
    index: int


def check_log(blocks: list[VerifiedBlock]) -> list[Violation]:
    """Gap-free heights from 0, a hash link from each block to its parent, and log time
    that never goes back. Signatures and proofs were checked when each block became a
    VerifiedBlock."""
    out: list[Violation] = []
    prev, time_ms = codec.ZERO_HASH, 0
    for n, b in enumerate(blocks):
        if b.height != n:
            out.append(Violation("log-gap-free", f"block {n} of the log has height {b.height}"))
        if b.header.prev_hash != prev:
            out.append(Violation("log-hash-link", f"block {b.height} does not link to its parent"))
        if b.time_ms < time_ms:
            out.append(
                Violation("log-time", f"block {b.height} has log time {b.time_ms} < {time_ms}")
            )
        prev, time_ms = b.hash, b.time_ms
    return out


def check_acked(blocks: list[VerifiedBlock], acked: Iterable[Acked]) -> list[Violation]:
    """Every acknowledged submission is in the log once, at its acknowledged position."""
    where: dict[bytes, list[tuple[int, int]]] = {}
    for b in blocks:
        for e in b.entries:
            where.setdefault(e.id, []).append((e.height, e.index))
    out: list[Violation] = []
    for a in acked:
        found = where.get(a.entry_id, [])
        if found != [(a.height, a.index)]:
            out.append(
                Violation(
                    "acked-in-log-once",
                    f"entry {a.entry_id.hex()[:16]} acked at {(a.height, a.index)}, "
                    f"log has it at {found}",
                )
            )
    return out


def replay_roots(genesis: Genesis, blocks: list[VerifiedBlock]) -> dict[str, list[bytes]]:
    """Each rollup's state root after every block, from a fresh replay of the log."""
    roots: dict[str, list[bytes]] = {}
    for r in genesis.rollups:
        ledger = TokenLedger(genesis, r.id)
        out = roots[r.id] = []
        for b in blocks:
            ledger.begin_block(b.height, b.time_ms)
            for e in b.entries:
                ledger.apply(e)
            out.append(ledger.state_root())
    return roots


def check_nodes(
    replayed: Mapping[str, list[bytes]], reported: Mapping[str, tuple[int, bytes]]
) -> list[Violation]:
    """Every live rollup's state root at its height equals the fresh replay's."""
    out: list[Violation] = []
    for rollup, (height, root) in sorted(reported.items()):
        roots = replayed[rollup]
        if height >= len(roots):
            out.append(Violation("node-root", f"{rollup} reports height {height} past the log"))
        elif roots[height] != root:
            out.append(
                Violation(
                    "node-root",
                    f"{rollup} root at height {height} is {root.hex()[:16]}, "
                    f"a fresh replay gives {roots[height].hex()[:16]}",
                )
            )
    return out


def check_balances(
    ref: Reference, reported: Mapping[tuple[str, bytes, str], int]
) -> list[Violation]:
    """Balances the live nodes report equal the reference model's."""
    return [
        Violation(
            "node-balance",
            f"{rollup} reports {amount} {asset} for {account.hex()[:16]}, "
            f"the log gives {ref.balances.get((rollup, account, asset), 0)}",
        )
        for (rollup, account, asset), amount in sorted(reported.items())
        if ref.balances.get((rollup, account, asset), 0) != amount
    ]


def check_supply(
    genesis: Genesis, reported: Mapping[tuple[str, bytes, str], int]
) -> list[Violation]:
    """Supply per rollup and asset over the balances the live nodes report (escrow is empty
    once every deadline passed) equals the genesis supply."""
    want: Counter[tuple[str, str]] = Counter()
    for r in genesis.rollups:
        for held in r.balances.values():
            for asset, amount in held.items():
                want[(r.id, asset)] += amount
    got: Counter[tuple[str, str]] = Counter()
    for (rollup, _, asset), amount in reported.items():
        got[(rollup, asset)] += amount
    return [
        Violation("supply", f"{rollup} holds {got[(rollup, asset)]} {asset}, genesis had {n}")
        for (rollup, asset), n in sorted(want.items())
        if got[(rollup, asset)] != n
    ]


def check_reports(ref: Reference, claims: Iterable[tuple[bytes, str]]) -> list[Violation]:
    """The coordinator never reports an outcome that contradicts decide() over the log.

    `claims` are (swap id, "committed" or "aborted") as the coordinator said, at any time."""
    out: list[Violation] = []
    for sid, said in claims:
        decision = ref.tracker.decision(sid)
        if decision.outcome is swap.Outcome.PENDING and said == swap.Outcome.ABORT.value:
            continue  # never ordered before its deadline: nothing can escrow, so ABORT holds
        if decision.outcome.value != said:
            out.append(
                Violation(
                    "coordinator-vs-decide",
                    f"coordinator says swap {sid.hex()[:16]} {said}, "
                    f"decide() over the log says {decision.outcome.value}",
                )
            )
    return out


@dataclass(frozen=True)
class Placed:
    """Where the coordinator says a swap's intent was ordered and where it was decided
    (index `swap.BLOCK_START` for a decision at the start of a block); None if not said."""

    swap_id: bytes
    intent: tuple[int, int] | None
    decision: tuple[int, int] | None


def check_placed(ref: Reference, placed: Iterable[Placed], height: int) -> list[Violation]:
    """The positions the coordinator reports are the ones the log gives (up to `height`)."""
    out: list[Violation] = []
    for p in placed:
        rec = ref.tracker.get(p.swap_id)
        d = ref.tracker.decision(p.swap_id)
        if p.intent is not None and p.intent[0] <= height:
            # A void intent (ordered at or after its deadline) is decided where it lies.
            want = (rec.height, rec.index) if rec is not None else (d.height, d.index)
            if want != p.intent:
                out.append(
                    Violation(
                        "coordinator-vs-decide",
                        f"coordinator places swap {p.swap_id.hex()[:16]}'s intent at "
                        f"{p.intent}, the log at {want}",
                    )
                )
        if p.decision is not None and p.decision[0] <= height and (d.height, d.index) != p.decision:
            out.append(
                Violation(
                    "coordinator-vs-decide",
                    f"coordinator places swap {p.swap_id.hex()[:16]}'s decision at "
                    f"{p.decision}, decide() at {(d.height, d.index)}",
                )
            )
    return out
