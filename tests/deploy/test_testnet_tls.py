"""A testnet on mutual TLS only: the demo swaps end to end, the CLI reaches it with the client
certificate `testnet env` exports, and every server refuses a client without a certificate.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from deploy import state, tls
from deploy.layout import Layout
from rollup_client.protocol.errors import InvalidArgument
from sequencer import config as sequencer_config
from tests.deploy.cli_helpers import CLI_TIMEOUT_S, inprocess, processes_under, tandem

DEMO_BUDGET_S = 60.0
# One method per server, to send bytes that are no request at all.
METHODS = {
    "sequencer": "/tandem.v1.SequencerService/Status",
    "rollup": "/tandem.v1.RollupService/Status",
    "coordinator": "/tandem.v1.SwapService/Get",
}
LEGS = ("--leg", "rollup-a:alice:bob:7:USD", "--leg", "rollup-b:bob:alice:3:EUR")


def _health(channel: grpc.Channel) -> int:
    with channel:
        # types-grpcio-health-checking's HealthStub declares no Check (grpcio sets it per stub).
        resp = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)  # type: ignore[attr-defined]
    return int(resp.status)


@pytest.mark.processes
def test_demo_over_mutual_tls(layout: Layout) -> None:
    began = time.monotonic()
    done = tandem("demo", "--tls", "--dir", str(layout.root), timeout=DEMO_BUDGET_S)
    out = done.stdout
    assert "over mutual TLS" in out
    assert "outcome: COMMITTED" in out
    assert "outcome: ABORTED" in out
    assert "audit from the log: committed" in out
    assert "audit from the log: aborted" in out
    assert "PROBLEM" not in out
    assert "no process left" in out
    assert time.monotonic() - began < DEMO_BUDGET_S
    assert processes_under(layout.root) == []


def _exports(d: str) -> dict[str, str]:
    lines = inprocess("env", "--dir", d).stdout.splitlines()
    pairs = [shlex.split(line.removeprefix("export "))[0].split("=", 1) for line in lines]
    return {k: v for k, v in pairs}


@pytest.mark.processes
def test_tls_testnet_serves_certified_clients_only(layout: Layout) -> None:
    d = str(layout.root)
    up = tandem("testnet", "up", "--tls", "--dir", d, "--rollups", "2", "--detach", "--json")
    testnet = state.TestnetState.from_json(json.loads(up.stdout))
    try:
        assert testnet.tls_dir == str(layout.root / "tls")
        for p in testnet.processes:
            assert "--tls-cert" in p.argv, p.name
        client = tls.client_files(testnet)
        assert client is not None
        for p in testnet.processes:
            certified = grpc.secure_channel(p.listen, client.channel_credentials())
            assert _health(certified) == health_pb2.HealthCheckResponse.SERVING
            anonymous = grpc.ssl_channel_credentials(client.ca.read_bytes())
            for channel in (
                grpc.secure_channel(p.listen, anonymous),
                grpc.insecure_channel(p.listen),
            ):
                with pytest.raises(grpc.RpcError) as refused:
                    _health(channel)
                assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, p.name
            certified = grpc.secure_channel(p.listen, client.channel_credentials())
            raw: grpc.UnaryUnaryMultiCallable[bytes, bytes] = certified.unary_unary(METHODS[p.role])
            with certified, pytest.raises(grpc.RpcError) as garbage:
                raw(b"\xff\xff", timeout=5)
            assert garbage.value.code() == grpc.StatusCode.INVALID_ARGUMENT, p.name
            assert "not a valid" in str(garbage.value.details()), p.name

        doc = json.loads(inprocess("status", "--dir", d, "--json").stdout)
        assert doc["sequencer"] is not None
        assert doc["sequencer"]["height"] >= 0
        assert all(r is not None for r in doc["rollups"].values())
        assert doc["coordinator_serving"]

        env = _exports(d)
        assert env["TANDEM_TLS_CERT"] == str(client.cert)
        swapped = subprocess.run(
            [sys.executable, "-m", "deploy", "swap", "run", "--json", "--timeout", "10", *LEGS],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_S,
            check=False,
        )
        assert swapped.returncode == 0, swapped.stderr
        assert json.loads(swapped.stdout)["state"] == "committed"
    finally:
        tandem("testnet", "down", "--dir", d)
    assert testnet.running() == []


def test_sequencer_tls_files_from_toml(tmp_path: Path) -> None:
    toml = tmp_path / "sequencer.toml"
    toml.write_text('tls_ca = "ca.pem"\ntls_cert = "s.crt"\ntls_key = "s.key"\n')
    cfg = sequencer_config.load(toml, tmp_path)
    assert cfg.tls is not None
    assert (cfg.tls.ca, cfg.tls.cert, cfg.tls.key) == (Path("ca.pem"), Path("s.crt"), Path("s.key"))
    assert sequencer_config.load(None, tmp_path).tls is None

    toml.write_text('tls_ca = "ca.pem"\n')
    with pytest.raises(InvalidArgument, match="all three"):
        sequencer_config.load(toml, tmp_path)
