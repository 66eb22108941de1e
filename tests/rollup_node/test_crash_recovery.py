"""kill -9 of a rollup node mid-stream: after a restart it reaches the same state root as
an undisturbed read-only replica and as a fresh node replaying the log from genesis."""

from __future__ import annotations

import json
import sqlite3

import grpc

from rollup_client.protocol import codec, tx
from rollup_client.sdk import RollupClient
from rollup_client.wire import sequencer_pb2 as pb
from rollup_client.wire import sequencer_pb2_grpc as pb_grpc
from tests.keys import key
from tests.network import Net, wait_height

from .conftest import CHAIN_ID, GOLD, StartNode

BATCHES, PER_BATCH = 12, 25


def _batches() -> list[list[bytes]]:
    """Transfers from alice to 50 accounts, in nonce order, cut into batches."""
    alice = key("alice")
    out, nonce = [], 0
    for _ in range(BATCHES):
        batch = []
        for _ in range(PER_BATCH):
            to = key(f"user{nonce % 50}").public
            batch.append(tx.Transfer(alice.public, to, GOLD, 1 + nonce % 7, nonce, "alpha"))
            nonce += 1
        out.append([t.sign(alice).encode() for t in batch])
    return out


def _feed(stub: pb_grpc.SequencerServiceStub, datas: list[bytes]) -> int:
    """Submit one signed batch straight to the sequencer; the height it landed at."""
    feeder = key("feeder")
    ids = [codec.entry_id("alpha", d) for d in datas]
    req = pb.SubmitBatchRequest(
        client_key=feeder.public,
        entries=[pb.Entry(namespace="alpha", data=d) for d in datas],
        signature=feeder.sign(codec.batch_digest(CHAIN_ID, ids, False)),
    )
    resp = stub.SubmitBatch(req, timeout=10)
    return max(a.position.height for a in resp.acks)


def test_kill9_restart_matches_replica_and_fresh_replay(
    net: Net, sequencer: str, start_node: StartNode
) -> None:
    primary, primary_target = start_node("alpha", "alpha", "--snapshot-every", "3")
    _, replica_target = start_node("alpha", "alpha-replica", "--replica")
    batches = _batches()
    with grpc.insecure_channel(sequencer) as channel:
        stub = pb_grpc.SequencerServiceStub(channel)
        with RollupClient(primary_target) as c:
            first = _feed(stub, batches[0])
            for b in batches[1:5]:
                _feed(stub, b)
            wait_height(c, first)
        primary.kill9()
        for b in batches[5:]:
            last = _feed(stub, b)

    _, primary_target = start_node("alpha", "alpha", "--snapshot-every", "3")
    _, fresh_target = start_node("alpha", "alpha-fresh", "--replica")
    clients = [RollupClient(t) for t in (primary_target, replica_target, fresh_target)]
    try:
        heights = [wait_height(c, last) for c in clients]
        h = min(heights)
        roots = {c.state_root(h).state_root for c in clients}
        assert len(roots) == 1, "replicas diverged"
        assert len({c.state_root(last).state_root for c in clients}) == 1
        nonces = {c.nonce(key("alice").public) for c in clients}
        assert nonces == {BATCHES * PER_BATCH}
        paid = sum(clients[0].balance(key(f"user{i}").public, GOLD) for i in range(50))
        assert paid == sum(1 + n % 7 for n in range(BATCHES * PER_BATCH))
    finally:
        for c in clients:
            c.close()
    log = (net.dir / "alpha" / "rollup.log").read_text().splitlines()
    events = [json.loads(line)["event"] for line in log]
    assert "restored" in events, "the restarted node did not start from a snapshot"


def test_damaged_snapshots_or_store_fall_back_to_a_replay(net: Net, start_node: StartNode) -> None:
    node, target = start_node("alpha", "alpha", "--snapshot-every", "2")
    alice, bob = key("alice"), key("bob")
    with RollupClient(target) as c:
        r = c.transfer(alice, bob.public, GOLD, 9)
        h = wait_height(c, r.height + 4)
        root = c.state_root(h).state_root
    assert node.stop() == 0
    db_path = net.dir / "alpha" / "rollup.sqlite"
    db = sqlite3.connect(db_path)
    with db:
        assert db.execute("UPDATE snapshots SET data = x'00'").rowcount == 2
    db.close()

    node, target = start_node("alpha", "alpha", "--snapshot-every", "2")
    with RollupClient(target) as c:
        assert c.state_root(h).state_root == root
        assert c.balance(bob.public, GOLD) == 5 + 9
    assert node.stop() == 0
    log = (net.dir / "alpha" / "rollup.log").read_text().splitlines()
    events = [json.loads(line)["event"] for line in log]
    assert events.count("snapshot_unusable") == 2
    assert "restored" not in events

    torn = bytearray(db_path.read_bytes())
    torn[len(torn) // 2 :] = bytes(len(torn) - len(torn) // 2)
    db_path.write_bytes(bytes(torn))
    _, target = start_node("alpha", "alpha", "--snapshot-every", "2")
    with RollupClient(target) as c:
        assert c.state_root(h).state_root == root
        assert c.balance(bob.public, GOLD) == 5 + 9
    log = (net.dir / "alpha" / "rollup.log").read_text().splitlines()
    assert "store_damaged" in [json.loads(line)["event"] for line in log]
    assert (net.dir / "alpha" / "rollup.sqlite.damaged").exists()
