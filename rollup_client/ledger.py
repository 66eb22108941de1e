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
- **State root.** Two slot trees (stateroot.SlotTree): one leaf per account (nonce and
  every balance), one per pending escrow. Account slots are numbered by genesis order
  (sorted keys) then first appearance in the log, so every replica numbers them alike.
"""

from __future__ import annotations

import hashlib
import struct
from array import array

from rollup_client import merkle, tx
from rollup_client.block import LogEntry
from rollup_client.errors import FailedPrecondition, InvalidArgument, TandemError
from rollup_client.genesis import Genesis
from rollup_client.statemachine import Receipt
from rollup_client.stateroot import SlotTree

MAX_AMOUNT = tx.MAX_AMOUNT
_ROOT_TAG = b"tandem.v1.ledger-root\x00"
_ACCOUNT_TAG = b"tandem.v1.account\x00"
_SNAP_TAG = b"tandem.v1.ledger-snapshot\x00"


class TokenLedger:
    """Balances, nonces and escrows of one rollup, driven block by block from the log."""

    def __init__(self, genesis: Genesis, rollup_id: str) -> None:
        rollup = genesis.rollup(rollup_id)
        self.rollup_id = rollup_id
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
        return (self.rollup_id,)

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
        return sum(self._bal[self._asset_ix[asset]])

    def accounts(self) -> int:
        return len(self._keys)

    def check(self, data: bytes) -> None:
        """Submission-time check: well-formed, signed, for this rollup, nonce not yet used.

        A nonce above the current one is accepted (it may follow transfers in flight).
        """
        stx = tx.parse(data)
        if stx.tx.rollup != self.rollup_id:
            raise InvalidArgument(
                f"transfer is for rollup {stx.tx.rollup!r}, this is {self.rollup_id!r}"
            )
        current = self.nonce(stx.tx.sender)
        if stx.tx.nonce < current:
            raise FailedPrecondition(f"bad nonce: {stx.tx.nonce} already used, next is {current}")

    # -- execution -------------------------------------------------------------------------

    def begin_block(self, height: int, time_ms: int) -> list[Receipt]:
        if height != self._height + 1:
            raise FailedPrecondition(f"block {height} out of order: expected {self._height + 1}")
        self._height, self._time_ms = height, time_ms
        return []

    def apply(self, entry: LogEntry) -> Receipt | None:
        if entry.height != self._height:
            raise FailedPrecondition(f"entry of block {entry.height} applied in {self._height}")
        if entry.namespace == self.rollup_id:
            return self._transfer(entry)
        return None

    def _transfer(self, entry: LogEntry) -> Receipt:
        def fail(reason: str) -> Receipt:
            return Receipt(entry.id, entry.height, entry.index, False, reason, "transfer")

        try:
            stx = tx.parse(entry.data)
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
        return hashlib.sha256(_ROOT_TAG + self._tree.root()).digest()

    @property
    def hashes(self) -> int:
        """Inner tree nodes hashed so far: the root's cost, independent of untouched keys."""
        return self._tree.hashes

    # -- snapshot --------------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """Canonical bytes of the whole state, then its root and a checksum of it all."""
        root = self.state_root()
        rid = self.rollup_id.encode()
        out = [
            _SNAP_TAG,
            struct.pack(">H", len(rid)) + rid,
            struct.pack(">qQH", self._height, self._time_ms, len(self.assets)),
            b"".join(struct.pack(">B", len(a)) + a.encode() for a in self.assets),
            struct.pack(">Q", len(self._keys)),
        ]
        rec = struct.Struct(f">32sQ{len(self._bal)}q")
        out.append(
            b"".join(
                rec.pack(k, self._nonce[s], *(b[s] for b in self._bal))
                for s, k in enumerate(self._keys)
            )
        )
        out.append(root)
        body = b"".join(out)
        return body + hashlib.sha256(body).digest()

    def restore(self, data: bytes) -> None:
        """Replace the state with a snapshot of this rollup; InvalidArgument if corrupt."""
        body = data[:-32]
        if len(data) < 64 or hashlib.sha256(body).digest() != data[-32:]:
            raise InvalidArgument("corrupt ledger snapshot: checksum does not match")
        try:
            fresh = self._decode_snapshot(body)
        except (struct.error, IndexError, UnicodeDecodeError, ValueError) as exc:
            raise InvalidArgument(f"corrupt ledger snapshot: {exc}") from exc
        if fresh.state_root() != body[-32:]:
            raise InvalidArgument("corrupt ledger snapshot: state root does not match")
        self.__dict__.update(fresh.__dict__)

    def _decode_snapshot(self, data: bytes) -> TokenLedger:
        if not data.startswith(_SNAP_TAG):
            raise ValueError("not a ledger snapshot")
        pos = len(_SNAP_TAG)
        (rlen,) = struct.unpack_from(">H", data, pos)
        rid = data[pos + 2 : pos + 2 + rlen].decode()
        pos += 2 + rlen
        if rid != self.rollup_id:
            raise ValueError(f"snapshot of rollup {rid!r}, not {self.rollup_id!r}")
        height, time_ms, nassets = struct.unpack_from(">qQH", data, pos)
        pos += struct.calcsize(">qQH")
        assets = []
        for _ in range(nassets):
            alen = data[pos]
            assets.append(data[pos + 1 : pos + 1 + alen].decode())
            pos += 1 + alen
        if tuple(assets) != self.assets:
            raise ValueError(f"snapshot assets {assets} differ from genesis {self.assets}")
        (naccounts,) = struct.unpack_from(">Q", data, pos)
        pos += 8
        rec = struct.Struct(f">32sQ{nassets}q")
        end = pos + naccounts * rec.size
        if end + 32 != len(data):
            raise ValueError(f"{len(data)} bytes, expected {end + 32}")
        fresh = object.__new__(TokenLedger)
        fresh.__dict__.update(self.__dict__)
        fresh._height, fresh._time_ms = height, time_ms
        fresh._keys = []
        fresh._nonce = array("Q")
        fresh._bal = [array("q") for _ in assets]
        for k, nonce, *bals in rec.iter_unpack(data[pos:end]):
            fresh._keys.append(k)
            fresh._nonce.append(nonce)
            for b, v in zip(fresh._bal, bals, strict=True):
                b.append(v)
        fresh._slot = {k: s for s, k in enumerate(fresh._keys)}
        if len(fresh._slot) != naccounts or any(v < 0 for b in fresh._bal for v in b):
            raise ValueError("duplicate account or negative balance")
        fresh._tree = SlotTree()
        fresh._tree.extend([fresh._account_leaf(s) for s in range(naccounts)])
        fresh._touched = set()
        return fresh

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
