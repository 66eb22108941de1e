"""Fixtures for the swap end-to-end tests: every process started is ended at teardown.

One network (sequencer, nodes for alpha, beta and gamma, one coordinator) serves the whole
module, so tests check balance changes, never absolute balances; extra processes a test
starts (more coordinators) are ended by the function-scoped `procs`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .network import NODES, Net, Proc, start_coordinator, start_node, start_sequencer, write_net


def _stop_all(started: list[Proc]) -> None:
    for p in reversed(started):
        p.stop()


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    try:
        yield started
    finally:
        _stop_all(started)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    net = write_net(tmp_path_factory.mktemp("swapnet"))
    try:
        start_sequencer(net, net.procs)
        for r in NODES:
            net.node_procs[r] = start_node(net, net.procs, r)
        for r, p in net.node_procs.items():
            net.nodes[r] = p.ready()["listen"]
        _, net.coordinator = start_coordinator(
            net, net.procs, "coord", "--metrics-listen", "127.0.0.1:0"
        )
        yield net
    finally:
        _stop_all(net.procs)
