"""`tandem testnet` end to end: real processes on loopback, started and stopped by the CLI.

Every test checks that no process of its testnet is left; the fixture kills any survivor
so a failing test cannot leak processes into the rest of the run.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest

from deploy import state
from deploy.layout import Layout
from rollup_client.protocol.keys import SigningKey
from rollup_client.sdk import RollupClient
from rollup_client.wire import sequencer_pb2, sequencer_pb2_grpc
from tests.deploy.cli_helpers import CLI_TIMEOUT_S, inprocess, tandem, wait_for

pytestmark = pytest.mark.processes


def _alive(testnet: state.TestnetState) -> list[int]:
    return [p.pid for p in testnet.running()]


def _head(addr: str, height: int) -> bytes:
    with grpc.insecure_channel(addr) as ch:
        stub = sequencer_pb2_grpc.SequencerServiceStub(ch)
        block = stub.GetBlock(sequencer_pb2.GetBlockRequest(height=height), timeout=5)
    return bytes(block.block.header.hash)


def _balances(
    testnet: state.TestnetState, alice: bytes, bob: bytes
) -> dict[str, tuple[int, int, str]]:
    """rollup -> (alice's, bob's balance, asset) for the asset each test swap moves there."""
    out = {}
    for rid, asset in (("rollup-a", "USD"), ("rollup-b", "EUR")):
        with RollupClient(testnet.rollups()[rid], timeout=10) as node:
            out[rid] = (node.balance(alice, asset), node.balance(bob, asset), asset)
    return out


def _status(layout: Layout) -> dict[str, Any]:
    out = inprocess("status", "--dir", str(layout.root), "--json")
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


def test_up_status_down_then_resume_same_chain(layout: Layout) -> None:
    d = str(layout.root)
    up = tandem("testnet", "up", "--dir", d, "--rollups", "2", "--detach", "--json")
    first = state.TestnetState.from_json(json.loads(up.stdout))
    assert [p.name for p in first.processes] == ["sequencer", "rollup-a", "rollup-b", "coordinator"]
    assert len(_alive(first)) == 4

    again = tandem("testnet", "up", "--dir", d, "--detach", check=False)
    assert again.returncode == 1
    assert "already running" in again.stderr

    swapped = tandem(
        "swap",
        "run",
        "--leg",
        "rollup-a:alice:bob:7:USD",
        "--leg",
        "rollup-b:bob:alice:3:EUR",
        "--timeout",
        "10",
        "--coordinator",
        first.coordinator,
        "--keys",
        first.keys_dir,
        "--json",
    )
    assert json.loads(swapped.stdout)["state"] == "committed"
    alice = SigningKey.load(Path(first.accounts["alice"])).public
    bob = SigningKey.load(Path(first.accounts["bob"])).public
    want = {"rollup-a": (993, 1007, "USD"), "rollup-b": (1003, 997, "EUR")}
    wait_for(lambda: _balances(first, alice, bob) == want, CLI_TIMEOUT_S, "the swap to settle")

    doc = _status(layout)
    height = doc["sequencer"]["height"]
    assert doc["sequencer"]["entries_per_s"] > 0
    assert set(doc["rollups"]) == {"rollup-a", "rollup-b"}
    assert all(r is not None and r["height"] >= 0 for r in doc["rollups"].values())
    assert doc["coordinator_serving"]
    head = _head(first.sequencer, height)
    assert doc["sequencer"]["head_hash"] == head.hex()
    assert "tandem testnet" in inprocess("status", "--dir", d).stdout

    down = tandem("testnet", "down", "--dir", d)
    assert "stopped" in down.stdout
    assert _alive(first) == []

    nothing = inprocess("down", "--dir", d, code=1)
    assert "no testnet is running" in nothing.stderr
    assert '"event": "ready"' in inprocess("logs", "sequencer", "--dir", d).stdout
    listed = json.loads(inprocess("accounts", "--dir", d, "--json").stdout)
    assert listed["alice"]["public_key"] == alice.hex()

    up2 = tandem("testnet", "up", "--dir", d, "--detach", "--json")
    second = state.TestnetState.from_json(json.loads(up2.stdout))
    try:
        assert [p.name for p in second.processes] == [p.name for p in first.processes]
        assert _head(second.sequencer, height) == head
        assert _balances(second, alice, bob) == want
    finally:
        tandem("testnet", "down", "--dir", d)
    assert _alive(second) == []


def test_foreground_up_stops_everything_on_ctrl_c(layout: Layout, tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "deploy", "testnet", "up", "--dir", str(layout.root)]
    err_path = tmp_path / "up.err"
    with (
        (tmp_path / "up.out").open("w") as out,
        err_path.open("w") as err,
        subprocess.Popen([*argv, "--rollups=1"], stdout=out, stderr=err) as cli,
    ):
        try:
            wait_for(
                lambda: layout.state.exists() or cli.poll() is not None,
                CLI_TIMEOUT_S,
                "testnet.json",
            )
            assert cli.poll() is None, err_path.read_text()
            recorded = state.load(layout)
            assert recorded is not None
            assert len(_alive(recorded)) == 3
            cli.send_signal(signal.SIGINT)
            cli.wait(timeout=CLI_TIMEOUT_S)
        finally:
            if cli.poll() is None:
                cli.kill()
    assert cli.returncode == 0, err_path.read_text()
    assert "no process left" in err_path.read_text()
    assert _alive(recorded) == []
