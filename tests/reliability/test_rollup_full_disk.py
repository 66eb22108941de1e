"""A rollup node that runs out of space (RLIMIT_FSIZE on its process) while applying blocks.

Its store is derived from the log: every root it served before must be the replica's, it
must stop with a one-line `error:` (not a traceback) when a write fails, and restarted
with space it must catch up to exactly the state root an undisturbed replica computes.
"""

from __future__ import annotations

import sys
import time

import grpc

from rollup_client.protocol.errors import TandemError
from rollup_client.sdk import RollupClient
from rollup_client.wire import sequencer_pb2_grpc as pb_grpc
from tests.keys import key
from tests.network import Net, node_argv, wait_height
from tests.procs import Proc
from tests.reliability.storage import FSIZE_LIMITED, feed_transfers
from tests.rollup_node.conftest import StartNode

LIMIT_BYTES = 256 * 1024


def test_a_node_out_of_space_recovers_the_replica_root(
    net: Net, sequencer: str, start_node: StartNode, procs: list[Proc]
) -> None:
    _, replica_target = start_node("alpha", "alpha-replica", "--replica")
    argv = node_argv(net, "alpha")
    limited = Proc(
        [sys.executable, "-c", FSIZE_LIMITED, str(LIMIT_BYTES), *argv], net.dir / "full.err"
    )
    procs.append(limited)
    target = limited.ready()["listen"]
    with grpc.insecure_channel(sequencer) as channel, RollupClient(replica_target) as replica:
        stub = pb_grpc.SequencerServiceStub(channel)
        sent, last, checked = 0, 0, 0
        limit = time.monotonic() + 30
        with RollupClient(target, timeout=2.0) as c:
            while limited.proc.poll() is None:
                assert time.monotonic() < limit, "the node never ran out of space"
                last = feed_transfers(stub, sent, 100)
                sent += 100
                try:
                    h = c.status().height
                    served = c.state_root(h).state_root if 0 <= h <= last else None
                except TandemError:
                    continue  # it is going down
                if served is not None:
                    wait_height(replica, h)
                    assert served == replica.state_root(h).state_root
                    checked += 1
        err = (net.dir / "full.err").read_text()
        assert limited.proc.wait() == 1, err
        assert "error: " in err, err
        assert "Traceback" not in err, err
        assert "disk" in err, err
        assert "cannot rollback" not in err, err
        assert checked >= 1
        wait_height(replica, last)
        _, again = start_node("alpha", "alpha")
        with RollupClient(again) as c:
            wait_height(c, last)
            assert c.state_root(last).state_root == replica.state_root(last).state_root
            assert c.nonce(key("alice").public) == sent
