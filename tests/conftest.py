"""Fixtures every folder shares, and the `processes` marker on tests that use them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.procs import Proc, ended


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    """Every process a test starts; all are ended at teardown, even on failure."""
    with ended() as started:
        yield started
