"""The real `tandem sequencer` process on loopback: CLI contract, SIGTERM, kill -9, damage."""

from __future__ import annotations

import json
import signal
import sqlite3
import threading
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from rollup_client.protocol import block, codec
from rollup_client.protocol.genesis import Genesis
from rollup_client.protocol.keys import SigningKey
from rollup_client.wire import sequencer_pb2 as pb
from rollup_client.wire import sequencer_pb2_grpc as pb_grpc
from tests import procs
from tests.sequencer.helpers import make_net, signed_batch
from tests.sequencer.proc import running, tandem

pytestmark = pytest.mark.processes

TIMEOUT = 10.0


def test_init_then_run_honours_the_ready_contract_and_sigterm_exits_zero(tmp_path: Path) -> None:
    data = tmp_path / "seq"
    out = tandem("sequencer", "init", "--data-dir", str(data), "--chain-id", "dev-1", "--json")
    assert out.returncode == 0, out.stderr
    paths = json.loads(out.stdout)
    again = tandem("sequencer", "init", "--data-dir", str(data))
    assert again.returncode != 0
    assert "exists already" in again.stderr
    genesis = Genesis.load(Path(paths["genesis"]))
    client = SigningKey.load(Path(paths["client_key"]))
    assert genesis.client(client.public) is not None

    with running(data, "--metrics-listen", "127.0.0.1:0", "--heartbeat-ms", "50") as proc:
        assert (data / "endpoint").read_text().strip() == proc.listen
        channel, stub = proc.stub()
        health = health_pb2_grpc.HealthStub(channel)
        # types-grpcio-health-checking's HealthStub declares no Check (grpcio sets it per stub).
        resp = health.Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT)  # type: ignore[attr-defined]
        assert resp.status == health_pb2.HealthCheckResponse.SERVING
        items = [("rollup-a", b"hello")]
        digest = codec.batch_digest("dev-1", [codec.entry_id(*items[0])], False)
        ack = stub.SubmitBatch(
            pb.SubmitBatchRequest(
                client_key=client.public,
                entries=[pb.Entry(namespace="rollup-a", data=b"hello")],
                signature=client.sign(digest),
            ),
            timeout=TIMEOUT,
        ).acks[0]
        with urllib.request.urlopen(f"http://{proc.metrics}/metrics", timeout=TIMEOUT) as r:
            text = r.read().decode()
        assert "tandem_sequencer_height" in text
        assert "tandem_sequencer_entries_total 1.0" in text
        channel.close()
        proc.popen.send_signal(signal.SIGTERM)
        assert proc.popen.wait(timeout=TIMEOUT) == 0
    events = [
        json.loads(line)["event"] for line in (data / "sequencer.log").read_text().splitlines()
    ]
    assert events[:2] == ["genesis_block", "ready"]
    assert events[-2:] == ["draining", "stopped"]

    with running(data) as proc:
        channel, stub = proc.stub()
        got = stub.GetEntry(pb.GetEntryRequest(entry_id=ack.entry_id), timeout=TIMEOUT)
        assert got.position == ack.position
        channel.close()
    restarted = [json.loads(line) for line in (data / "sequencer.log").read_text().splitlines()]
    assert any(e["event"] == "recovered" and e["height"] >= 1 for e in restarted)


def test_kill_9_under_load_loses_no_acknowledged_entry(tmp_path: Path) -> None:
    net = make_net(tmp_path)
    acked: dict[bytes, tuple[int, int]] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def submitter(n: int, listen: str) -> None:
        channel = grpc.insecure_channel(listen)
        stub = pb_grpc.SequencerServiceStub(channel)
        seq = 0
        try:
            while not stop.is_set():
                items = [
                    ("alpha" if i % 2 else "beta", f"{n}-{seq}-{i}".encode()) for i in range(20)
                ]
                seq += 1
                try:
                    resp = stub.SubmitBatch(signed_batch(net.client, items), timeout=TIMEOUT)
                except grpc.RpcError:
                    return
                with lock:
                    for a in resp.acks:
                        acked[a.entry_id] = (a.position.height, a.position.index)
        finally:
            channel.close()

    with running(tmp_path, "--heartbeat-ms", "50") as proc:
        threads = [threading.Thread(target=submitter, args=(n, proc.listen)) for n in range(3)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while len(acked) < 3000 and time.monotonic() < deadline and proc.popen.poll() is None:
            time.sleep(0.01)
        proc.popen.send_signal(signal.SIGKILL)
        proc.popen.wait(timeout=TIMEOUT)
        stop.set()
        for t in threads:
            t.join(timeout=TIMEOUT)
    assert len(acked) >= 3000, "load never built up"

    with running(tmp_path, "--heartbeat-ms", "50") as proc:
        channel, stub = proc.stub()
        for eid, pos in acked.items():
            got = stub.GetEntry(pb.GetEntryRequest(entry_id=eid), timeout=TIMEOUT)
            assert (got.position.height, got.position.index) == pos
        head = stub.Status(pb.StatusRequest(), timeout=TIMEOUT).height
        prev = codec.ZERO_HASH
        for h in range(head + 1):
            fb = stub.GetBlock(pb.GetBlockRequest(height=h), timeout=TIMEOUT).block
            v = block.verify_block(fb, net.genesis.sequencer_key, [])
            assert v.height == h
            assert v.header.prev_hash == prev
            prev = v.hash
        fresh = stub.SubmitBatch(signed_batch(net.client, [("alpha", b"after")]), timeout=TIMEOUT)
        assert fresh.acks[0].position.height > head
        channel.close()


def test_a_damaged_store_refuses_to_start_with_a_clear_message(tmp_path: Path) -> None:
    make_net(tmp_path)
    with running(tmp_path, "--heartbeat-ms", "10") as proc:
        proc.popen.send_signal(signal.SIGTERM)
        assert proc.popen.wait(timeout=TIMEOUT) == 0
    with sqlite3.connect(tmp_path / "blocks.sqlite") as db:
        db.execute(
            "UPDATE headers SET time_ms = time_ms + 1 "
            "WHERE height = (SELECT MAX(height) FROM headers)"
        )
    out = tandem("sequencer", "run", "--data-dir", str(tmp_path), "--listen", "127.0.0.1:0")
    assert out.returncode == 1
    assert "hash does not match" in out.stderr
    assert out.stdout == ""


def test_a_toml_listen_is_used_unless_the_flag_is_given(tmp_path: Path) -> None:
    make_net(tmp_path)
    cfg = tmp_path / "seq.toml"
    cfg.write_text('listen = "localhost:0"\n')
    run = procs.tandem("sequencer", "run", "--data-dir", str(tmp_path), "--config", str(cfg))
    for flag, host in (((), "localhost"), (("--listen", "127.0.0.1:0"), "127.0.0.1")):
        with procs.started([*run, *flag]) as proc:
            assert proc.ready["listen"].rpartition(":")[0] == host


def test_run_takes_an_outside_genesis_key_and_toml_config(tmp_path: Path) -> None:
    outside = tmp_path / "deployer"
    net = make_net(outside)
    data = tmp_path / "data"
    cfg = tmp_path / "seq.toml"
    cfg.write_text("heartbeat_ms = 20\n[limits]\nmax_batch_entries = 7\n")
    args = ("--config", str(cfg), "--genesis", str(outside / "genesis.json"))
    with running(data, *args, "--key", str(outside / "keys" / "sequencer.pem")) as proc:
        channel, stub = proc.stub()
        st = stub.Status(pb.StatusRequest(), timeout=TIMEOUT)
        assert st.limits.max_batch_entries == 7
        assert st.sequencer_key == net.genesis.sequencer_key
        ack = stub.SubmitBatch(signed_batch(net.limited, [("alpha", b"x")]), timeout=TIMEOUT)
        assert ack.acks[0].position.height >= 1
        channel.close()
        proc.popen.send_signal(signal.SIGTERM)
        assert proc.popen.wait(timeout=TIMEOUT) == 0
    assert not (data / "genesis.json").exists()
    assert (data / "endpoint").exists()
