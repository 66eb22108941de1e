"""The reference rollup: a token ledger, a pure and deterministic StateMachine.

Accounts are raw Ed25519 public keys; the assets and genesis balances come from the
genesis Rollup. Choices a reader should know:

- **Nonces.** A transfer must carry exactly the sender's current nonce. A transfer that
  is malformed, badly signed, meant for another rollup, or carries the wrong nonce
  changes nothing at all. One that is well signed with the right nonce but fails on the
  state (unknown asset, insufficient balance) still *consumes the nonce*: the sender
  authorised it at that position, and this stops it from succeeding later when funds
  arrive (as in Ethereum).
- **No overflow, by construction.** The genesis supply of each asset must be at most
  MAX_AMOUNT, and execution only moves funds, so no balance can ever exceed it: neither
  a transfer nor a swap payout (which cannot be refused) can overflow.
- **Escrow.** Escrowed funds leave the payer's balance at once, so nothing else can spend
  them; they come back only as a payout (COMMIT) or a refund (ABORT).
- **Votes.** The ledger signs its own votes when given the rollup's key (`signer`):
  Ed25519 is deterministic, so the core stays a pure function of the log. Without a
  signer (replicas, `tandem verify`) it executes identically and its outbox stays empty.
- **State root.** Two slot trees (stateroot.SlotTree): one leaf per account (nonce and
  every balance), one per pending escrow. Account slots are numbered by genesis order
  (sorted keys) then first appearance in the log, so every replica numbers them alike.
"""

from __future__ import annotations

import hashlib
import struct
from array import array

from rollup_client.ledger.escrow import Escrow
from rollup_client.ledger.snapshot import LedgerState, decode_state, encode_state
from rollup_client.protocol import codec, merkle, swap, tx
from rollup_client.protocol.block import LogEntry
from rollup_client.protocol.errors import FailedPrecondition, InvalidArgument, TandemError
from rollup_client.protocol.genesis import SWAP_NAMESPACE, Genesis
from rollup_client.protocol.keys import SigningKey
from rollup_client.protocol.statemachine import Outgoing, Receipt
from rollup_client.protocol.stateroot import EMPTY_LEAF, SlotTree

MAX_AMOUNT = tx.MAX_AMOUNT
_ROOT_TAG = b"tandem.v1.ledger-root\x00"
_ACCOUNT_TAG = b"tandem.v1.account\x00"
_SIGNED_CACHE = 1 << 16
"""Entry ids whose signature `check` verified, kept until executed (oldest dropped)."""


class TokenLedger:
    """Balances, nonces and escrows of one rollup, driven block by block from the log."""

    def __init__(self, genesis: Genesis, rollup_id: str, signer: SigningKey | None = None) -> None:
        rollup = genesis.rollup(rollup_id)
        if signer is not None and signer.public != rollup.key:
            raise InvalidArgument(f"signer is not the genesis key of rollup {rollup_id!r}")
        self.rollup_id = rollup_id
        self._signer = signer
        self._tracker = swap.SwapTracker(genesis, rollup_id)
        self._escrows: dict[bytes, Escrow] = {}
        self._escrow_tree = SlotTree()
        self._refused: set[bytes] = set()
        self._outbox: list[Outgoing] = []
        self._signed: dict[bytes, None] = {}
        extra = sorted({a for b in rollup.balances.values() for a in b} - set(rollup.assets))
        self.assets: tuple[str, ...] = tuple(rollup.assets) + tuple(extra)
        for a in self.assets:
            tx.check_asset(a)
        self._asset_ix = {a: i for i, a in enumerate(self.assets)}
        self._height = -1
        self._time_ms = genesis.time_ms
        self._slot: dict[bytes, int] = {}
        self._keys: list[bytes] = []
        self._nonce = array("Q")
        self._bal = [array("q") for _ in self.assets]
        self._tree = SlotTree()
        self._touched: set[int] = set()
        supply = [0] * len(self.assets)
        for account in sorted(rollup.balances):
            if len(account) != 32:
                raise InvalidArgument(f"genesis account {account.hex()} is not 32 bytes")
            slot = self._new_account(account)
            for asset, amount in rollup.balances[account].items():
                if not 0 <= amount <= MAX_AMOUNT:
                    raise InvalidArgument(f"genesis balance {amount} of {asset} out of range")
                i = self._asset_ix[asset]
                self._bal[i][slot] = amount
                supply[i] += amount
        for asset, total in zip(self.assets, supply, strict=True):
            if total > MAX_AMOUNT:
                raise InvalidArgument(
                    f"genesis supply of {asset} on {rollup_id} is {total}, above {MAX_AMOUNT}"
                )
        self._tree.extend([self._account_leaf(s) for s in range(len(self._keys))])
        self._touched.clear()

    # -- queries ---------------------------------------------------------------------------

    @property
    def height(self) -> int:
        return self._height

    @property
    def time_ms(self) -> int:
        """Log time of the last block begun."""
        return self._time_ms

    def namespaces(self) -> tuple[str, ...]:
        return (self.rollup_id, SWAP_NAMESPACE)

    def balance(self, account: bytes, asset: str) -> int:
        """Spendable balance (escrowed funds excluded); unknown accounts hold 0."""
        slot = self._slot.get(account)
        i = self._asset_ix.get(asset)
        if i is None:
            raise InvalidArgument(f"unknown asset {asset!r}: this rollup has {self._names()}")
        return 0 if slot is None else self._bal[i][slot]

    def nonce(self, account: bytes) -> int:
        """The nonce the account's next transfer must carry."""
        slot = self._slot.get(account)
        return 0 if slot is None else self._nonce[slot]

    def supply(self, asset: str) -> int:
        """Total of `asset` on this rollup: balances plus escrow (constant by design)."""
        held = sum(
            leg.amount for e in self._escrows.values() for leg in e.legs if leg.asset == asset
        )
        return sum(self._bal[self._asset_ix[asset]]) + held

    def escrow(self, swap_id: bytes) -> tuple[swap.Leg, ...]:
        """The legs `swap_id` holds in escrow here (empty once settled or if refused)."""
        e = self._escrows.get(swap_id)
        return () if e is None else e.legs

    @property
    def tracker(self) -> swap.SwapTracker:
        """The swap rules as this ledger applied them, to its own swaps (read-only)."""
        return self._tracker

    def accounts(self) -> int:
        return len(self._keys)

    def check(self, data: bytes) -> None:
        """Submission-time check: well-formed, signed, for this rollup, nonce not yet used."""
        self.check_stateless(data)
        self.check_state(data)

    def check_stateless(self, data: bytes) -> None:
        """Well-formed, signed and for this rollup; reads no ledger state (thread-safe)."""
        stx = tx.parse(data)
        if stx.tx.rollup != self.rollup_id:
            raise InvalidArgument(
                f"transfer is for rollup {stx.tx.rollup!r}, this is {self.rollup_id!r}"
            )

    def check_state(self, data: bytes) -> None:
        """Nonce not yet used, for bytes that passed `check_stateless`.

        A nonce above the current one is accepted (it may follow transfers in flight).
        The signature `check_stateless` verified is remembered by entry id (bounded), so
        executing the same bytes later does not verify it again: Ed25519 verification is
        the cost of a transfer, and the result for the same bytes is the same.
        """
        stx = tx.decode(data)
        current = self.nonce(stx.tx.sender)
        if stx.tx.nonce < current:
            raise FailedPrecondition(f"bad nonce: {stx.tx.nonce} already used, next is {current}")
        self._signed[codec.entry_id(self.rollup_id, data)] = None
        if len(self._signed) > _SIGNED_CACHE:
            del self._signed[next(iter(self._signed))]

    # -- execution -------------------------------------------------------------------------

    def begin_block(self, height: int, time_ms: int) -> list[Receipt]:
        if height != self._height + 1:
            raise FailedPrecondition(f"block {height} out of order: expected {self._height + 1}")
        self._height, self._time_ms = height, time_ms
        out = []
        for d in self._tracker.begin_block(height, time_ms):
            r = self._settle(d, d.swap_id)
            if r is not None:
                out.append(r)
        return out

    def apply(self, entry: LogEntry) -> Receipt | None:
        """Execute a transfer, or a `swap` entry; one entry has at most one effect here."""
        if entry.height != self._height:
            raise FailedPrecondition(f"entry of block {entry.height} applied in {self._height}")
        if entry.namespace == self.rollup_id:
            return self._transfer(entry)
        if entry.namespace != SWAP_NAMESPACE:
            return None
        receipt = None
        for ev in self._tracker.apply(entry):
            if isinstance(ev, swap.IntentOrdered):
                receipt = self._prepare(ev.intent, entry) or receipt
            else:
                receipt = self._settle(ev, entry.id) or receipt
        return receipt

    def _prepare(self, intent: swap.Intent, entry: LogEntry) -> Receipt | None:
        """Escrow every leg on this rollup at once, or none; then vote."""
        legs = intent.legs_on(self.rollup_id)
        if not legs:
            return None
        sid = intent.swap_id
        reason = self._check_legs(legs)
        if reason:
            self._refused.add(sid)
        else:
            for leg in legs:
                src = self._account(leg.payer)
                self._bal[self._asset_ix[leg.asset]][src] -= leg.amount
            slot = self._escrow_tree.add(EMPTY_LEAF)
            e = self._escrows[sid] = Escrow(sid, legs, slot)
            self._escrow_tree.set(slot, e.leaf())
        peers = tuple(r for r in intent.rollups() if r != self.rollup_id)
        self._outbox.extend(Outgoing(n, d, peers) for n, d in self._vote(sid, not reason))
        kind = "refuse" if reason else "escrow"
        return Receipt(entry.id, entry.height, entry.index, not reason, reason, kind, sid)

    def _check_legs(self, legs: tuple[swap.Leg, ...]) -> str:
        """Why these legs cannot all be escrowed now, or "" when they can."""
        need: dict[tuple[bytes, str], int] = {}
        for n, leg in enumerate(legs):
            if leg.asset not in self._asset_ix:
                return f"leg {n}: unknown asset {leg.asset!r}: this rollup has {self._names()}"
            k = (leg.payer, leg.asset)
            need[k] = need.get(k, 0) + leg.amount
        for (payer, asset), amount in need.items():
            has = self.balance(payer, asset)
            if has < amount:
                return f"insufficient balance: {payer.hex()[:16]} has {has} {asset}, needs {amount}"
        return ""

    def _settle(self, d: swap.Decided, entry_id: bytes) -> Receipt | None:
        """Pay out (COMMIT) or refund (ABORT) what `d.swap_id` holds here."""
        sid = d.swap_id
        kind = "commit" if d.outcome is swap.Outcome.COMMIT else "abort"
        if sid in self._refused:
            self._refused.discard(sid)
            return Receipt(entry_id, d.height, d.index, True, "nothing escrowed", kind, sid)
        e = self._escrows.pop(sid, None)
        if e is None:
            return None
        for leg in e.legs:
            to = leg.payee if d.outcome is swap.Outcome.COMMIT else leg.payer
            self._bal[self._asset_ix[leg.asset]][self._account(to)] += leg.amount
        self._escrow_tree.free(e.slot)
        return Receipt(entry_id, d.height, d.index, True, "", kind, sid)

    def _vote(self, sid: bytes, yes: bool) -> list[tuple[str, bytes]]:
        if self._signer is None:
            return []
        data = swap.encode_vote(swap.sign_vote(self._signer, sid, self.rollup_id, yes))
        self._tracker.vouch(data)  # signed here with this rollup's genesis key
        return [(SWAP_NAMESPACE, data)]

    def take_outbox(self) -> list[Outgoing]:
        out, self._outbox = self._outbox, []
        return out

    def owed_votes(self) -> list[tuple[str, bytes]]:
        """Votes for undecided swaps held or refused here that the log does not show yet."""
        out = []
        held = [(s, True) for s in self._escrows] + [(s, False) for s in sorted(self._refused)]
        for sid, yes in held:
            rec = self._tracker.get(sid)
            if rec is not None and self.rollup_id not in rec.votes:
                out.extend(self._vote(sid, yes))
        return out

    def _transfer(self, entry: LogEntry) -> Receipt:
        def fail(reason: str) -> Receipt:
            return Receipt(entry.id, entry.height, entry.index, False, reason, "transfer")

        eid = codec.entry_id(self.rollup_id, entry.data)
        verified = eid in self._signed
        self._signed.pop(eid, None)
        try:
            stx = tx.decode(entry.data)
            tx.check(stx, signature=not verified)
        except TandemError as exc:
            return fail(str(exc))
        t = stx.tx
        if t.rollup != self.rollup_id:
            return fail(f"wrong rollup: transfer is for {t.rollup!r}, this is {self.rollup_id!r}")
        expected = self.nonce(t.sender)
        if t.nonce != expected:
            return fail(f"bad nonce: expected {expected}, got {t.nonce}")
        src = self._account(t.sender)
        self._nonce[src] = expected + 1
        i = self._asset_ix.get(t.asset)
        if i is None:
            return fail(f"unknown asset {t.asset!r}: this rollup has {self._names()}")
        has = self._bal[i][src]
        if has < t.amount:
            return fail(f"insufficient balance: has {has}, needs {t.amount}")
        self._bal[i][src] = has - t.amount
        dst = self._account(t.to)
        self._bal[i][dst] += t.amount
        self._touched.add(dst)
        return Receipt(entry.id, entry.height, entry.index, True, "", "transfer")

    # -- state root ------------------------------------------------------------------------

    def state_root(self) -> bytes:
        for slot in self._touched:
            self._tree.set(slot, self._account_leaf(slot))
        self._touched.clear()
        return hashlib.sha256(_ROOT_TAG + self._tree.root() + self._escrow_tree.root()).digest()

    @property
    def hashes(self) -> int:
        """Inner tree nodes hashed so far: the root's cost, independent of untouched keys."""
        return self._tree.hashes + self._escrow_tree.hashes

    # -- snapshot --------------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """Canonical bytes of the whole state, its root and a checksum (see snapshot.py)."""
        root = self.state_root()
        by_slot = {e.slot: e for e in self._escrows.values()}
        return encode_state(
            LedgerState(
                self.rollup_id,
                self._height,
                self._time_ms,
                self.assets,
                self._keys,
                self._nonce,
                self._bal,
                [by_slot.get(i) for i in range(len(self._escrow_tree))],
                self._refused,
                self._tracker.to_bytes(),
                root,
            )
        )

    def restore(self, data: bytes) -> None:
        """Replace the state with a snapshot of this rollup; InvalidArgument if corrupt."""
        state = decode_state(data)
        fresh = object.__new__(TokenLedger)
        fresh.__dict__.update(self.__dict__)
        try:
            fresh._load(state)
        except (IndexError, UnicodeDecodeError, ValueError) as exc:
            raise InvalidArgument(f"corrupt ledger snapshot: {exc}") from exc
        if fresh.state_root() != state.root:
            raise InvalidArgument("corrupt ledger snapshot: state root does not match")
        self.__dict__.update(fresh.__dict__)

    def _load(self, s: LedgerState) -> None:
        """Fill this (fresh) ledger from a decoded snapshot of it."""
        if s.rollup_id != self.rollup_id:
            raise ValueError(f"snapshot of rollup {s.rollup_id!r}, not {self.rollup_id!r}")
        if s.assets != self.assets:
            raise ValueError(f"snapshot assets {s.assets} differ from genesis {self.assets}")
        self._height, self._time_ms = s.height, s.time_ms
        self._keys, self._nonce, self._bal = s.keys, s.nonces, s.balances
        self._slot = {k: i for i, k in enumerate(self._keys)}
        self._tree, self._touched = SlotTree(), set()
        self._tree.extend([self._account_leaf(i) for i in range(len(self._keys))])
        self._escrows = {e.swap_id: e for e in s.escrows if e is not None}
        self._escrow_tree = SlotTree()
        self._escrow_tree.extend([EMPTY_LEAF if e is None else e.leaf() for e in s.escrows])
        self._refused = set(s.refused)
        genesis = self._tracker.genesis
        self._tracker = swap.SwapTracker.from_bytes(s.tracker, genesis, self.rollup_id)
        self._outbox = []

    # -- helpers ---------------------------------------------------------------------------

    def _names(self) -> str:
        return ", ".join(self.assets) or "no assets"

    def _new_account(self, account: bytes) -> int:
        slot = len(self._keys)
        self._slot[account] = slot
        self._keys.append(account)
        self._nonce.append(0)
        for b in self._bal:
            b.append(0)
        return slot

    def _account(self, account: bytes) -> int:
        """The slot of `account`, created empty on first use; marked touched for the root."""
        slot = self._slot.get(account)
        if slot is None:
            slot = self._new_account(account)
            self._tree.add(self._account_leaf(slot))
        self._touched.add(slot)
        return slot

    def _account_leaf(self, slot: int) -> bytes:
        packed = struct.pack(
            f">Q{len(self._bal)}q", self._nonce[slot], *(b[slot] for b in self._bal)
        )
        return merkle.leaf_hash(_ACCOUNT_TAG + self._keys[slot] + packed)
