"""The pure half of `tandem chaos`: the fault schedule and every invariant check.

Logs are built in memory (no sequencer): each check must pass on an honest log and name
the invariant when the evidence is tampered with. A hypothesis test drives random
transfers, swaps and votes through the reference model and the rollups' own ledger: two
independent implementations of the rules must agree on every balance.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from deploy import chaos_core
from deploy.chaos_core import Acked, Fault, Reference
from rollup_client.ledger import TokenLedger
from rollup_client.protocol import block, codec, swap, tx
from rollup_client.protocol.block import LogEntry, VerifiedBlock
from rollup_client.protocol.genesis import SWAP_NAMESPACE, Client, Genesis, Rollup
from rollup_client.protocol.keys import SigningKey

KEYS = {n: SigningKey.from_seed(n.encode().ljust(32, b"-")) for n in ("ra", "rb", "alice", "bob")}
ALICE, BOB = KEYS["alice"], KEYS["bob"]
GENESIS = Genesis(
    "chaos-core",
    SigningKey.from_seed(b"s" * 32).public,
    (Client("node", KEYS["ra"].public, frozenset({"ra", "rb", SWAP_NAMESPACE})),),
    (
        Rollup("ra", KEYS["ra"].public, ("USD",), {ALICE.public: {"USD": 100}}),
        Rollup("rb", KEYS["rb"].public, ("USD",), {BOB.public: {"USD": 100}}),
    ),
    time_ms=1_000,
)


def make_log(blocks: Sequence[tuple[int, Sequence[tuple[str, bytes]]]]) -> list[VerifiedBlock]:
    """Hash-linked blocks of (time_ms, [(namespace, data)]), as a reader would verify them."""
    out, prev = [], codec.ZERO_HASH
    for height, (time_ms, items) in enumerate(blocks):
        ids = [codec.entry_id(ns, d) for ns, d in items]
        table = block.namespace_table(list(zip([ns for ns, _ in items], ids, strict=True)))
        header = block.make_header(height, prev, time_ms, len(items), table)
        entries = tuple(
            LogEntry(ns, d, height, i, eid)
            for i, ((ns, d), eid) in enumerate(zip(items, ids, strict=True))
        )
        out.append(VerifiedBlock(header, header.hash, b"", entries))
        prev = header.hash
    return out


def transfer(
    sender: SigningKey, to: SigningKey, amount: int, nonce: int, rollup: str
) -> tuple[str, bytes]:
    t = tx.Transfer(sender.public, to.public, "USD", amount, nonce, rollup)
    return rollup, t.sign(sender).encode()


def intent(legs: Sequence[swap.Leg], deadline: int, nonce: bytes) -> tuple[swap.Intent, bytes]:
    i = swap.Intent(tuple(legs), deadline, nonce)
    s = swap.SignedIntent(i)
    for payer in i.payers():
        key = next(k for k in KEYS.values() if k.public == payer)
        s = swap.sign_intent(s, key)
    return i, swap.encode_intent(s)


def vote(i: swap.Intent, rollup: str, yes: bool) -> tuple[str, bytes]:
    return SWAP_NAMESPACE, swap.encode_vote(swap.sign_vote(KEYS[rollup], i.swap_id, rollup, yes))


def honest_log() -> tuple[list[VerifiedBlock], swap.Intent, swap.Intent]:
    good, good_data = intent(
        [
            swap.Leg("ra", ALICE.public, BOB.public, "USD", 10),
            swap.Leg("rb", BOB.public, ALICE.public, "USD", 5),
        ],
        5_000,
        b"good",
    )
    short, short_data = intent(
        [
            swap.Leg("ra", ALICE.public, BOB.public, "USD", 10**6),
            swap.Leg("rb", BOB.public, ALICE.public, "USD", 5),
        ],
        6_000,
        b"short",
    )
    log = make_log(
        [
            (1_100, [transfer(ALICE, BOB, 3, 0, "ra")]),
            (1_200, [(SWAP_NAMESPACE, good_data)]),
            (1_300, [vote(good, "ra", True), vote(good, "rb", True)]),
            (1_400, [(SWAP_NAMESPACE, short_data)]),
            (1_500, [vote(short, "rb", True), vote(short, "ra", False)]),
            (7_000, []),
        ]
    )
    return log, good, short


def reference(log: Sequence[VerifiedBlock]) -> Reference:
    ref = Reference(GENESIS)
    for b in log:
        ref.apply(b)
    ref.check_effects()
    return ref


def test_an_honest_log_keeps_every_invariant() -> None:
    log, good, short = honest_log()
    ref = reference(log)
    assert ref.violations == []
    assert chaos_core.check_log(log) == []
    assert ref.decided == {good.swap_id: swap.Outcome.COMMIT, short.swap_id: swap.Outcome.ABORT}
    assert ref.balances[("ra", ALICE.public, "USD")] == 100 - 3 - 10
    assert ref.balances[("ra", BOB.public, "USD")] == 3 + 10
    assert ref.balances[("rb", BOB.public, "USD")] == 95
    assert ref.escrow == {}
    roots = chaos_core.replay_roots(GENESIS, log)
    assert (
        chaos_core.check_nodes(roots, {"ra": (5, roots["ra"][5]), "rb": (2, roots["rb"][2])}) == []
    )
    reported = {k: v for k, v in ref.balances.items() if v}
    assert chaos_core.check_balances(ref, reported) == []
    assert chaos_core.check_supply(GENESIS, reported) == []
    said = {good.swap_id: "committed", short.swap_id: "aborted"}
    assert chaos_core.check_reports(ref, said.items()) == []


def test_each_check_names_its_invariant_on_tampered_evidence() -> None:
    log, good, _ = honest_log()
    ref = reference(log)
    first = log[0].entries[0]
    names = {
        v.invariant
        for v in [
            *chaos_core.check_log([log[0], log[2], log[1]]),
            *chaos_core.check_log(make_log([(2_000, []), (1_999, [])])),
            *chaos_core.check_acked(log, [Acked(first.id, 0, 1)]),
            *chaos_core.check_acked(
                log + make_log([(8_000, [("ra", first.data)])]), [Acked(first.id, 0, 0)]
            ),
            *chaos_core.check_nodes(
                chaos_core.replay_roots(GENESIS, log), {"ra": (5, b"\x00" * 32)}
            ),
            *chaos_core.check_balances(ref, {("ra", ALICE.public, "USD"): 1}),
            *chaos_core.check_supply(GENESIS, {("ra", ALICE.public, "USD"): 1}),
            *chaos_core.check_reports(ref, [(good.swap_id, "aborted")]),
        ]
    }
    assert names == {
        "log-gap-free",
        "log-time",
        "log-hash-link",
        "acked-in-log-once",
        "node-root",
        "node-balance",
        "supply",
        "coordinator-vs-decide",
    }
    assert chaos_core.check_acked(log, [Acked(first.id, 0, 0)]) == []


def test_the_same_seed_gives_the_same_schedule() -> None:
    targets = ["sequencer", "rollup-a", "rollup-b", "rollup-c", "coordinator"]
    a = chaos_core.schedule(7, 60, targets)
    assert a == chaos_core.schedule(7, 60, reversed(targets))
    assert a != chaos_core.schedule(8, 60, targets)
    assert all(f.at_s < 60 and f.target in targets for f in a)
    assert {f.kind for f in a} == {chaos_core.KILL, chaos_core.STOP}
    for f, g in itertools.pairwise(a):
        assert 1.0 <= g.at_s - (f.at_s + f.hold_s) <= 5.0 + 1e-3
    assert isinstance(a[0], Fault)
    assert 1.0 <= a[0].at_s <= 5.0


@st.composite
def random_logs(draw: st.DrawFn) -> list[VerifiedBlock]:
    """Transfers (some with bad nonces or overdrafts), swaps and votes in any order."""
    nonces = {("ra", "alice"): 0, ("rb", "bob"): 0}
    who = {"ra": ALICE, "rb": BOB}
    intents: list[swap.Intent] = []
    blocks = []
    time_ms = 1_000
    for _ in range(draw(st.integers(1, 12))):
        time_ms += draw(st.integers(1, 400))
        items: list[tuple[str, bytes]] = []
        for _ in range(draw(st.integers(0, 4))):
            op = draw(st.sampled_from(["transfer", "intent", "vote"]))
            if op == "transfer":
                rollup = draw(st.sampled_from(["ra", "rb"]))
                sender = who[rollup]
                k = (rollup, "alice" if sender is ALICE else "bob")
                nonce = nonces[k] + draw(st.sampled_from([0, 0, 0, 1]))
                nonces[k] = max(nonces[k], nonce)
                other = BOB if sender is ALICE else ALICE
                items.append(transfer(sender, other, draw(st.integers(1, 120)), nonce, rollup))
            elif op == "intent":
                legs = [swap.Leg("ra", ALICE.public, BOB.public, "USD", draw(st.integers(1, 120)))]
                if draw(st.booleans()):
                    legs.append(
                        swap.Leg("rb", BOB.public, ALICE.public, "USD", draw(st.integers(1, 120)))
                    )
                i, data = intent(legs, time_ms + draw(st.integers(-50, 800)), bytes([len(intents)]))
                intents.append(i)
                items.append((SWAP_NAMESPACE, data))
            elif intents:
                i = draw(st.sampled_from(intents))
                items.append(vote(i, draw(st.sampled_from(["ra", "rb"])), draw(st.booleans())))
        blocks.append((time_ms, items))
    blocks.append((time_ms + 10_000, []))
    return make_log(blocks)


@settings(max_examples=60, deadline=None)
@given(random_logs())
def test_the_reference_agrees_with_the_rollup_ledger(log: list[VerifiedBlock]) -> None:
    ref = reference(log)
    # Random votes may be lies (a YES from a rollup that refused to escrow): only those
    # break all-or-nothing, and the checker must say so rather than move any funds.
    assert {v.invariant for v in ref.violations} <= {"all-or-nothing", "exactly-once"}
    assert ref.escrow == {}
    for r in GENESIS.rollups:
        ledger = TokenLedger(GENESIS, r.id)
        for b in log:
            ledger.begin_block(b.height, b.time_ms)
            for e in b.entries:
                ledger.apply(e)
        for k in (ALICE, BOB):
            assert ledger.balance(k.public, "USD") == ref.balances.get((r.id, k.public, "USD"), 0)


def test_a_yes_vote_without_escrow_breaks_all_or_nothing() -> None:
    lie, data = intent([swap.Leg("ra", ALICE.public, BOB.public, "USD", 101)], 1_500, b"lie")
    ref = reference(make_log([(1_100, [(SWAP_NAMESPACE, data), vote(lie, "ra", True)])]))
    assert [v.invariant for v in ref.violations] == ["all-or-nothing", "exactly-once"]
    assert ref.balances[("ra", ALICE.public, "USD")] == 100


def test_positions_the_coordinator_reports_are_held_against_the_log() -> None:
    log, good, short = honest_log()
    ref = reference(log)
    honest = [
        chaos_core.Placed(good.swap_id, (1, 0), (2, 1)),
        chaos_core.Placed(short.swap_id, (3, 0), (4, 1)),
        chaos_core.Placed(short.swap_id, (3, 0), None),
        chaos_core.Placed(good.swap_id, (9, 0), None),  # beyond the checked height: skipped
    ]
    assert chaos_core.check_placed(ref, honest, 5) == []
    lies = [
        chaos_core.Placed(good.swap_id, (1, 1), None),
        chaos_core.Placed(short.swap_id, None, (5, swap.BLOCK_START)),
    ]
    found = chaos_core.check_placed(ref, lies, 5)
    assert [v.invariant for v in found] == ["coordinator-vs-decide"] * 2
