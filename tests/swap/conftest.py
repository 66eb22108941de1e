"""Fixtures for the swap end-to-end tests: every process started is ended at teardown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .network import ROLLUPS, Net, Proc, start_coordinator, start_node, start_sequencer, write_net


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    try:
        yield started
    finally:
        for p in reversed(started):
            p.stop()


StartNet = Callable[..., tuple[Net, str]]


@pytest.fixture
def start_net(tmp_path: Path, procs: list[Proc]) -> StartNet:
    """Sequencer, the named rollup nodes (started together) and one coordinator."""

    def start(nodes: tuple[str, ...] = ROLLUPS) -> tuple[Net, str]:
        net = write_net(tmp_path)
        start_sequencer(net, procs)
        started = [(r, start_node(net, procs, r)) for r in nodes]
        for r, p in started:
            net.nodes[r] = p.ready()["listen"]
        _, coordinator = start_coordinator(net, procs)
        return net, coordinator

    return start
