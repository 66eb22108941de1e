"""User transfers on the token ledger: success, every failure, determinism, snapshots."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollup_client.ledger import MAX_AMOUNT, TokenLedger
from rollup_client.protocol import tx
from rollup_client.protocol.errors import FailedPrecondition, InvalidArgument, Unauthenticated
from rollup_client.protocol.keys import SigningKey
from rollup_client.protocol.statemachine import Receipt

from .helpers import entry, key, make_genesis

RID = "alpha"
ALICE, BOB, CAROL = key(1), key(2), key(3)
GENESIS = make_genesis(
    {RID: {ALICE.public: {"USD": 100, "EUR": 5}, BOB.public: {"USD": 10}}}, ["USD", "EUR"]
)


def transfer(
    sender: SigningKey = ALICE,
    to: SigningKey = BOB,
    asset: str = "USD",
    amount: int = 7,
    nonce: int = 0,
    rollup: str = RID,
) -> bytes:
    return tx.Transfer(sender.public, to.public, asset, amount, nonce, rollup).sign(sender).encode()


def run(ledger: TokenLedger, *txs: bytes, time_ms: int = 2_000) -> list[Receipt | None]:
    """Apply `txs` as one block; return their receipts."""
    ledger.begin_block(ledger.height + 1, time_ms)
    return [ledger.apply(entry(RID, d, ledger.height, i)) for i, d in enumerate(txs)]


def test_transfer_moves_funds_and_bumps_nonce() -> None:
    ledger = TokenLedger(GENESIS, RID)
    (r,) = run(ledger, transfer(amount=7))
    assert r is not None
    assert r.ok
    assert r.reason == ""
    assert r.kind == "transfer"
    assert (r.height, r.index) == (0, 0)
    assert ledger.balance(ALICE.public, "USD") == 93
    assert ledger.balance(BOB.public, "USD") == 17
    assert ledger.nonce(ALICE.public) == 1
    run(ledger, transfer(to=CAROL, asset="EUR", amount=5, nonce=1))
    assert ledger.balance(CAROL.public, "EUR") == 5
    assert ledger.accounts() == 3
    assert ledger.supply("USD") == 110
    assert ledger.supply("EUR") == 5


def nonce_only(ledger: TokenLedger) -> bytes:
    """Root of `ledger` after Alice's nonce alone advances (a self-transfer moves nothing)."""
    twin = TokenLedger(GENESIS, RID)
    twin.restore(ledger.snapshot())
    run(twin, transfer(to=ALICE, amount=1, nonce=ledger.nonce(ALICE.public)))
    return twin.state_root()


BAD = [
    ("bad signature", transfer()[:-1] + b"\x00", "signature does not verify", False),
    ("malformed", b"\x01garbage", "malformed transaction", False),
    ("empty", b"", "malformed transaction", False),
    ("other rollup", transfer(rollup="beta"), "wrong rollup", False),
    ("skipped nonce", transfer(nonce=1), "bad nonce: expected 0, got 1", False),
    ("amount zero", transfer(amount=0), "amount 0 out of range", False),
    ("overflow", transfer(amount=MAX_AMOUNT + 1), "out of range", False),
    ("overdraft", transfer(amount=101), "insufficient balance: has 100, needs 101", True),
    ("unknown asset", transfer(asset="BTC"), "unknown asset 'BTC'", True),
]


@pytest.mark.parametrize(("name", "data", "reason", "consumes_nonce"), BAD, ids=[b[0] for b in BAD])
def test_bad_transfer_fails_with_exact_reason_and_changes_nothing_else(
    name: str, data: bytes, reason: str, consumes_nonce: bool
) -> None:
    ledger = TokenLedger(GENESIS, RID)
    ledger.begin_block(0, 1_500)
    before = ledger.state_root()
    expected = nonce_only(ledger) if consumes_nonce else before
    r = ledger.apply(entry(RID, data, 0, 0))
    assert r is not None
    assert not r.ok, r.reason
    assert reason in r.reason, r.reason
    assert ledger.state_root() == expected
    assert ledger.nonce(ALICE.public) == (1 if consumes_nonce else 0)
    assert ledger.balance(ALICE.public, "USD") == 100
    assert ledger.supply("USD") == 110


def test_reused_nonce_fails() -> None:
    ledger = TokenLedger(GENESIS, RID)
    first = transfer(amount=1)
    (ok, again) = run(ledger, first, first)
    assert ok is not None
    assert again is not None
    assert ok.ok
    assert not again.ok
    assert again.reason == "bad nonce: expected 1, got 0"
    assert ledger.balance(ALICE.public, "USD") == 99


def test_submission_check_raises_the_right_error() -> None:
    ledger = TokenLedger(GENESIS, RID)
    ledger.check(transfer())
    ledger.check(transfer(nonce=3))  # may follow transfers still in flight
    run(ledger, transfer())
    with pytest.raises(FailedPrecondition, match="already used"):
        ledger.check(transfer())
    with pytest.raises(Unauthenticated):
        ledger.check(transfer(nonce=1)[:-1] + b"\x01")
    with pytest.raises(InvalidArgument, match="malformed"):
        ledger.check(b"\x02")
    with pytest.raises(InvalidArgument, match="is for rollup 'beta'"):
        ledger.check(transfer(nonce=1, rollup="beta"))


def test_genesis_supply_above_max_is_refused_so_no_balance_can_overflow() -> None:
    g = make_genesis({RID: {ALICE.public: {"USD": MAX_AMOUNT}, BOB.public: {"USD": 1}}}, ["USD"])
    with pytest.raises(InvalidArgument, match="genesis supply of USD"):
        TokenLedger(g, RID)
    g = make_genesis(
        {RID: {ALICE.public: {"USD": MAX_AMOUNT - 1}, BOB.public: {"USD": 1}}}, ["USD"]
    )
    ledger = TokenLedger(g, RID)
    (r,) = run(ledger, transfer(sender=BOB, to=ALICE, amount=1))
    assert r is not None
    assert r.ok
    assert ledger.balance(ALICE.public, "USD") == MAX_AMOUNT


@given(st.binary(max_size=200))
def test_decode_raises_only_invalid_argument(data: bytes) -> None:
    with contextlib.suppress(InvalidArgument, Unauthenticated):
        tx.parse(data)


@given(st.one_of(st.binary(max_size=200), st.builds(lambda b: b"\x01" + b, st.binary())))
def test_random_entry_bytes_fail_cleanly_and_change_nothing(data: bytes) -> None:
    ledger = TokenLedger(GENESIS, RID)
    ledger.begin_block(0, 1_500)
    before = ledger.snapshot()
    r = ledger.apply(entry(RID, data, 0, 0))
    assert r is not None
    assert not r.ok
    assert r.reason
    assert ledger.snapshot() == before


@given(st.data())
def test_any_single_byte_change_is_rejected(data: st.DataObject) -> None:
    good = transfer()
    i = data.draw(st.integers(0, len(good) - 1))
    b = data.draw(st.integers(0, 255).filter(lambda v: v != good[i]))
    with pytest.raises((InvalidArgument, Unauthenticated)):
        tx.parse(good[:i] + bytes([b]) + good[i + 1 :])


USERS = [ALICE, BOB, CAROL, key(4)]
Draw = tuple[int, int, str, int, int, bool]
tx_streams = st.lists(
    st.tuples(
        st.integers(0, 3),  # sender
        st.integers(0, 3),  # recipient
        st.sampled_from(["USD", "EUR", "BTC"]),
        st.integers(1, 60),
        st.integers(-1, 1),  # nonce offset: mostly right, sometimes reused or skipped
        st.booleans(),  # forged signature
    ),
    max_size=40,
)


def materialise(stream: list[Draw]) -> list[list[bytes]]:
    """Turn a drawn stream into signed transactions cut into blocks of up to 5."""
    nonces = [0] * len(USERS)
    out: list[bytes] = []
    for s, r, asset, amount, off, forged in stream:
        n = max(0, nonces[s] + off)
        data = transfer(USERS[s], USERS[r], asset, amount, n)
        if forged:
            data = data[:-64] + bytes(64)
        elif off == 0:
            nonces[s] += 1
        out.append(data)
    return [out[i : i + 5] for i in range(0, len(out), 5)]


@settings(max_examples=150, deadline=None)
@given(tx_streams, st.integers(0, 8))
def test_replicas_agree_and_snapshot_replay_equals_genesis_replay(
    stream: list[Draw], cut: int
) -> None:
    a, b = TokenLedger(GENESIS, RID), TokenLedger(GENESIS, RID)
    blocks = materialise(stream)
    roots_a = []
    for blk in blocks:
        ra, rb = run(a, *blk), run(b, *blk)
        assert ra == rb
        roots_a.append(a.state_root())
        assert b.state_root() == roots_a[-1]
        assert a.supply("USD") == 110
        assert a.supply("EUR") == 5
    assert a.snapshot() == b.snapshot()
    # Restart a third replica from a snapshot taken after block `cut`, replay the tail.
    c = TokenLedger(GENESIS, RID)
    cut = min(cut, len(blocks))
    for blk in blocks[:cut]:
        run(c, *blk)
    snap = c.snapshot()
    d = TokenLedger(GENESIS, RID)
    d.restore(snap)
    assert d.snapshot() == snap
    assert d.height == c.height
    for blk in blocks[cut:]:
        run(d, *blk)
    assert d.state_root() == a.state_root()
    assert d.snapshot() == a.snapshot()


def test_corrupt_snapshot_is_refused() -> None:
    ledger = TokenLedger(GENESIS, RID)
    run(ledger, transfer())
    snap = ledger.snapshot()
    for bad in (snap[:-1], snap[:40] + b"\xff" + snap[41:], b"nope", snap + b"\x00"):
        with pytest.raises(InvalidArgument, match="corrupt ledger snapshot"):
            TokenLedger(GENESIS, RID).restore(bad)


def test_root_cost_is_independent_of_untouched_accounts() -> None:
    """Structure, not timing: one transfer re-hashes two tree paths, whatever the size."""
    costs = {}
    for n in (64, 4096):
        balances = {key(100 + i).public: {"USD": 1} for i in range(n)}
        balances[ALICE.public] = {"USD": 100}
        ledger = TokenLedger(make_genesis({RID: balances}, ["USD"]), RID)
        ledger.state_root()
        before = ledger.hashes
        run(ledger, transfer(to=key(100), amount=1))
        ledger.state_root()
        costs[n] = ledger.hashes - before
        depth = n.bit_length()  # n + 1 accounts: ceil(log2(n + 1)) levels
        assert costs[n] <= 2 * depth
    assert costs[4096] - costs[64] <= 2 * 6  # 64x the accounts: at most 6 more levels per path


def test_checked_transfers_execute_alike_without_a_second_signature_check() -> None:
    checked, unchecked = TokenLedger(GENESIS, RID), TokenLedger(GENESIS, RID)
    good, forged = transfer(amount=3), transfer(amount=4, nonce=1)[:-1] + b"\x00"
    checked.check(good)
    with pytest.raises(Unauthenticated):
        checked.check(forged)
    assert run(checked, good, forged) == run(unchecked, good, forged)
    assert checked.state_root() == unchecked.state_root()
    assert checked.balance(BOB.public, "USD") == 13


class Model:
    """The transfer rules restated plainly: dicts of balances and nonces."""

    def __init__(self) -> None:
        self.bal = {(u.public, a): 0 for u in USERS for a in ("USD", "EUR")}
        self.bal[ALICE.public, "USD"], self.bal[ALICE.public, "EUR"] = 100, 5
        self.bal[BOB.public, "USD"] = 10
        self.nonce = {u.public: 0 for u in USERS}

    def apply(self, s: int, r: int, asset: str, amount: int, n: int, forged: bool) -> str:
        src, dst = USERS[s].public, USERS[r].public
        if forged:
            return "signature"
        if n != self.nonce[src]:
            return f"bad nonce: expected {self.nonce[src]}, got {n}"
        self.nonce[src] += 1
        if asset not in ("USD", "EUR"):
            return f"unknown asset {asset!r}"
        if self.bal[src, asset] < amount:
            return f"insufficient balance: has {self.bal[src, asset]}, needs {amount}"
        self.bal[src, asset] -= amount
        self.bal[dst, asset] += amount
        return ""


@settings(max_examples=100, deadline=None)
@given(tx_streams)
def test_ledger_matches_a_reference_model(stream: list[Draw]) -> None:
    ledger, model = TokenLedger(GENESIS, RID), Model()
    nonces = [0] * len(USERS)
    for s, r, asset, amount, off, forged in stream:
        n = max(0, nonces[s] + off)
        data = transfer(USERS[s], USERS[r], asset, amount, n)
        if forged:
            data = data[:-64] + bytes(64)
        elif off == 0:
            nonces[s] += 1
        (got,) = run(ledger, data)
        expected = model.apply(s, r, asset, amount, n, forged)
        assert got is not None
        assert got.ok == (expected == "")
        assert expected in got.reason
    for (account, asset), amount in model.bal.items():
        assert ledger.balance(account, asset) == amount
    assert all(ledger.nonce(a) == n for a, n in model.nonce.items())
