"""`tandem rollup` commands, the metrics endpoint, receipts of transactions sent elsewhere,
and a clean exit on SIGTERM."""

from __future__ import annotations

import json
import subprocess
import urllib.request

import grpc
import pytest

from rollup_client.protocol import codec, tx
from rollup_client.protocol.errors import FailedPrecondition
from rollup_client.sdk import RollupClient
from rollup_client.wire import sequencer_pb2 as pb
from rollup_client.wire import sequencer_pb2_grpc as pb_grpc
from tests.keys import key
from tests.network import Net, node_argv
from tests.procs import tandem

from .conftest import CHAIN_ID, FUNDS, GOLD, SILVER, StartNode


def _tandem(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        tandem("rollup", *args), capture_output=True, text=True, timeout=60, check=False
    )


def test_cli_status_balance_transfer(net: Net, start_node: StartNode) -> None:
    _, target = start_node("alpha")
    bob = key("bob").public.hex()
    out = _tandem(
        "transfer",
        bob,
        "10",
        GOLD,
        "--key",
        str(net.key_paths["alice"]),
        "--rollup",
        target,
        "--json",
    )
    assert out.returncode == 0, out.stderr
    sent = json.loads(out.stdout)
    assert sent["ok"] is True
    out = _tandem("receipt", sent["tx_id"], "--rollup", target, "--json")
    assert json.loads(out.stdout)["state"] == "executed", out.stderr
    out = _tandem(
        "transfer",
        bob,
        "999",
        "platinum",
        "--key",
        str(net.key_paths["alice"]),
        "--rollup",
        target,
        "--json",
    )
    assert out.returncode == 3
    assert "unknown asset" in json.loads(out.stdout)["reason"]
    out = _tandem("balance", bob, "--rollup", target, "--json")
    assert json.loads(out.stdout) == {GOLD: 15, SILVER: 0}
    out = _tandem("status", "--rollup", target, "--json")
    assert json.loads(out.stdout)["rollup"] == "alpha"
    out = _tandem("balance", "beef", "--rollup", target)
    assert out.returncode == 1
    assert "32-byte public key" in out.stderr


def test_metrics_external_receipts_replica_and_sigterm(
    net: Net, sequencer: str, start_node: StartNode
) -> None:
    node, target = start_node("alpha", "alpha", "--metrics-listen", "127.0.0.1:0")
    _, replica = start_node("alpha", "replica", "--replica")
    alice, bob = key("alice"), key("bob")
    stx = tx.Transfer(alice.public, bob.public, GOLD, 4, 0, "alpha").sign(alice)
    with grpc.insecure_channel(sequencer) as channel:  # sent straight to the sequencer
        feeder = key("feeder")
        digest = codec.batch_digest(CHAIN_ID, [stx.entry_id], False)
        pb_grpc.SequencerServiceStub(channel).SubmitBatch(
            pb.SubmitBatchRequest(
                client_key=feeder.public,
                entries=[pb.Entry(namespace="alpha", data=stx.encode())],
                signature=feeder.sign(digest),
            ),
            timeout=10,
        )
    with RollupClient(target) as c, RollupClient(replica) as r:
        got = c.wait_receipt(stx.entry_id, 20)
        assert got.ok
        assert r.wait_receipt(stx.entry_id, 20) == got
        assert r.balance(alice.public, GOLD) == FUNDS - 4
        with pytest.raises(FailedPrecondition, match="replica"):
            r.transfer(alice, bob.public, GOLD, 1)

    metrics_at = node.ready_doc["metrics"]
    body = urllib.request.urlopen(f"http://{metrics_at}/metrics", timeout=10).read().decode()
    assert 'tandem_rollup_txs_applied_total{rollup="alpha"} 1.0' in body
    assert "tandem_rollup_applied_height" in body
    assert "tandem_rollup_lag_blocks" in body
    assert node.stop() == 0


def test_port_in_use_is_a_clear_error(net: Net, sequencer: str) -> None:
    taken = ("--listen", sequencer)  # by the sequencer itself
    argv = node_argv(net, "alpha", *taken)
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 1
    assert f"cannot listen on {sequencer}" in out.stderr


def test_run_reads_a_config_file_that_flags_override(net: Net, start_node: StartNode) -> None:
    path = net.dir / "alpha.toml"
    path.write_text('[rollup]\nrollup_id = "beta"\nmetrics_listen = "127.0.0.1:0"\n')
    node, target = start_node("alpha", None, "--config", str(path))
    assert node.ready_doc["metrics"].startswith("127.0.0.1:")  # from the file
    with RollupClient(target, timeout=10) as c:
        assert c.status().rollup_id == "alpha"  # --id wins over the file
