"""A real network on loopback for the rollup node tests: genesis, sequencer, node processes.

Every process started here is ended here (SIGTERM, then SIGKILL of its process group),
and every wait is on a real condition (a ready line, a height) with a bounded deadline.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rollup_client.protocol.genesis import (
    SETTLEMENT_NAMESPACE,
    SWAP_NAMESPACE,
    Client,
    Genesis,
    Rollup,
)
from rollup_client.protocol.keys import SigningKey
from rollup_client.sdk import RollupClient
from tests.procs import Proc

CHAIN_ID = "rollup-node-test"
GOLD, SILVER = "gold", "silver"
FUNDS = 1_000_000
HEARTBEAT_MS = 50


def key(name: str) -> SigningKey:
    """A deterministic key per name, so failures are reproducible."""
    return SigningKey.from_seed(name.encode().ljust(32, b".")[:32])


def tandem() -> list[str]:
    beside = Path(sys.executable).parent / "tandem"
    found = str(beside) if beside.exists() else shutil.which("tandem")
    assert found, "the tandem command is not installed (pip install -e .)"
    return [found]


@dataclass
class Net:
    """Genesis and key files of a two-rollup network: alpha (gold, silver) and beta (gold)."""

    dir: Path
    genesis: Genesis
    genesis_path: Path
    key_paths: dict[str, Path] = field(default_factory=dict)


def write_net(root: Path) -> Net:
    names = ["sequencer", "alpha", "beta", "feeder", "alice", "bob", "carol"]
    keys = {n: key(n) for n in names}
    paths = {}
    for n, k in keys.items():
        paths[n] = root / "keys" / f"{n}.pem"
        k.save(paths[n])
    system = {SWAP_NAMESPACE, SETTLEMENT_NAMESPACE}
    genesis = Genesis(
        CHAIN_ID,
        keys["sequencer"].public,
        (
            Client("alpha", keys["alpha"].public, frozenset({"alpha", *system})),
            Client("beta", keys["beta"].public, frozenset({"beta", *system})),
            Client("feeder", keys["feeder"].public, frozenset({"alpha", "beta", SWAP_NAMESPACE})),
        ),
        (
            Rollup(
                "alpha",
                keys["alpha"].public,
                (GOLD, SILVER),
                {keys["alice"].public: {GOLD: FUNDS, SILVER: FUNDS}, keys["bob"].public: {GOLD: 5}},
            ),
            Rollup("beta", keys["beta"].public, (GOLD,), {keys["carol"].public: {GOLD: FUNDS}}),
        ),
        time_ms=1_000,
    )
    genesis_path = root / "genesis.json"
    genesis.save(genesis_path)
    return Net(root, genesis, genesis_path, paths)


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    """Every process a test starts; all are ended at teardown, even on failure."""
    started: list[Proc] = []
    try:
        yield started
    finally:
        for p in reversed(started):
            p.stop()


@pytest.fixture
def net(tmp_path: Path) -> Net:
    return write_net(tmp_path)


def start_sequencer(net: Net, procs: list[Proc], heartbeat_ms: int, *extra: str) -> str:
    """Start a real sequencer process with `extra` flags; returns its HOST:PORT."""
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
            str(net.key_paths["sequencer"]),
            "--heartbeat-ms",
            str(heartbeat_ms),
            *extra,
        ],
        net.dir / "sequencer.err",
    )
    procs.append(p)
    listen: str = p.ready()["listen"]
    return listen


@pytest.fixture
def sequencer(net: Net, procs: list[Proc]) -> str:
    """A real sequencer process; returns its HOST:PORT."""
    return start_sequencer(net, procs, HEARTBEAT_MS)


StartNode = Callable[..., tuple[Proc, str]]


@pytest.fixture
def start_node(net: Net, sequencer: str, procs: list[Proc]) -> StartNode:
    """Start `tandem rollup run` for a rollup; returns the process and its HOST:PORT."""

    def start(
        rollup: str = "alpha",
        name: str | None = None,
        *extra: str,
    ) -> tuple[Proc, str]:
        name = name or rollup
        p = Proc(
            [
                *tandem(),
                "rollup",
                "run",
                "--id",
                rollup,
                "--sequencer",
                sequencer,
                "--data-dir",
                str(net.dir / name),
                "--genesis",
                str(net.genesis_path),
                "--key",
                str(net.key_paths[rollup]),
                *extra,
            ],
            net.dir / f"{name}.err",
        )
        procs.append(p)
        return p, p.ready()["listen"]

    return start


def wait_height(client: RollupClient, height: int, timeout: float = 20.0) -> int:
    """Wait until the node has applied `height`, polling its status (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        h = client.status().height
        if h >= height:
            return h
        if time.monotonic() > deadline:
            raise AssertionError(f"node stuck at {h}, waiting for {height}")
        time.sleep(HEARTBEAT_MS / 1000)
