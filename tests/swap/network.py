"""Real processes on loopback for the swap end-to-end tests: sequencer, rollup nodes, coordinators.

Every process is started in its own session and ended by the `procs` fixture (SIGTERM,
then SIGKILL of its group). Waits are on real conditions (a ready line, a state, a height)
with bounded deadlines.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from rollup_client.protocol.genesis import (
    SETTLEMENT_NAMESPACE,
    SWAP_NAMESPACE,
    Client,
    Genesis,
    Rollup,
)
from rollup_client.protocol.keys import SigningKey
from tests.procs import Proc

CHAIN_ID = "swap-e2e"
ROLLUPS = ("alpha", "beta", "gamma", "delta")
"""Rollups in the genesis; the tests run nodes for all but "delta", which never votes."""
NODES = ("alpha", "beta", "gamma")
ASSETS = {"alpha": "gold", "beta": "silver", "gamma": "bronze", "delta": "lead"}
USERS = ("alice", "bob", "carol")
FUNDS = 1_000
LOAD_NAMESPACE = "load"
HEARTBEAT_MS = 50
T = TypeVar("T")


def key(name: str) -> SigningKey:
    return SigningKey.from_seed(name.encode().ljust(32, b"~")[:32])


def tandem() -> list[str]:
    beside = Path(sys.executable).parent / "tandem"
    found = str(beside) if beside.exists() else shutil.which("tandem")
    assert found, "the tandem command is not installed (pip install -e .)"
    return [found]


@dataclass
class Net:
    dir: Path
    genesis: Genesis
    genesis_path: Path
    keys_dir: Path
    node_keys: Path
    sequencer: str = ""
    coordinator: str = ""
    nodes: dict[str, str] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)
    metrics: dict[str, str] = field(default_factory=dict)
    node_procs: dict[str, Proc] = field(default_factory=dict)

    def node_key(self, name: str) -> Path:
        return self.node_keys / f"{name}.pem"

    def env(self) -> dict[str, str]:
        return {**os.environ, "TANDEM_KEYS": str(self.keys_dir), "NO_COLOR": "1"}


def write_net(root: Path) -> Net:
    """Genesis: three rollups, each with one asset; users hold FUNDS of each everywhere."""
    users = {u: key(u) for u in USERS}
    keys_dir, node_keys = root / "keystore", root / "nodekeys"
    for name, k in users.items():
        k.save(keys_dir / f"{name}.pem")
    for name in ("sequencer", "coordinator", *ROLLUPS):
        key(name).save(node_keys / f"{name}.pem")
    system = {SWAP_NAMESPACE, SETTLEMENT_NAMESPACE}
    genesis = Genesis(
        CHAIN_ID,
        key("sequencer").public,
        (
            *(Client(r, key(r).public, frozenset({r, *system})) for r in ROLLUPS),
            Client("coordinator", key("coordinator").public, frozenset({SWAP_NAMESPACE})),
            Client("loader", key("loader").public, frozenset({LOAD_NAMESPACE})),
        ),
        tuple(
            Rollup(
                r,
                key(r).public,
                (ASSETS[r],),
                {k.public: {ASSETS[r]: FUNDS} for k in users.values()},
            )
            for r in ROLLUPS
        ),
        time_ms=1_000,
    )
    path = root / "genesis.json"
    genesis.save(path)
    return Net(root, genesis, path, keys_dir, node_keys)


def start_sequencer(net: Net, procs: list[Proc], *extra: str) -> str:
    p = Proc(
        [
            *tandem(),
            "sequencer",
            "run",
            "--data-dir",
            str(net.dir / "sequencer"),
            "--genesis",
            str(net.genesis_path),
            "--key",
            str(net.node_key("sequencer")),
            "--heartbeat-ms",
            str(HEARTBEAT_MS),
            *extra,
        ],
        net.dir / "sequencer.err",
    )
    procs.append(p)
    net.sequencer = p.ready()["listen"]
    return net.sequencer


def start_node(net: Net, procs: list[Proc], rollup: str) -> Proc:
    p = Proc(
        [
            *tandem(),
            "rollup",
            "run",
            "--id",
            rollup,
            "--sequencer",
            net.sequencer,
            "--data-dir",
            str(net.dir / rollup),
            "--genesis",
            str(net.genesis_path),
            "--key",
            str(net.node_key(rollup)),
        ],
        net.dir / f"{rollup}.err",
    )
    procs.append(p)
    return p


def start_coordinator(
    net: Net, procs: list[Proc], name: str = "coord", *extra: str
) -> tuple[Proc, str]:
    p = Proc(
        [
            *tandem(),
            "coordinator",
            "run",
            "--sequencer",
            net.sequencer,
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            str(net.dir / name),
            "--genesis",
            str(net.genesis_path),
            "--key",
            str(net.node_key("coordinator")),
            *extra,
        ],
        net.dir / f"{name}.err",
    )
    procs.append(p)
    ready = p.ready()
    if ready.get("metrics"):
        net.metrics[name] = ready["metrics"]
    return p, ready["listen"]


def until(what: str, probe: Callable[[], T | None], timeout: float = 20.0) -> T:
    """Poll `probe` every heartbeat until it returns a value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        if got is not None:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(HEARTBEAT_MS / 1000)


def cli(
    net: Net, *args: str, timeout: float = 60.0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `tandem ARGS` with the test keystore (TANDEM_KEYS) and `env`; returns when done."""
    return subprocess.run(
        [*tandem(), *args],
        env={**net.env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
