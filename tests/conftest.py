"""Fixtures every folder shares, and the `processes` marker on the tests that use them.

A test is marked `processes` (so `pytest -m "not processes"` leaves it out) when it uses a
fixture of PROCESS_FIXTURES; a module whose tests start processes or servers themselves
says so with `pytestmark = pytest.mark.processes`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.procs import Proc, ended

PROCESS_FIXTURES = frozenset({"procs", "sequencer", "shared_sequencer", "start_node", "etcd"})
"""Fixtures that start a real process (by these names in every folder)."""


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    """Every process a test starts; all are ended at teardown, even on failure."""
    with ended() as started:
        yield started


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if PROCESS_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.processes)
