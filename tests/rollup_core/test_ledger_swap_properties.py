"""Random swaps, transfers, lost votes and passing time over three rollups: invariants hold."""

from __future__ import annotations

from collections import defaultdict
from typing import Literal

from hypothesis import event, given, settings
from hypothesis import strategies as st

from rollup_client.ledger import TokenLedger
from rollup_client.protocol import swap, tx

from .helpers import key, make_genesis
from .network import Network, intent_entry

ROLLUPS = ("alpha", "beta", "gamma")
USERS = [key(i) for i in range(1, 4)]
GENESIS = make_genesis(
    {r: {u.public: {"USD": 50, "EUR": 50} for u in USERS} for r in ROLLUPS}, ["USD", "EUR"]
)

legs = st.lists(
    st.tuples(
        st.sampled_from(ROLLUPS),
        st.integers(0, 2),
        st.integers(0, 2),
        st.sampled_from(["USD", "EUR"]),
        st.integers(1, 40),
    ),
    min_size=1,
    max_size=4,
    unique_by=lambda leg: leg[:4],
)
deliveries = st.sets(st.sampled_from(ROLLUPS))
# One step of a program: a swap (its legs as (rollup, payer, payee, asset, amount), its time
# to live), a transfer (rollup, payer, payee, amount), or a block (who gets it, time passing).
Action = (
    tuple[Literal["swap"], list[tuple[str, int, int, str, int]], int]
    | tuple[Literal["transfer"], str, int, int, int]
    | tuple[Literal["block"], set[str], int]
)
actions = st.lists(
    st.one_of(
        st.tuples(st.just("swap"), legs, st.integers(0, 200)),
        st.tuples(
            st.just("transfer"),
            st.sampled_from(ROLLUPS),
            st.integers(0, 2),
            st.integers(0, 2),
            st.integers(1, 40),
        ),
        st.tuples(st.just("block"), deliveries, st.integers(0, 40)),
        st.tuples(st.just("block"), st.just(set(ROLLUPS)), st.integers(0, 40)),
    ),
    min_size=3,
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(actions, st.integers(0, 30))
def test_swaps_keep_supply_settle_exactly_once_and_replay_identically(
    program: list[Action], snapshot_at: int
) -> None:
    net = Network(GENESIS)
    observers = {r: TokenLedger(GENESIS, r) for r in ROLLUPS}
    nonces: dict[tuple[str, int], int] = defaultdict(int)
    deadlines: dict[bytes, int] = {}
    pending: list[tuple[str, bytes]] = []
    snap: dict[str, bytes] = {}
    program = [*program, ("block", set(ROLLUPS), 200)]
    snapshot_at %= sum(1 for a in program if a[0] == "block")
    for n, action in enumerate(program):
        if action[0] == "swap":
            _, drawn, ttl = action
            intent = swap.Intent(
                tuple(
                    swap.Leg(r, USERS[p].public, USERS[q].public, a, amt)
                    for r, p, q, a, amt in drawn
                ),
                net.time_ms + ttl,
                n.to_bytes(2, "big"),
            )
            deadlines[intent.swap_id] = intent.deadline_ms
            pending.append(intent_entry(intent, [u for u in USERS if u.public in intent.payers()]))
        elif action[0] == "transfer":
            _, r, s, t, amt = action
            u = USERS[s]
            t_ = tx.Transfer(u.public, USERS[t].public, "USD", amt, nonces[r, s], r)
            nonces[r, s] += 1
            pending.append((r, t_.sign(u).encode()))
        else:
            _, deliver, dt = action
            net.step(pending, deliver, dt)
            pending = []
            block = net.chain.blocks[-1]
            for r, obs in observers.items():
                obs.begin_block(block.height, block.time_ms)
                for e in block.entries:
                    if e.namespace in obs.namespaces():
                        obs.apply(e)
                assert obs.state_root() == net.ledgers[r].state_root()
                if block.height == snapshot_at:
                    snap[r] = obs.snapshot()
            assert net.supply("USD") == net.supply("EUR") == 3 * 150
            for sid, d in deadlines.items():
                if block.time_ms > d:
                    assert all(not lg.escrow(sid) for lg in net.ledgers.values())

    # Exactly once and atomic: per swap and rollup, one prepare then one settlement, and
    # every rollup of a swap settles it the same way.
    seqs: dict[bytes, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for rid, rec in net.receipts:
        if rec.swap_id is not None:
            seqs[rec.swap_id][rid].append(rec.kind)
    for per_rollup in seqs.values():
        for seq in per_rollup.values():
            assert seq in (["escrow", "commit"], ["escrow", "abort"], ["refuse", "abort"])
        assert len({seq[1] for seq in per_rollup.values()}) == 1
        event(f"swap {next(iter(per_rollup.values()))[1]}")

    # Replay from a snapshot equals replay from genesis.
    assert len(snap) == len(ROLLUPS)
    for r, data in snap.items():
        replica = TokenLedger(GENESIS, r)
        replica.restore(data)
        assert replica.height == snapshot_at
        for block in net.chain.blocks[replica.height + 1 :]:
            replica.begin_block(block.height, block.time_ms)
            for e in block.entries:
                if e.namespace in replica.namespaces():
                    replica.apply(e)
        assert replica.snapshot() == observers[r].snapshot()
