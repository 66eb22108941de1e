"""CI smoke test: `python -m bench all --quick` runs and writes well-formed results.

It checks the harness, not the figures: every benchmark's JSON has its keys, peers whose
servers are missing are rows that say so, and no process the run started survives it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.processes

BUDGET_S = 150
PEER_BINARIES = {"redis_streams": "redis-server", "nats_jetstream": "nats-server"}


def processes_with(token: str) -> list[int]:
    """Pids whose environment carries `token`: everything the run started, at any depth.

    (Not a TANDEM_* name: the testnet launcher strips those from its children.)
    """
    marker = f"BENCH_SMOKE_TOKEN={token}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
    return found


@pytest.fixture
def token() -> Iterator[str]:
    """A marker in the run's environment; whatever still carries it at teardown is killed."""
    value = uuid.uuid4().hex
    try:
        yield value
    finally:
        for pid in processes_with(value):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def have(binary: str) -> bool:
    return shutil.which(binary) is not None or Path("/usr/sbin", binary).exists()


def test_all_quick_writes_results(tmp_path: Path, token: str) -> None:
    out, work = tmp_path / "results", tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "BENCH_SMOKE_TOKEN": token}
    argv = [sys.executable, "-m", "bench", "all", "--quick", "--out", str(out)]
    argv += ["--workdir", str(work), "--json", str(tmp_path / "all.json")]
    run = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=BUDGET_S)
    assert run.returncode == 0, run.stderr[-3000:]
    assert processes_with(token) == [], "the benchmark left processes behind"
    assert list(work.iterdir()) == [], "the benchmark left its data behind"

    docs = json.loads((tmp_path / "all.json").read_text())
    assert set(docs) == {"sequencer", "latency", "recovery", "state", "swaps", "memory"}
    for name in docs:
        for ext in ("json", "md", "png"):
            assert (out / f"{name}.{ext}").stat().st_size > 0
        assert json.loads((out / f"{name}.json").read_text()) == docs[name]

    seq = docs["sequencer"]
    assert set(seq["ratios"]) == {"vs_grpc_echo", "vs_redis_streams", "vs_nats_jetstream"}
    assert seq["systems"]["tandem"]["available"]
    assert seq["entries_per_s"] > 0
    assert seq["systems"]["grpc_echo"]["available"]
    for peer, binary in PEER_BINARIES.items():
        row = seq["systems"][peer]
        assert row["available"] == have(binary), row
        if not row["available"]:
            assert binary in row["reason"]
            assert seq["ratios"][f"vs_{peer}"] is None
        ceiling = seq["transport_ceilings"][f"vs_{peer}"]
        assert (ceiling is not None and ceiling > 0) == row["available"]

    lat = docs["latency"]
    for key in ("p50_ms", "p99_ms", "p999_ms"):
        assert lat["light"][key] > 0
        assert lat["grpc_echo_light"][key] > 0
    assert lat["half_load"]["p99_ms"] > 0
    assert lat["half_load"]["subscription_lag"]["samples"] > 0
    assert lat["disk_fsync"]["samples"] > 0
    assert lat["disk_fsync"]["p50_ms"] > 0
    commits = lat["store_commit_with_maintenance"]
    assert commits["samples"] > 0
    assert commits["p50_ms"] > 0
    assert set(lat["ratios"]) == {"light_p50_vs_grpc_echo", "light_p99_vs_grpc_echo"}
    floor = lat["light_floor"]
    assert lat["grpc_echo_light"]["p50_ms"] < floor["p50_ms"]
    assert floor["p50_vs_grpc_echo"] > 1

    rec = docs["recovery"]
    assert rec["entries_stored"] >= rec["params"]["entries"]
    assert rec["sequencer_restart_s"] > 0
    assert rec["rss_mb_after_restart"] > 0
    assert rec["sequencer_crash_restart_s"] > 0
    assert rec["rollup"]["restart_from_snapshot_s"] > 0
    assert rec["rollup"]["full_replay_s"] > 0

    state = docs["state"]
    assert [s["accounts"] for s in state["sizes"]] == state["params"]["sizes"]
    assert isinstance(state["growth"]["logarithmic"], bool)

    swaps = docs["swaps"]
    assert swaps["swaps_per_s"] > 0
    assert swaps["p50_ms"] > 0
    assert swaps["htlc_light"]["latency"]["p50_ms"] > 0
    assert swaps["ratios"]["latency_vs_htlc"] > 0
    assert set(swaps["loaded"]["cpu_ms_per_swap"]) == {
        "sequencer",
        "rollup-a",
        "rollup-b",
        "rollup-c",
        "coordinator",
    }
    assert swaps["loaded"]["cpu_ms_per_swap"]["coordinator"] > 0
    mem = docs["memory"]["peak_rss_mb"]
    assert {"sequencer", "coordinator"} <= set(mem)
    assert all(mb > 0 for mb in mem.values())
