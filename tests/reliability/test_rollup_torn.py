"""Torn writes in a rollup node's SQLite store after a kill -9 mid-stream.

A node applies a stream of transfers and is killed -9; copies of its data dir are torn
(its write-ahead log cut at commit boundaries, mid-frame and at zero, bytes overwritten
late in the log, a page of the main file overwritten) and each is started as a real node
process. The node's store is derived from the log, so each copy must either catch up to
exactly the state root an undisturbed replica computes at the same height, or refuse to
start with a one-line `error:` naming the problem; it must never serve a wrong root.
"""

from __future__ import annotations

import random
import shutil

import grpc

from rollup_client.sdk import RollupClient
from rollup_client.wire import sequencer_pb2_grpc as pb_grpc
from tests.keys import key
from tests.network import Net, node_argv, wait_height
from tests.procs import Proc
from tests.reliability.storage import commit_ends, feed_transfers, overwrite, truncate
from tests.rollup_node.conftest import StartNode

WAL = "rollup.sqlite-wal"


def _tears(
    wal: bytes, db_size: int, rng: random.Random
) -> dict[str, tuple[str, int, bytes | None]]:
    """Named damage: (file, offset, junk or None to truncate there)."""
    ends = commit_ends(wal)
    assert len(ends) >= 3, "the node committed too little to tear"
    return {
        "wal-empty": (WAL, 0, None),
        "wal-first-commit": (WAL, ends[0], None),
        "wal-middle-commit": (WAL, ends[len(ends) // 2], None),
        "wal-mid-frame": (WAL, ends[-2] + 24 + 1000, None),
        "wal-last-byte": (WAL, len(wal) - 1, None),
        "wal-junk": (WAL, rng.randrange(ends[-2], len(wal) - 16), rng.randbytes(16)),
        "db-junk": ("rollup.sqlite", db_size - 4096 + rng.randrange(0, 4000), rng.randbytes(16)),
    }


def test_torn_node_stores_recover_the_replica_root_or_refuse(
    net: Net, sequencer: str, start_node: StartNode, procs: list[Proc]
) -> None:
    primary, _ = start_node("alpha", "alpha", "--snapshot-every", "4")
    _, replica_target = start_node("alpha", "alpha-replica", "--replica")
    with grpc.insecure_channel(sequencer) as channel, RollupClient(replica_target) as replica:
        stub = pb_grpc.SequencerServiceStub(channel)
        sent = 0
        for _ in range(8):
            feed_transfers(stub, sent, 30)
            sent += 30
        primary.kill9()
        last = feed_transfers(stub, sent, 30)
        wait_height(replica, last)
        rng = random.Random(17)
        wal = (net.dir / "alpha" / WAL).read_bytes()
        tears = _tears(wal, (net.dir / "alpha" / "rollup.sqlite").stat().st_size, rng)
        started: dict[str, Proc] = {}
        for name, (file, offset, junk) in tears.items():
            d = net.dir / name
            shutil.copytree(net.dir / "alpha", d, ignore=shutil.ignore_patterns("*-shm"))
            if junk is None:
                truncate(d / file, offset)
            else:
                overwrite(d / file, offset, junk)
            p = Proc(node_argv(net, "alpha", "--replica", name=name), net.dir / f"{name}.err")
            procs.append(p)
            started[name] = p
        outcomes: dict[str, str] = {}
        want = replica.state_root(last).state_root
        for name, p in started.items():
            try:
                target = p.ready()["listen"]
            except AssertionError:
                err = (net.dir / f"{name}.err").read_text()
                assert p.proc.returncode == 1, err[-2000:]
                assert "error: " in err, err[-2000:]
                assert "Traceback" not in err, err[-2000:]
                outcomes[name] = "refused"
                continue
            with RollupClient(target) as c:
                wait_height(c, last)
                assert c.state_root(last).state_root == want, name
                assert c.nonce(key("alice").public) == sent + 30
            outcomes[name] = "recovered"
    assert sum(o == "recovered" for o in outcomes.values()) >= 5, outcomes
