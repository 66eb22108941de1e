"""Swap messages and their bytes: legs, intents, votes, how they are signed, checked and
encoded in the `swap` namespace (the rules that decide a swap are in `tracker`).

Entry bytes in the `swap` namespace:

    INTENT: 0x10 | intent fields | u8 n | (payer(32) | signature(64)) * n, payers sorted
    VOTE:   0x11 | swap_id(32) | u16 len | rollup | u8 yes | signature(64)

    intent fields: u8 legs | (u16 len | rollup | payer(32) | payee(32) | u8 len | asset
                   | u64 amount) * legs | u64 deadline_ms | u8 len | nonce

Every payer signs INTENT_TAG + intent fields; swap_id is SHA-256 of the same bytes. A
rollup signs VOTE_TAG + swap_id + u16 len | rollup + yes. Ed25519 is deterministic and
the encoding canonical, so a resubmitted intent or vote has the same entry id (dedup).
"""

from __future__ import annotations

import functools
import hashlib
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

from rollup_client.protocol import keys, tx
from rollup_client.protocol.errors import InvalidArgument, Unauthenticated
from rollup_client.protocol.genesis import Genesis

KIND_INTENT = 0x10
KIND_VOTE = 0x11
MAX_LEGS = 64
MAX_NONCE_BYTES = 32
MAX_DEADLINE_MS = 2**63 - 1

INTENT_TAG = b"tandem.v1.swap-intent\x00"
VOTE_TAG = b"tandem.v1.swap-vote\x00"


@dataclass(frozen=True, slots=True)
class Leg:
    """`payer` pays `amount` of `asset` to `payee` on `rollup` (raw Ed25519 public keys)."""

    rollup: str
    payer: bytes
    payee: bytes
    asset: str
    amount: int

    def _fields(self) -> bytes:
        r, a = self.rollup.encode(), self.asset.encode()
        return (
            struct.pack(">H", len(r))
            + r
            + self.payer
            + self.payee
            + struct.pack(">B", len(a))
            + a
            + struct.pack(">Q", self.amount)
        )


@dataclass(frozen=True)
class Intent:
    """The terms of a swap; its id is the hash of its canonical encoding.

    Immutable, so the encoding, id, payers and rollups are computed once, on first use:
    every process reads them many times per swap (checks, votes, views, settlement).
    """

    legs: tuple[Leg, ...]
    deadline_ms: int
    nonce: bytes

    def _fields(self) -> bytes:
        return self._encoded

    @functools.cached_property
    def _encoded(self) -> bytes:
        try:
            return (
                struct.pack(">B", len(self.legs))
                + b"".join(leg._fields() for leg in self.legs)
                + struct.pack(">QB", self.deadline_ms, len(self.nonce))
                + self.nonce
            )
        except struct.error as exc:
            raise InvalidArgument(f"intent field out of range: {exc}") from exc

    def signing_bytes(self) -> bytes:
        """What every payer signs: a domain tag and the whole intent."""
        return self._signing

    @functools.cached_property
    def _signing(self) -> bytes:
        return INTENT_TAG + self._encoded

    @functools.cached_property
    def swap_id(self) -> bytes:
        return hashlib.sha256(self._signing).digest()

    def payers(self) -> tuple[bytes, ...]:
        """Distinct payers, sorted: exactly the keys that must sign."""
        return self._payers

    @functools.cached_property
    def _payers(self) -> tuple[bytes, ...]:
        return tuple(sorted({leg.payer for leg in self.legs}))

    def rollups(self) -> tuple[str, ...]:
        """Distinct rollups with a leg, sorted: exactly the rollups that must vote."""
        return self._rollups

    @functools.cached_property
    def _rollups(self) -> tuple[str, ...]:
        return tuple(sorted({leg.rollup for leg in self.legs}))

    def legs_on(self, rollup: str) -> tuple[Leg, ...]:
        return tuple(leg for leg in self.legs if leg.rollup == rollup)


@dataclass(frozen=True)
class SignedIntent:
    """An intent with its payers' signatures (payer key -> signature)."""

    intent: Intent
    signatures: Mapping[bytes, bytes] = field(default_factory=dict)

    @property
    def swap_id(self) -> bytes:
        return self.intent.swap_id

    def missing(self) -> tuple[bytes, ...]:
        """Payers whose signature is absent."""
        return tuple(p for p in self.intent.payers() if p not in self.signatures)


@dataclass(frozen=True, slots=True)
class Vote:
    """A rollup's YES or NO for a swap, signed by that rollup's genesis key."""

    swap_id: bytes
    rollup: str
    yes: bool
    signature: bytes

    def signing_bytes(self) -> bytes:
        return vote_signing_bytes(self.swap_id, self.rollup, self.yes)


def vote_signing_bytes(swap_id: bytes, rollup: str, yes: bool) -> bytes:
    r = rollup.encode()
    return VOTE_TAG + swap_id + struct.pack(">H", len(r)) + r + (b"\x01" if yes else b"\x00")


def sign_vote(key: keys.SigningKey, swap_id: bytes, rollup: str, yes: bool) -> Vote:
    """The vote of `rollup` (whose genesis key is `key`)."""
    return Vote(swap_id, rollup, yes, key.sign(vote_signing_bytes(swap_id, rollup, yes)))


def sign_intent(signed: SignedIntent, key: keys.SigningKey) -> SignedIntent:
    """`signed` with `key`'s signature added; `key` must be one of the payers."""
    if key.public not in signed.intent.payers():
        raise InvalidArgument(f"key {key.public.hex()} pays no leg of this swap")
    sigs = dict(signed.signatures)
    sigs[key.public] = key.sign(signed.intent.signing_bytes())
    return SignedIntent(signed.intent, sigs)


# -- validation ---------------------------------------------------------------------------


def check_intent(intent: Intent, genesis: Genesis) -> None:
    """Stateless checks of the terms; raises InvalidArgument naming the bad field."""
    if not 1 <= len(intent.legs) <= MAX_LEGS:
        raise InvalidArgument(f"a swap needs 1..{MAX_LEGS} legs, got {len(intent.legs)}")
    if not 0 < intent.deadline_ms <= MAX_DEADLINE_MS:
        raise InvalidArgument(f"deadline_ms {intent.deadline_ms} must be 1..{MAX_DEADLINE_MS}")
    if len(intent.nonce) > MAX_NONCE_BYTES:
        raise InvalidArgument(f"nonce is {len(intent.nonce)} bytes, at most {MAX_NONCE_BYTES}")
    known = {r.id for r in genesis.rollups}
    seen: set[tuple[str, bytes, bytes, str]] = set()
    for n, leg in enumerate(intent.legs):
        if leg.rollup not in known:
            raise InvalidArgument(f"leg {n}: rollup {leg.rollup!r} is not in the genesis")
        tx.check_asset(leg.asset)
        if len(leg.payer) != keys.PUBLIC_KEY_BYTES or len(leg.payee) != keys.PUBLIC_KEY_BYTES:
            raise InvalidArgument(f"leg {n}: payer and payee must be 32-byte public keys")
        if not 0 < leg.amount <= tx.MAX_AMOUNT:
            raise InvalidArgument(f"leg {n}: amount {leg.amount} must be 1..{tx.MAX_AMOUNT}")
        k = (leg.rollup, leg.payer, leg.payee, leg.asset)
        if k in seen:
            raise InvalidArgument(f"leg {n} repeats an earlier leg's rollup, parties and asset")
        seen.add(k)


def check_signature(intent: Intent, payer: bytes, signature: bytes) -> None:
    """Raise Unauthenticated unless `signature` is `payer`'s over the whole intent."""
    if payer not in intent.payers():
        raise InvalidArgument(f"key {payer.hex()} pays no leg of this swap")
    if not keys.verify(payer, signature, intent.signing_bytes()):
        raise Unauthenticated(f"signature of {payer.hex()} does not verify over the intent")


def check_signed_intent(signed: SignedIntent, genesis: Genesis, signatures: bool = True) -> None:
    """Full check of a signed intent: terms, and every payer's signature, nothing extra.

    `signatures=False` skips verifying them (for bytes verified before), not the rest.
    """
    check_intent(signed.intent, genesis)
    missing = signed.missing()
    if missing:
        raise Unauthenticated(f"unsigned by payers {[p.hex() for p in missing]}")
    extra = set(signed.signatures) - set(signed.intent.payers())
    if extra:
        raise InvalidArgument(f"signatures from non-payers {sorted(p.hex() for p in extra)}")
    if signatures:
        for payer, sig in signed.signatures.items():
            check_signature(signed.intent, payer, sig)


def check_vote(vote: Vote, genesis: Genesis) -> None:
    """Raise Unauthenticated unless the vote verifies under its rollup's genesis key."""
    rollup = genesis.rollup(vote.rollup)
    if not keys.verify(rollup.key, vote.signature, vote.signing_bytes()):
        raise Unauthenticated(f"vote signature does not verify for rollup {vote.rollup!r}")


# -- encoding -----------------------------------------------------------------------------


def encode_intent(signed: SignedIntent) -> bytes:
    """Entry data for the `swap` namespace; payers' signatures in key order."""
    sigs = sorted(signed.signatures.items())
    return (
        bytes([KIND_INTENT])
        + signed.intent._fields()
        + struct.pack(">B", len(sigs))
        + b"".join(p + s for p, s in sigs)
    )


def encode_vote(vote: Vote) -> bytes:
    r = vote.rollup.encode()
    return (
        bytes([KIND_VOTE])
        + vote.swap_id
        + struct.pack(">H", len(r))
        + r
        + (b"\x01" if vote.yes else b"\x00")
        + vote.signature
    )


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise InvalidArgument("malformed swap entry: truncated")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def uint(self, fmt: str) -> int:
        s = struct.Struct(fmt)
        (v,) = s.unpack(self.take(s.size))
        return int(v)

    def text(self, fmt: str) -> str:
        try:
            return self.take(self.uint(fmt)).decode()
        except UnicodeDecodeError as exc:
            raise InvalidArgument("malformed swap entry: bad text") from exc


def decode_swap_entry(data: bytes) -> SignedIntent | Vote:
    """Parse `swap` namespace bytes; raise InvalidArgument if malformed or not canonical."""
    r = _Reader(data)
    kind = r.uint(">B")
    out: SignedIntent | Vote
    if kind == KIND_INTENT:
        legs = []
        for _ in range(r.uint(">B")):
            rollup = r.text(">H")
            payer, payee = r.take(32), r.take(32)
            asset = r.text(">B")
            legs.append(Leg(rollup, payer, payee, asset, r.uint(">Q")))
        deadline = r.uint(">Q")
        nonce = r.take(r.uint(">B"))
        sigs = {}
        for _ in range(r.uint(">B")):
            payer = r.take(32)
            sigs[payer] = r.take(keys.SIGNATURE_BYTES)
        out = SignedIntent(Intent(tuple(legs), deadline, nonce), sigs)
        canonical = encode_intent(out)
    elif kind == KIND_VOTE:
        swap_id = r.take(32)
        rollup = r.text(">H")
        yes = r.uint(">B")
        vote = Vote(swap_id, rollup, yes == 1, r.take(keys.SIGNATURE_BYTES))
        out, canonical = vote, encode_vote(vote)
    else:
        raise InvalidArgument(f"malformed swap entry: unknown kind {kind:#04x}")
    if canonical != data:
        raise InvalidArgument("malformed swap entry: not in canonical form")
    return out
