"""A whole 3-rollup testnet (sequencer, rollup nodes, coordinator) for the swap benchmark.

`start` writes a network config with one funded pair of accounts per worker, brings the
testnet up through deploy (real processes on loopback) and takes it down afterwards.
Two clients drive it with the same shape: `swap` runs 2-leg atomic swaps through the
coordinator; `htlc` runs the HTLC-style baseline over the same rollups: lock on A, lock on
B, claim on B, claim on A, each a signed transfer that waits for its execution receipt.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import trio

from deploy import launcher
from deploy.layout import Layout
from deploy.state import TestnetState
from deploy.testnet_cli import bring_up
from rollup_client.protocol import swap
from rollup_client.protocol.keys import SigningKey
from rollup_client.sdk import RollupClient
from rollup_client.wire import swap_pb2 as pb
from swap_coordinator.client import SwapClient

DURABILITY = "every step durable in the sequencer's log and executed by the rollups"
CALL_TIMEOUT_S = 10.0
SWAP_TIMEOUT_MS = 30_000
ROLLUPS = ("rollup-a", "rollup-b", "rollup-c")
ASSETS = {"rollup-a": "USD", "rollup-b": "EUR", "rollup-c": "GBP"}
FUNDS = 10**12
PAIRS = 16
FINAL = {pb.SWAP_STATE_COMMITTED, pb.SWAP_STATE_ABORTED, pb.SWAP_STATE_EXPIRED}


def network_toml(pairs: int, snapshot_interval: int = 1000) -> str:
    """Three rollups, one asset each, and 2 * `pairs` accounts funded on all of them."""
    lines = [
        'chain_id = "tandem-bench"',
        'host = "127.0.0.1"',
        "heartbeat_ms = 200",
        f"snapshot_interval = {snapshot_interval}",
        "attestation_interval = 100",
        "[sequencer]\nport = 0",
        "[coordinator]\nport = 0",
    ]
    for rid in ROLLUPS:
        lines.append(f'[[rollups]]\nid = "{rid}"\nassets = ["{ASSETS[rid]}"]\nport = 0')
    for i in range(2 * pairs):
        lines.append(f"[accounts.w{i}]")
        lines += [f"{rid} = {{ {ASSETS[rid]} = {FUNDS} }}" for rid in ROLLUPS]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def up(workdir: Path, snapshot_interval: int = 1000) -> Iterator[TestnetState]:
    """The testnet's processes running from `workdir`, all stopped when the block exits."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "network.toml"
    config.write_text(network_toml(PAIRS, snapshot_interval))
    testnet = bring_up(Layout(workdir / "net"), config, len(ROLLUPS))
    try:
        yield testnet
    finally:
        trio.run(launcher.stop_all, testnet.processes)


@contextlib.contextmanager
def start(workdir: Path) -> Iterator[dict[str, Any]]:
    """The testnet up in `workdir`; yields endpoints, account key files and pids."""
    with up(workdir) as testnet:
        yield {
            "sequencer": testnet.sequencer,
            "coordinator": testnet.coordinator,
            "rollups": testnet.rollups(),
            "accounts": testnet.accounts,
            "pid": testnet.by_role("sequencer")[0].pid,
            "pids": {p.name: p.pid for p in testnet.processes},
        }


class Pair:
    """The two accounts and two rollups one worker trades between."""

    def __init__(self, target: dict[str, Any], worker: int) -> None:
        i = worker % PAIRS
        self.a = SigningKey.load(Path(target["accounts"][f"w{2 * i}"]))
        self.b = SigningKey.load(Path(target["accounts"][f"w{2 * i + 1}"]))
        self.x = ROLLUPS[worker % len(ROLLUPS)]
        self.y = ROLLUPS[(worker + 1) % len(ROLLUPS)]


class SwapDriver:
    """Each payload is one 2-leg swap (a pays b on x, b pays a on y), all in flight at once."""

    def __init__(self, target: dict[str, Any], worker: int) -> None:
        self.pair = Pair(target, worker)
        self.client = SwapClient(target["coordinator"], timeout=CALL_TIMEOUT_S)

    def send(self, payloads: list[bytes]) -> None:
        p = self.pair
        legs = [
            swap.Leg(p.x, p.a.public, p.b.public, ASSETS[p.x], 1),
            swap.Leg(p.y, p.b.public, p.a.public, ASSETS[p.y], 1),
        ]
        # Both parties' keys are here: each swap is proposed and signed in one call, and
        # the batch's calls are in flight together.
        proposed = self.client.propose_signed_many(
            [(legs, payload[:32]) for payload in payloads],
            (p.a, p.b),
            timeout_ms=SWAP_TIMEOUT_MS,
        )
        ids = [r.swap_id for r in proposed]
        for sid in ids:
            state = self._final(sid)
            if state != pb.SWAP_STATE_COMMITTED:
                raise RuntimeError(f"swap {sid.hex()[:16]} ended {pb.SwapState.Name(state)}")

    def _final(self, swap_id: bytes) -> pb.SwapState.ValueType:
        """Watch until final (a Watch starts with the current status: no Get first)."""
        end = time.monotonic() + SWAP_TIMEOUT_MS / 1000 + CALL_TIMEOUT_S
        state: pb.SwapState.ValueType = pb.SWAP_STATE_UNSPECIFIED
        while state not in FINAL and time.monotonic() < end:
            for status in self.client.watch(swap_id, end - time.monotonic()):
                state = status.state
                if state in FINAL:
                    break
        return state

    def close(self) -> None:
        self.client.close()


class HtlcDriver:
    """Each payload is one HTLC-style exchange: four transfers, each awaited in turn.

    The hash-lock itself is not modelled: what the baseline measures is its shape, four
    sequential rounds of inclusion and execution on two rollups.
    """

    def __init__(self, target: dict[str, Any], worker: int) -> None:
        self.pair = Pair(target, worker)
        self.nodes = {
            rid: RollupClient(target["rollups"][rid], timeout=CALL_TIMEOUT_S)
            for rid in (self.pair.x, self.pair.y)
        }
        # One lock account per rollup stands in for the HTLC contract.
        self.lock = {rid: SigningKey.generate() for rid in self.nodes}
        self.nonces: dict[tuple[str, bytes], int] = {}

    def _pay(self, rid: str, key: SigningKey, to: bytes) -> None:
        who = (rid, key.public)
        if who not in self.nonces:
            self.nonces[who] = self.nodes[rid].nonce(key.public)
        self.nodes[rid].transfer(
            key, to, ASSETS[rid], 1, nonce=self.nonces[who], wait_s=CALL_TIMEOUT_S
        )
        self.nonces[who] += 1

    def send(self, payloads: list[bytes]) -> None:
        p, lock = self.pair, self.lock
        for _ in payloads:
            self._pay(p.x, p.a, lock[p.x].public)  # lock on A
            self._pay(p.y, p.b, lock[p.y].public)  # lock on B
            self._pay(p.y, lock[p.y], p.a.public)  # claim on B, revealing the secret
            self._pay(p.x, lock[p.x], p.b.public)  # claim on A with it

    def close(self) -> None:
        for node in self.nodes.values():
            node.close()


def connect(target: dict[str, Any], single: bool) -> SwapDriver | HtlcDriver:
    worker = int(target.get("worker", 0))
    if target["mode"] == "htlc":
        return HtlcDriver(target, worker)
    return SwapDriver(target, worker)
