"""Rollup node recovery: restart from its snapshot against a full replay of the log.

On a 3-rollup testnet, rollup-a executes N transfers (signed here, sent in batches of up
to 1000). Then its node is stopped and started again with its data (newest snapshot plus
the tail), and a fresh replica with an empty data dir replays the whole log; each is timed
from spawning the process until it has executed up to the height the node had reached.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from bench.peers import testnet
from bench.procs import Server, running
from deploy import launcher
from deploy.state import ProcessRecord
from rollup_client.protocol.keys import SigningKey
from rollup_client.protocol.tx import SignedTransfer, Transfer
from rollup_client.sdk import RollupClient

ROLLUP = "rollup-a"
SUBMIT_CHUNK = 1000
CATCH_UP_TIMEOUT_S = 300.0
POLL_S = 0.02
READY = re.compile(r'"event": "ready", "listen": "([^"]+)"')


@dataclass(frozen=True)
class RollupRecovery:
    transfers: int
    height: int
    snapshot_interval: int
    fill_s: float
    restart_s: float
    replay_s: float

    def doc(self) -> dict[str, Any]:
        return {
            "transfers": self.transfers,
            "height": self.height,
            "snapshot_interval": self.snapshot_interval,
            "fill_s": self.fill_s,
            "restart_from_snapshot_s": self.restart_s,
            "full_replay_s": self.replay_s,
        }


def signed_transfers(
    accounts: list[SigningKey], start_nonces: list[int], n: int
) -> list[SignedTransfer]:
    """`n` unit transfers round-robin over `accounts`, each paying the next, nonces in order."""
    nonces = list(start_nonces)
    asset = testnet.ASSETS[ROLLUP]
    out = []
    for i in range(n):
        k = i % len(accounts)
        payee = accounts[(k + 1) % len(accounts)].public
        out.append(
            Transfer(accounts[k].public, payee, asset, 1, nonces[k], ROLLUP).sign(accounts[k])
        )
        nonces[k] += 1
    return out


def fill(node: RollupClient, accounts: list[SigningKey], n: int) -> int:
    """Have the node execute `n` transfers; returns the height it reached."""
    stxs = signed_transfers(accounts, [node.nonce(a.public) for a in accounts], n)
    last = None
    for i in range(0, len(stxs), SUBMIT_CHUNK):
        for result in node.submit_many(stxs[i : i + SUBMIT_CHUNK]):
            if isinstance(result, Exception):
                raise result
            last = result
    assert last is not None
    node.wait_receipt(last.tx_id, CATCH_UP_TIMEOUT_S)
    return node.status().height


def _with(argv: list[str], flag: str, value: str) -> list[str]:
    out = list(argv)
    out[out.index(flag) + 1] = value
    return out


def timed_catch_up(server: Server, height: int) -> float:
    """Seconds from spawning `server` until its node has executed block `height`."""
    with running(server, timeout_s=CATCH_UP_TIMEOUT_S) as node:
        assert node.ready_match is not None
        deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
        with RollupClient(node.ready_match.group(1), timeout=10.0) as client:
            while client.status().height < height:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{server.argv[3:5]} did not reach height {height}")
                time.sleep(POLL_S)
        return time.perf_counter() - node.started_at


def measure(workdir: Path, transfers: int, snapshot_interval: int) -> RollupRecovery:
    with testnet.up(workdir / "testnet", snapshot_interval) as net:
        record: ProcessRecord = net.process(ROLLUP)
        accounts = [SigningKey.load(Path(net.accounts[f"w{i}"])) for i in range(2 * testnet.PAIRS)]
        t0 = time.perf_counter()
        with RollupClient(record.listen, timeout=60.0) as node:
            height = fill(node, accounts, transfers)
        fill_s = time.perf_counter() - t0
        trio.run(launcher.stop_all, [record])
        argv = _with(record.argv, "--listen", "127.0.0.1:0")
        restart_s = timed_catch_up(Server(argv, workdir / "restart.log", READY), height)
        replica = [*_with(argv, "--data-dir", str(workdir / "replica")), "--replica"]
        replay_s = timed_catch_up(Server(replica, workdir / "replica.log", READY), height)
    return RollupRecovery(transfers, height, snapshot_interval, fill_s, restart_s, replay_s)
