"""Verification: honest attestations match; a node posting a wrong root is caught there."""

from __future__ import annotations

import contextlib
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rollup_client.ledger import TokenLedger
from rollup_client.node import Verifier, verify_blocks
from rollup_client.protocol import attestation, tx
from rollup_client.protocol.attestation import Attestation
from rollup_client.protocol.errors import InvalidArgument, VerificationError
from rollup_client.protocol.genesis import SETTLEMENT_NAMESPACE, Genesis

from .helpers import Chain, key, make_genesis, rollup_key

RID = "alpha"
USERS = [key(i) for i in range(1, 5)]
GENESIS = make_genesis(
    {RID: {u.public: {"USD": 1_000} for u in USERS}, "beta": {USERS[0].public: {"USD": 1}}},
    ["USD"],
)


class LyingLedger(TokenLedger):
    """Test-only execution environment that reports a wrong root from `lie_from` on."""

    def __init__(self, genesis: Genesis, rollup_id: str, lie_from: int) -> None:
        super().__init__(genesis, rollup_id)
        self.lie_from = lie_from

    def state_root(self) -> bytes:
        root = super().state_root()
        if self.height >= self.lie_from:
            return hashlib.sha256(b"lie" + root).digest()
        return root


def run_node(ledger: TokenLedger, blocks: int, every: int = 3) -> Chain:
    """A node loop in memory: execute each block, attest every `every` heights in the next."""
    chain, nonces = Chain(), [0] * len(USERS)
    pending: list[tuple[str, bytes]] = []
    for h in range(blocks):
        entries = list(pending)
        pending = []
        for j in range(h % 3):
            s = (h + j) % len(USERS)
            t = tx.Transfer(
                USERS[s].public, USERS[(s + 1) % 4].public, "USD", 1 + h, nonces[s], RID
            )
            nonces[s] += 1
            entries.append((RID, t.sign(USERS[s]).encode()))
        b = chain.seal(1_000 + 10 * h, entries)
        ledger.begin_block(h, b.time_ms)
        for e in b.entries:
            if e.namespace == RID:
                r = ledger.apply(e)
                assert r is not None, r
                assert r.ok, r
        root = ledger.state_root()
        if h % every == 0:
            a = Attestation.make(RID, h, root, rollup_key(RID))
            pending.append((SETTLEMENT_NAMESPACE, a.encode()))
    return chain


def test_honest_node_verifies() -> None:
    node = TokenLedger(GENESIS, RID)
    chain = run_node(node, 14)
    report = verify_blocks(GENESIS, RID, TokenLedger, chain.blocks)
    assert report.ok
    assert report.first_divergent_height is None
    assert report.checked == report.matched == 5  # heights 0, 3, 6, 9, 12 (ordered by 13)
    assert report.head == 13
    assert report.state_root == node.state_root().hex()
    assert report.to_json()["ok"] is True


def test_wrong_root_is_caught_at_that_attestation() -> None:
    chain = run_node(LyingLedger(GENESIS, RID, lie_from=7), 14)
    report = verify_blocks(GENESIS, RID, TokenLedger, chain.blocks)
    assert not report.ok
    assert report.first_divergent_height == 9
    assert [d.height for d in report.divergences] == [9, 12]
    assert report.matched == 3
    d = report.divergences[0]
    assert d.at_height == 10
    assert d.reason == "state root differs from re-execution"
    assert d.attested != d.computed


def test_junk_in_settlement_is_ignored_and_future_claims_diverge() -> None:
    chain = Chain()
    real = TokenLedger(GENESIS, RID)
    real.begin_block(0, 1_000)
    forged = Attestation.make(RID, 0, real.state_root(), key(99))
    other = Attestation.make("beta", 0, b"\x00" * 32, rollup_key("beta"))
    future = Attestation.make(RID, 5, b"\x11" * 32, rollup_key(RID))
    chain.seal(1_000, [])
    chain.seal(
        1_010,
        [
            (SETTLEMENT_NAMESPACE, b"\x07junk"),
            (SETTLEMENT_NAMESPACE, forged.encode()),
            (SETTLEMENT_NAMESPACE, other.encode()),
            (SETTLEMENT_NAMESPACE, future.encode()),
        ],
    )
    v = Verifier(GENESIS, RID, TokenLedger)
    assert {RID, SETTLEMENT_NAMESPACE} <= set(v.namespaces())
    for b in chain.blocks:
        v.feed(b)
    assert len(v.report.ignored) == 2
    assert v.report.checked == 1
    (d,) = v.report.divergences
    assert d.height == 5
    assert "before it was executed" in d.reason


@given(st.binary(max_size=150))
def test_attestation_decode_raises_only_invalid_argument(data: bytes) -> None:
    with contextlib.suppress(InvalidArgument):
        attestation.decode(data)


def test_attestation_round_trip() -> None:
    a = Attestation.make(RID, 42, b"\x05" * 32, rollup_key(RID))
    assert attestation.decode(a.encode()) == a
    assert a.verify(rollup_key(RID).public)
    assert not a.verify(key(1).public)


def test_a_broken_hash_link_is_refused() -> None:
    chain = Chain()
    chain.seal(1_000, [])
    other = Chain()
    other.seal(999, [])
    other.seal(1_010, [])
    v = Verifier(GENESIS, RID, TokenLedger)
    v.feed(chain.blocks[0])
    with pytest.raises(VerificationError, match="link to block 0 is broken"):
        v.feed(other.blocks[1])
