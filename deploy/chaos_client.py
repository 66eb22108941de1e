"""One workload process of `tandem chaos`: random transfers and swaps until a deadline.

    python -m deploy.chaos_client CONFIG_JSON

The config names the rollup nodes, the coordinator, the keystore, the accounts this
client sends transfers from (so no two clients race for one nonce), every account, a
seed and a duration. Every acknowledged transfer and every fully signed swap is written
to the output file as one JSON line as soon as it happens, so a kill of this process
loses nothing already reported; so is every outcome the coordinator claims when asked
about an earlier swap mid-run (the checker holds each claim against `decide()`). Errors
from processes the nemesis took down are expected: the client counts them and carries on.

Some swaps are made to abort on purpose: amounts beyond the payer's funds, deadlines of a
few milliseconds of log time, and pairs of swaps that spend the same funds.
"""

from __future__ import annotations

import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from rollup_client.protocol import swap, tx
from rollup_client.protocol.errors import TandemError
from rollup_client.protocol.keys import SigningKey
from rollup_client.sdk import RollupClient
from rollup_client.wire import swap_pb2 as spb
from swap_coordinator.client import SwapClient

OUTCOMES = {spb.SWAP_STATE_COMMITTED: "committed", spb.SWAP_STATE_ABORTED: "aborted"}
CALL_TIMEOUT_S = 3.0
RECEIPT_WAIT_S = 2.0


@dataclass(frozen=True)
class ClientConfig:
    rollups: dict[str, str]  # rollup id -> node HOST:PORT
    assets: dict[str, list[str]]  # rollup id -> assets
    coordinator: str
    keys_dir: str
    senders: list[str]
    accounts: list[str]
    seed: int
    duration_s: float
    out: str

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ClientConfig:
        return cls(**doc)


class Workload:
    """The client's loop; `step` does one random operation and reports what was acked."""

    def __init__(self, cfg: ClientConfig, out: IO[str]) -> None:
        self.cfg = cfg
        self.out = out
        self.rng = random.Random(cfg.seed)
        self.keys = {a: SigningKey.load(Path(cfg.keys_dir) / f"{a}.pem") for a in cfg.accounts}
        self.nodes = {r: RollupClient(t, timeout=CALL_TIMEOUT_S) for r, t in cfg.rollups.items()}
        self.coordinator = SwapClient(cfg.coordinator, timeout=CALL_TIMEOUT_S)
        self.errors = 0
        self.proposed: list[bytes] = []

    def close(self) -> None:
        for c in self.nodes.values():
            c.close()
        self.coordinator.close()

    def _emit(self, doc: dict[str, Any]) -> None:
        self.out.write(json.dumps(doc) + "\n")
        self.out.flush()

    def transfer(self) -> None:
        rollup = self.rng.choice(sorted(self.cfg.rollups))
        sender = self.keys[self.rng.choice(self.cfg.senders)]
        to = self.keys[self.rng.choice(self.cfg.accounts)].public
        asset = self.rng.choice(self.cfg.assets[rollup])
        amount = self.rng.choice([1, 2, 5, 10, 10_000_000])  # the last one fails on execution
        node = self.nodes[rollup]
        nonce = node.nonce(sender.public)
        stx = tx.Transfer(sender.public, to, asset, amount, nonce, rollup).sign(sender)
        sub = node.submit(stx)
        self._emit({"kind": "tx", "id": sub.tx_id.hex(), "height": sub.height, "index": sub.index})
        node.wait_receipt(sub.tx_id, RECEIPT_WAIT_S)

    def _legs(self, count: int) -> list[swap.Leg]:
        rollups = self.rng.sample(sorted(self.cfg.rollups), count)
        people = self.rng.sample(self.cfg.accounts, count)
        legs = []
        for n, rollup in enumerate(rollups):
            payer, payee = self.keys[people[n]], self.keys[people[(n + 1) % count]]
            amount = self.rng.choice([1, 3, 7, 20])
            if self.rng.random() < 0.15:
                amount = 10**9  # beyond anyone's funds: that rollup votes NO
            asset = self.rng.choice(self.cfg.assets[rollup])
            legs.append(swap.Leg(rollup, payer.public, payee.public, asset, amount))
        return legs

    def swaps(self) -> None:
        legs = self._legs(self.rng.choice([2, 3]))
        tight = self.rng.random() < 0.15
        timeout_ms = self.rng.randint(1, 20) if tight else self.rng.randint(2_000, 5_000)
        twins = 2 if self.rng.random() < 0.15 else 1  # the same funds spent twice
        for n in range(twins):
            resp = self.coordinator.propose(legs, timeout_ms=timeout_ms, nonce=b"twin%d" % n)
            by_key = {k.public: k for k in self.keys.values()}
            for payer in resp.payers:
                self.coordinator.sign(resp.swap_id, payer, by_key[payer].sign(resp.signing_bytes))
            self._emit({"kind": "swap", "id": resp.swap_id.hex(), "deadline_ms": resp.deadline_ms})
            self.proposed.append(resp.swap_id)

    def ask(self) -> None:
        """What the coordinator says about an earlier swap, kept when it claims an outcome."""
        sid = self.rng.choice(self.proposed)
        state = self.coordinator.get(sid).state
        if state in OUTCOMES:
            self._emit({"kind": "report", "id": sid.hex(), "outcome": OUTCOMES[state]})

    def step(self) -> None:
        try:
            roll = self.rng.random()
            if roll < 0.55:
                self.transfer()
            elif roll < 0.9 or not self.proposed:
                self.swaps()
            else:
                self.ask()
        except TandemError:
            self.errors += 1
            time.sleep(0.05)  # the target is down: give the nemesis' restart a moment

    def run(self) -> None:
        end = time.monotonic() + self.cfg.duration_s
        while time.monotonic() < end:
            self.step()
        self._emit({"kind": "done", "errors": self.errors})


def main(argv: list[str]) -> None:
    cfg = ClientConfig.from_json(json.loads(Path(argv[0]).read_text()))
    with Path(cfg.out).open("a") as out:
        w = Workload(cfg, out)
        try:
            w.run()
        finally:
            w.close()


if __name__ == "__main__":
    main(sys.argv[1:])
