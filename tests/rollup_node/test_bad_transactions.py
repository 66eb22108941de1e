"""Bad user transactions: a clear error at submission or a failed receipt, nothing else.

Rejected at submission (the node never forwards them): malformed bytes, a bad signature,
an amount out of range (the overflow case: no u64 amount above 2**63 - 1 is accepted),
a transaction for another rollup, a nonce already used. Failed at execution (in the log,
so their receipt says why): a skipped nonce, an overdraft, an unknown asset.
"""

from __future__ import annotations

import pytest

from rollup_client.protocol import tx
from rollup_client.protocol.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    OutOfRange,
    Unauthenticated,
)
from rollup_client.protocol.keys import SigningKey
from rollup_client.sdk import RollupClient
from tests.keys import key

from .conftest import FUNDS, GOLD, SILVER, StartNode


def _signed(
    sender: SigningKey, to: bytes, asset: str, amount: int, nonce: int
) -> tx.SignedTransfer:
    return tx.Transfer(sender.public, to, asset, amount, nonce, "alpha").sign(sender)


def _state(c: RollupClient, *accounts: SigningKey) -> tuple[object, ...]:
    return tuple((c.balances(a.public), c.nonce(a.public)) for a in accounts)


def test_rejected_at_submission_change_nothing(start_node: StartNode) -> None:
    _, target = start_node("alpha")
    alice, bob = key("alice"), key("bob")
    with RollupClient(target) as c:
        assert c.transfer(alice, bob.public, GOLD, 1).ok
        root, state = c.state_root(), _state(c, alice, bob)
        good = _signed(alice, bob.public, GOLD, 2, 1)

        with pytest.raises(Unauthenticated, match="signature"):
            c.submit(tx.SignedTransfer(good.tx, bytes(64)))
        forged = _signed(bob, bob.public, GOLD, 2, 1)
        with pytest.raises(Unauthenticated):
            c.submit(tx.SignedTransfer(good.tx, forged.signature))
        with pytest.raises(FailedPrecondition, match="nonce"):
            c.submit(_signed(alice, bob.public, GOLD, 3, 0))
        with pytest.raises(InvalidArgument, match="amount"):
            c.submit(_signed(alice, bob.public, GOLD, tx.MAX_AMOUNT + 1, 1))
        with pytest.raises(InvalidArgument, match="amount"):
            c.submit(_signed(alice, bob.public, GOLD, 0, 1))
        for junk in (b"", b"\x01", b"\x09" + good.encode()[1:], good.encode()[:-1], b"\x00" * 500):
            with pytest.raises(InvalidArgument, match="malformed"):
                c.submit_raw(junk)
        other = tx.Transfer(alice.public, bob.public, GOLD, 2, 1, "beta").sign(alice)
        with pytest.raises(InvalidArgument, match="rollup"):
            c.submit(other)

        with pytest.raises(InvalidArgument, match="32-byte"):
            c.balance(b"\x01\x02", GOLD)
        with pytest.raises(NotFound):
            c.receipt(good.entry_id)
        with pytest.raises(InvalidArgument):
            c.receipt(b"short")
        with pytest.raises(OutOfRange):
            c.state_root(10**9)

        # A later good transfer lands in a new block: every refusal above left no trace.
        r = c.transfer(alice, bob.public, GOLD, 2)
        assert r.ok
        assert c.state_root(r.height - 1).state_root == root.state_root
        assert _state(c, alice, bob) != state
        assert c.balance(bob.public, GOLD) == 5 + 1 + 2


def test_failed_at_execution_move_no_funds(start_node: StartNode) -> None:
    _, target = start_node("alpha")
    alice, bob = key("alice"), key("bob")
    with RollupClient(target) as c:
        balances = {a: c.balances(a.public) for a in (alice, bob)}

        skipped = c.submit(_signed(alice, bob.public, GOLD, 1, 5))
        r = c.wait_receipt(skipped.tx_id)
        assert (r.ok, r.reason) == (False, "bad nonce: expected 0, got 5")
        assert c.nonce(alice.public) == 0

        r = c.transfer(bob, alice.public, GOLD, 6)
        assert not r.ok
        assert r.reason == "insufficient balance: has 5, needs 6"

        r = c.transfer(alice, bob.public, "platinum", 1)
        assert not r.ok
        assert r.reason.startswith("unknown asset 'platinum'")

        assert {a: c.balances(a.public) for a in (alice, bob)} == balances
        assert balances[alice] == {GOLD: FUNDS, SILVER: FUNDS}
        # Well-signed transfers that fail still consume their nonce (see ledger.py).
        assert (c.nonce(alice.public), c.nonce(bob.public)) == (1, 1)
        assert c.receipt(skipped.tx_id).reason.startswith("bad nonce")
