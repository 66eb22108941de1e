"""`tandem demo` end to end: exit 0, both outcomes printed, nothing left running."""

from __future__ import annotations

import re
import time
from pathlib import Path

from tests.deploy.cli_helpers import processes_under, tandem

DEMO_BUDGET_S = 60.0


def test_demo_commits_aborts_and_cleans_up() -> None:
    began = time.monotonic()
    done = tandem("demo", timeout=DEMO_BUDGET_S)
    elapsed = time.monotonic() - began
    out = done.stdout
    assert "outcome: COMMITTED" in out
    assert "outcome: ABORTED" in out
    assert "audit from the log: committed" in out
    assert "audit from the log: aborted" in out
    assert "PROBLEM" not in out
    assert elapsed < DEMO_BUDGET_S
    match = re.search(r"testnet in (\S+) \.\.\.", out)
    assert match, out
    assert processes_under(Path(match.group(1))) == []
    assert not Path(match.group(1)).exists()  # removed after a successful demo
