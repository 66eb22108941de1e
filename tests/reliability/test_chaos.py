"""The CI chaos run: `tandem chaos --duration 60` as a real command, every invariant kept.

One test, marked `chaos` (the longest here: start-up, the run, settling, the check). The
report must show faults really happened, transfers were acknowledged, swaps committed and
aborted, and the schedule it ran must be the one its seed defines.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from deploy import chaos_core
from deploy.chaos_net import ROLLUPS
from deploy.layout import COORDINATOR, SEQUENCER
from tests.procs import tandem

pytestmark = pytest.mark.processes

DURATION_S = 60
SEED = 2


@pytest.mark.chaos
def test_a_60_second_chaos_run_keeps_every_invariant(tmp_path: Path) -> None:
    report = tmp_path / "chaos.json"
    out = subprocess.run(
        tandem(
            "chaos",
            "--duration",
            str(DURATION_S),
            "--seed",
            str(SEED),
            "--json",
            str(report),
            "--dir",
            str(tmp_path / "run"),
        ),
        capture_output=True,
        text=True,
        timeout=DURATION_S + 240,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    doc = json.loads(report.read_text())
    assert doc["violations"] == []
    assert doc["kills"] >= 1, doc
    assert doc["entries_acked"] > 0, doc
    assert doc["swaps_committed"] > 0, doc
    assert doc["swaps_aborted"] > 0, doc
    assert doc["invariants_checked"] > doc["entries_acked"]
    targets = [SEQUENCER, COORDINATOR, *ROLLUPS]
    want = chaos_core.schedule(SEED, DURATION_S, targets)
    assert [chaos_core.Fault(**f) for f in doc["schedule"]] == want
    assert json.loads(out.stdout)["violations"] == 0
