"""Transfers end to end: a real sequencer and a real rollup node process, through RollupClient."""

from __future__ import annotations

from rollup_client.protocol import tx
from rollup_client.protocol.errors import FailedPrecondition, Unauthenticated
from rollup_client.sdk import RollupClient, Submitted, TrioRollupClient
from tests.keys import key

from .conftest import FUNDS, GOLD, SILVER, StartNode


def test_transfer_receipts_balances_and_roots(start_node: StartNode) -> None:
    _, target = start_node("alpha")
    alice, bob = key("alice"), key("bob")
    with RollupClient(target) as c:
        before = c.state_root()
        r = c.transfer(alice, bob.public, GOLD, 40)
        assert r.executed, r
        assert r.ok, r
        assert c.balance(alice.public, GOLD) == FUNDS - 40
        assert c.balances(bob.public) == {GOLD: 45, SILVER: 0}
        assert c.nonce(alice.public) == 1
        assert c.receipt(r.tx_id) == r
        after = c.state_root(r.height)
        assert after.state_root != before.state_root
        assert c.state_root(r.height - 1).state_root == before.state_root
        s = c.status()
        assert s.rollup_id == "alpha"
        assert s.height >= r.height
        assert s.state_root
        assert c.escrow(b"\x07" * 32) == []


async def test_trio_client_transfers(start_node: StartNode) -> None:
    _, target = start_node("alpha")
    alice, carol = key("alice"), key("carol")
    async with TrioRollupClient(target) as c:
        first = await c.transfer(alice, carol.public, SILVER, 7)
        second = await c.transfer(alice, carol.public, SILVER, 8)
        assert first.ok
        assert second.ok
        assert (second.height, second.index) > (first.height, first.index)
        assert await c.balance(carol.public, SILVER) == 15
        assert await c.nonce(alice.public) == 2


def test_submit_many_partial_success(start_node: StartNode) -> None:
    _, target = start_node("alpha")
    alice, bob = key("alice"), key("bob")
    good = [
        tx.Transfer(alice.public, bob.public, GOLD, 1, n, "alpha").sign(alice) for n in range(50)
    ]
    forged = tx.SignedTransfer(good[0].tx, bytes(64))
    with RollupClient(target) as c:
        results = c.submit_many([*good, forged])
        oks = [r for r in results if isinstance(r, Submitted)]
        assert [r.tx_id for r in oks] == [g.entry_id for g in good]
        assert isinstance(results[-1], Unauthenticated)
        assert all(c.wait_receipt(g.entry_id).ok for g in good)
        again = c.submit_many(good[:1])  # its nonce is used now
        assert isinstance(again[0], FailedPrecondition)
        assert c.balance(bob.public, GOLD) == 5 + 50
