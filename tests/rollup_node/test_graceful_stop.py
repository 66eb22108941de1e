"""SIGTERM under load: the node drains. Every transaction it acknowledged is in the log at
the acknowledged position; the rest got an error; the process exits 0."""

from __future__ import annotations

import threading
import time

from rollup_client.protocol import tx
from rollup_client.protocol.errors import TandemError
from rollup_client.sdk import RollupClient, Submitted
from tests.keys import key

from .conftest import GOLD, StartNode

SENDERS = 6


def test_sigterm_under_load_answers_what_it_accepted(start_node: StartNode) -> None:
    node, target = start_node("alpha")
    _, replica = start_node("alpha", "replica", "--replica")
    acked: list[Submitted] = []
    errors: list[TandemError] = []
    enough = threading.Event()

    def submit(i: int) -> None:
        sender = key(f"sender{i}")
        with RollupClient(target, timeout=10) as c:
            for n in range(10_000):
                t = tx.Transfer(sender.public, key("bob").public, GOLD, 1, n, "alpha")
                try:
                    acked.append(c.submit(t.sign(sender)))
                except TandemError as exc:
                    errors.append(exc)
                    return
                if len(acked) >= 60:
                    enough.set()

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(SENDERS)]
    for t in threads:
        t.start()
    try:
        assert enough.wait(30), "no load reached the node"
        t0 = time.monotonic()
        assert node.stop() == 0
        assert time.monotonic() - t0 < 8
    finally:
        for t in threads:
            t.join(30)
    assert len(errors) == SENDERS  # every sender ended on an error, none hung
    with RollupClient(replica) as r:
        for a in acked:
            got = r.wait_receipt(a.tx_id, 20)
            assert (got.height, got.index) == (a.height, a.index)
