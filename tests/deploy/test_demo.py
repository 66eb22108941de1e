"""`tandem demo` end to end: exit 0, both outcomes printed, nothing left running."""

from __future__ import annotations

import time

import pytest

from deploy.layout import Layout
from tests.deploy.cli_helpers import processes_under, tandem

pytestmark = pytest.mark.processes

DEMO_BUDGET_S = 60.0


def test_demo_commits_aborts_and_cleans_up(layout: Layout) -> None:
    began = time.monotonic()
    done = tandem("demo", "--dir", str(layout.root), timeout=DEMO_BUDGET_S)
    elapsed = time.monotonic() - began
    out = done.stdout
    assert "outcome: COMMITTED" in out
    assert "outcome: ABORTED" in out
    assert "audit from the log: committed" in out
    assert "audit from the log: aborted" in out
    assert "PROBLEM" not in out
    assert "no process left" in out
    assert elapsed < DEMO_BUDGET_S
    assert processes_under(layout.root) == []
    assert not layout.root.exists()  # removed after a successful demo
