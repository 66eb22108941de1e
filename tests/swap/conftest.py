"""The swap end-to-end tests' network: four rollups with one asset each, a coordinator.

One network (sequencer, nodes for alpha, beta and gamma, one coordinator) serves the whole
module, so tests check balance changes, never absolute balances; extra processes a test
starts (more coordinators) are ended by the function-scoped `procs`. The processes are
started by `tests.network`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rollup_client.protocol.genesis import (
    SETTLEMENT_NAMESPACE,
    SWAP_NAMESPACE,
    Client,
    Genesis,
    Rollup,
)
from tests.keys import key
from tests.network import Net, spawn_node, start_coordinator, start_sequencer, write_net
from tests.procs import ended

CHAIN_ID = "swap-e2e"
ROLLUPS = ("alpha", "beta", "gamma", "delta")
"""Rollups in the genesis; the tests run nodes for all but "delta", which never votes."""
NODES = ("alpha", "beta", "gamma")
ASSETS = {"alpha": "gold", "beta": "silver", "gamma": "bronze", "delta": "lead"}
USERS = ("alice", "bob", "carol")
FUNDS = 1_000
LOAD_NAMESPACE = "load"


def genesis() -> Genesis:
    """Each rollup has one asset; every user holds FUNDS of each everywhere."""
    system = {SWAP_NAMESPACE, SETTLEMENT_NAMESPACE}
    return Genesis(
        CHAIN_ID,
        key("sequencer").public,
        (
            *(Client(r, key(r).public, frozenset({r, *system})) for r in ROLLUPS),
            Client("coordinator", key("coordinator").public, frozenset({SWAP_NAMESPACE})),
            Client("loader", key("loader").public, frozenset({LOAD_NAMESPACE})),
        ),
        tuple(
            Rollup(
                r, key(r).public, (ASSETS[r],), {key(u).public: {ASSETS[r]: FUNDS} for u in USERS}
            )
            for r in ROLLUPS
        ),
        time_ms=1_000,
    )


@pytest.fixture(scope="package")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    root = tmp_path_factory.mktemp("swapnet")
    net = write_net(root, genesis(), users=USERS, servers=("sequencer", "coordinator", *ROLLUPS))
    with ended() as net.procs:
        start_sequencer(net, net.procs)
        for r in NODES:
            net.node_procs[r] = spawn_node(net, net.procs, r)
        for r, p in net.node_procs.items():
            net.nodes[r] = p.ready()["listen"]
        _, net.coordinator = start_coordinator(
            net, net.procs, "coord", "--metrics-listen", "127.0.0.1:0"
        )
        yield net
