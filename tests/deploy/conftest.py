"""The testnet directory of a test, and the guarantee that nothing it started survives it."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy import state
from deploy.layout import Layout
from tests.deploy.cli_helpers import CLI_TIMEOUT_S, processes_under, wait_for


@pytest.fixture
def layout(tmp_path: Path) -> Iterator[Layout]:
    lay = Layout(tmp_path / "net")
    try:
        yield lay
    finally:
        recorded = state.load(lay)
        leaked = [] if recorded is None else recorded.running()
        for p in leaked:
            os.killpg(p.pid, signal.SIGKILL)
        if recorded is not None:
            wait_for(lambda: not recorded.running(), CLI_TIMEOUT_S, "killed leftovers to exit")
        assert not leaked, f"processes left behind: {[p.name for p in leaked]}"
        assert processes_under(lay.root) == []
