"""The rollup node tests' network: two rollups, alpha (gold, silver) and beta (gold).

The processes are started by `tests.network` and ended by the `procs` fixture.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rollup_client.protocol.genesis import (
    SETTLEMENT_NAMESPACE,
    SWAP_NAMESPACE,
    Client,
    Genesis,
    Rollup,
)
from tests import network
from tests.keys import key
from tests.network import Net, spawn_node, start_sequencer
from tests.procs import Proc

CHAIN_ID = "rollup-node-test"
GOLD, SILVER = "gold", "silver"
FUNDS = 1_000_000


def genesis() -> Genesis:
    """alice holds FUNDS of both assets on alpha, bob 5 gold; carol FUNDS of gold on beta."""
    system = {SWAP_NAMESPACE, SETTLEMENT_NAMESPACE}
    alice, bob, carol = key("alice").public, key("bob").public, key("carol").public
    return Genesis(
        CHAIN_ID,
        key("sequencer").public,
        (
            Client("alpha", key("alpha").public, frozenset({"alpha", *system})),
            Client("beta", key("beta").public, frozenset({"beta", *system})),
            Client("feeder", key("feeder").public, frozenset({"alpha", "beta", SWAP_NAMESPACE})),
        ),
        (
            Rollup(
                "alpha",
                key("alpha").public,
                (GOLD, SILVER),
                {alice: {GOLD: FUNDS, SILVER: FUNDS}, bob: {GOLD: 5}},
            ),
            Rollup("beta", key("beta").public, (GOLD,), {carol: {GOLD: FUNDS}}),
        ),
        time_ms=1_000,
    )


def write_net(root: Path) -> Net:
    """This network's genesis and key files under `root`."""
    users, servers = ("alice", "bob", "carol"), ("sequencer", "alpha", "beta", "feeder")
    return network.write_net(root, genesis(), users=users, servers=servers)


@pytest.fixture
def net(tmp_path: Path) -> Net:
    return write_net(tmp_path)


@pytest.fixture
def sequencer(net: Net, procs: list[Proc]) -> str:
    """A real sequencer process; returns its HOST:PORT."""
    return start_sequencer(net, procs)


StartNode = Callable[..., tuple[Proc, str]]


@pytest.fixture
def start_node(net: Net, sequencer: str, procs: list[Proc]) -> StartNode:
    """Start `tandem rollup run` for a rollup; returns the process and its HOST:PORT."""

    def start(rollup: str = "alpha", name: str | None = None, *extra: str) -> tuple[Proc, str]:
        p = spawn_node(net, procs, rollup, *extra, name=name or rollup)
        return p, p.ready()["listen"]

    return start
