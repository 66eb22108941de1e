"""Fixed keys, a small genesis and in-memory blocks for the swap tests (no I/O)."""

from __future__ import annotations

from collections.abc import Sequence

from rollup_client.protocol import codec, keys, swap
from rollup_client.protocol.block import Header, LogEntry, VerifiedBlock
from rollup_client.protocol.genesis import SWAP_NAMESPACE, Client, Genesis, Rollup
from tests.keys import key

ROLLUPS = ("alpha", "beta", "gamma", "delta")
ASSET = "TOK"
USERS = tuple(key(f"user{i}") for i in range(3))
ROLLUP_KEYS = {r: key(f"rollup-{r}") for r in ROLLUPS}
COORDINATOR = key("coordinator")


def genesis() -> Genesis:
    rollups = tuple(
        Rollup(r, ROLLUP_KEYS[r].public, (ASSET,), {u.public: {ASSET: 1_000} for u in USERS})
        for r in ROLLUPS
    )
    clients = (
        *(Client(r.id, r.key, frozenset({r.id, SWAP_NAMESPACE})) for r in rollups),
        Client("coordinator", COORDINATOR.public, frozenset({SWAP_NAMESPACE})),
    )
    return Genesis("swap-test", key("sequencer").public, clients, rollups, 0)


def signed(intent: swap.Intent, signers: Sequence[keys.SigningKey] | None = None) -> bytes:
    """Entry bytes of `intent` signed by `signers` (default: every payer)."""
    by_pub = {u.public: u for u in USERS}
    s = swap.SignedIntent(intent)
    for k in signers if signers is not None else [by_pub[p] for p in intent.payers()]:
        s = swap.sign_intent(s, k)
    return swap.encode_intent(s)


def vote(swap_id: bytes, rollup: str, yes: bool, signer: keys.SigningKey | None = None) -> bytes:
    k = signer if signer is not None else ROLLUP_KEYS[rollup]
    return swap.encode_vote(swap.sign_vote(k, swap_id, rollup, yes))


def make_block(height: int, time_ms: int, datas: Sequence[bytes]) -> VerifiedBlock:
    """A block of `swap` entries (unsigned: the swap rules never look at signatures here)."""
    entries = tuple(
        LogEntry(SWAP_NAMESPACE, d, height, i, codec.entry_id(SWAP_NAMESPACE, d))
        for i, d in enumerate(datas)
    )
    header = Header(height, b"", time_ms, len(entries), 1, b"")
    return VerifiedBlock(header, header.hash, b"", entries)
