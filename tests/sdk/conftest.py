"""Sequencer processes for the SDK tests (see tests/procs.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.procs import Sequencer, sequencer_running

CHAIN_ID = "sdk-test"


@pytest.fixture
def sequencer(tmp_path: Path) -> Iterator[Sequencer]:
    """A sequencer of the test's own (for tests that crash or load it)."""
    with sequencer_running(tmp_path / "seq", chain_id=CHAIN_ID) as seq:
        yield seq


@pytest.fixture(scope="module")
def shared_sequencer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sequencer]:
    """One sequencer for a module's tests; each test writes its own namespaces."""
    with sequencer_running(tmp_path_factory.mktemp("seq"), chain_id=CHAIN_ID) as seq:
        yield seq
