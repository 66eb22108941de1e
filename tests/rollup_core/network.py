"""Several token ledgers run in memory on one shared log, with control over their votes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rollup_client.ledger import TokenLedger
from rollup_client.protocol import swap
from rollup_client.protocol.genesis import SWAP_NAMESPACE, Genesis
from rollup_client.protocol.keys import SigningKey
from rollup_client.protocol.statemachine import Receipt

from .helpers import Chain, rollup_key


def intent_entry(intent: swap.Intent, payers: Iterable[SigningKey]) -> tuple[str, bytes]:
    """The `swap` entry of `intent` signed by `payers`."""
    s = swap.SignedIntent(intent)
    for k in payers:
        s = swap.sign_intent(s, k)
    return SWAP_NAMESPACE, swap.encode_intent(s)


class Network:
    """One chain, one signing ledger per rollup; each rollup's votes wait in its queue."""

    def __init__(self, genesis: Genesis) -> None:
        self.genesis = genesis
        self.chain = Chain()
        self.ledgers = {r.id: TokenLedger(genesis, r.id, rollup_key(r.id)) for r in genesis.rollups}
        self.queued: dict[str, list[tuple[str, bytes]]] = {r: [] for r in self.ledgers}
        self.receipts: list[tuple[str, Receipt]] = []
        self.time_ms = genesis.time_ms

    def step(
        self,
        entries: Sequence[tuple[str, bytes]] = (),
        deliver: Iterable[str] | None = None,
        dt_ms: int = 10,
    ) -> list[Receipt]:
        """Seal one block of `entries` plus the queued votes of `deliver` (default: all)."""
        out = list(entries)
        for rid in self.ledgers if deliver is None else deliver:
            out += self.queued[rid]
            self.queued[rid] = []
        self.time_ms += dt_ms
        block = self.chain.seal(self.time_ms, out)
        got: list[Receipt] = []
        for rid, ledger in self.ledgers.items():
            mine = ledger.begin_block(block.height, block.time_ms)
            for e in block.entries:
                if e.namespace in ledger.namespaces():
                    r = ledger.apply(e)
                    if r is not None:
                        mine.append(r)
            ledger.state_root()
            self.queued[rid] += [(o.namespace, o.data) for o in ledger.take_outbox()]
            self.receipts += [(rid, r) for r in mine]
            got += mine
        return got

    def supply(self, asset: str) -> int:
        return sum(ledger.supply(asset) for ledger in self.ledgers.values())
