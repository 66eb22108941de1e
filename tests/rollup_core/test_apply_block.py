"""The node's pure core: one block through a StateMachine, without trio, sockets or disk."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rollup_client.ledger import TokenLedger
from rollup_client.node.apply import Applied, apply_block
from rollup_client.protocol import attestation, swap, tx
from rollup_client.protocol.block import VerifiedBlock
from rollup_client.protocol.genesis import SETTLEMENT_NAMESPACE, SWAP_NAMESPACE
from rollup_client.protocol.statemachine import Receipt, StateMachine

from .helpers import Chain, key, make_genesis, rollup_key
from .network import intent_entry

RID = "alpha"
USERS = [key(1), key(2), key(3)]
BAL = {u.public: {"USD": 100} for u in USERS}
GENESIS = make_genesis({RID: BAL, "beta": BAL}, ["USD"])
SIGNER = rollup_key(RID)


def transfer(sender: int, to: int, amount: int, nonce: int, rollup: str = RID) -> tuple[str, bytes]:
    u = USERS[sender]
    t = tx.Transfer(u.public, USERS[to].public, "USD", amount, nonce, rollup)
    return rollup, t.sign(u).encode()


def node_ledger() -> TokenLedger:
    return TokenLedger(GENESIS, RID, SIGNER)


def by_hand(machine: StateMachine, blk: VerifiedBlock) -> tuple[list[Receipt], bytes]:
    """The loop of the StateMachine docstring, written out."""
    receipts = machine.begin_block(blk.height, blk.time_ms)
    for e in blk.entries:
        r = machine.apply(e)
        if r is not None:
            receipts.append(r)
    return receipts, machine.state_root()


def test_a_block_gives_the_receipts_and_root_the_machine_gives() -> None:
    chain = Chain()
    entries = [transfer(0, 1, 5, 0), transfer(1, 2, 500, 0), transfer(2, 0, 1, 0, "beta")]
    blk = chain.seal(2_000, entries)
    a = apply_block(node_ledger(), blk, RID, signer=SIGNER, attest_every=0)
    receipts, root = by_hand(node_ledger(), blk)
    assert list(a.record.receipts) == receipts
    assert a.record.state_root == root
    assert [r.ok for r in receipts] == [True, False]
    assert a.executed == [e.id for e in blk.entries if e.namespace == RID]
    assert (a.record.height, a.record.time_ms, a.record.outbox, a.shared) == (0, 2_000, [], False)


def test_every_kth_block_attests_its_root() -> None:
    chain, ledger = Chain(), node_ledger()
    got: list[Applied] = []
    for h in range(5):
        got.append(
            apply_block(ledger, chain.seal(1_000 + h, []), RID, signer=SIGNER, attest_every=2)
        )
    assert [len(a.record.outbox) for a in got] == [1, 0, 1, 0, 1]
    for a in got[::2]:
        ((_, ns, data),) = a.record.outbox
        att = attestation.decode(data)
        assert ns == SETTLEMENT_NAMESPACE
        assert att.verify(SIGNER.public)
        assert (att.rollup, att.height, att.state_root) == (
            RID,
            a.record.height,
            a.record.state_root,
        )


def two_rollup_intent(nonce: bytes, signed: bool = True) -> tuple[str, bytes]:
    """USERS[0] pays USERS[1] on alpha, USERS[1] pays USERS[0] on beta."""
    intent = swap.Intent(
        (
            swap.Leg(RID, USERS[0].public, USERS[1].public, "USD", 10),
            swap.Leg("beta", USERS[1].public, USERS[0].public, "USD", 10),
        ),
        5_000,
        nonce,
    )
    return intent_entry(intent, USERS[:2] if signed else [])


def one_rollup_intent(nonce: bytes) -> tuple[str, bytes]:
    leg = swap.Leg(RID, USERS[2].public, USERS[0].public, "USD", 3)
    return intent_entry(swap.Intent((leg,), 5_000, nonce), [USERS[2]])


def test_votes_are_shared_only_when_other_rollups_vote_on_the_swap() -> None:
    chain, ledger = Chain(), node_ledger()

    def run(*entries: tuple[str, bytes]) -> Applied:
        blk = chain.seal(1_000 + 10 * len(chain.blocks), entries)
        return apply_block(ledger, blk, RID, signer=SIGNER, attest_every=0)

    alone = run(one_rollup_intent(b"1"))
    assert [ns for _, ns, _ in alone.record.outbox] == [SWAP_NAMESPACE]
    assert not alone.shared
    unsigned = run(two_rollup_intent(b"2", signed=False))
    assert unsigned.record.outbox == []
    assert not unsigned.shared
    both = run(two_rollup_intent(b"3"))
    assert [ns for _, ns, _ in both.record.outbox] == [SWAP_NAMESPACE]
    assert both.shared
    assert [r.kind for r in both.record.receipts] == ["escrow"]


def test_a_replica_submits_nothing_and_keeps_no_outbox() -> None:
    chain, ledger = Chain(), node_ledger()
    blk = chain.seal(1_100, [two_rollup_intent(b"r")])
    a = apply_block(ledger, blk, RID, signer=None, attest_every=1)
    assert a.record.outbox == []
    assert not a.shared
    assert [r.kind for r in a.record.receipts] == ["escrow"]
    assert ledger.take_outbox() == []  # the machine's vote was taken, and dropped


transfers = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 60), st.booleans()),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(transfers, st.lists(st.integers(0, 4), min_size=1, max_size=12), st.integers(0, 20))
def test_a_restart_from_any_snapshot_replays_to_the_same_records(
    txs: list[tuple[int, int, int, bool]], cuts: list[int], snap_at: int
) -> None:
    """What the shell does after a crash (restore the snapshot, apply the rest) gives the
    records a node that never stopped wrote, and the machine driven by hand agrees."""
    chain, nonces, entries = Chain(), [0, 0, 0], []
    for s, t, amount, good_nonce in txs:
        entries.append(transfer(s, t, amount, nonces[s] if good_nonce else nonces[s] + 7))
        nonces[s] += good_nonce
    blocks = []
    for n, size in enumerate(cuts):
        blocks.append(chain.seal(1_000 + 10 * n, entries[:size]))
        entries = entries[size:]
    snap_at %= len(blocks)
    straight, by_hand_ledger, snapshot = node_ledger(), node_ledger(), b""
    records = []
    for blk in blocks:
        a = apply_block(straight, blk, RID, signer=SIGNER, attest_every=3)
        assert (list(a.record.receipts), a.record.state_root) == by_hand(by_hand_ledger, blk)
        records.append(a.record)
        if blk.height == snap_at:
            snapshot = straight.snapshot()
    restarted = node_ledger()
    restarted.restore(snapshot)
    replayed = [
        apply_block(restarted, blk, RID, signer=SIGNER, attest_every=3).record
        for blk in blocks[snap_at + 1 :]
    ]
    assert replayed == records[snap_at + 1 :]
