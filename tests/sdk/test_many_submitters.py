"""Several submitter processes at once, each also subscribed: one global order for all."""

from __future__ import annotations

import json
import sys
from contextlib import ExitStack
from pathlib import Path

from tests import procs
from tests.procs import Sequencer

WORKERS = 3
BATCHES, SIZE = 20, 5
SUBMITTER = Path(__file__).with_name("submitter.py")


def test_concurrent_submitters_all_see_the_same_global_order(sequencer: Sequencer) -> None:
    names = [f"w{i}" for i in range(WORKERS)]
    key_pem = sequencer.data_dir / "keys" / "client.pem"
    g = sequencer.genesis
    with ExitStack() as stack:
        workers = [
            stack.enter_context(
                procs.started(
                    [
                        sys.executable,
                        str(SUBMITTER),
                        sequencer.target,
                        str(key_pem),
                        g.chain_id,
                        g.sequencer_key.hex(),
                        ns,
                        ",".join(names),
                        str(BATCHES),
                        str(SIZE),
                    ],
                    stdin=True,
                )
            )
            for ns in names
        ]
        for w in workers:  # every one is subscribed: start them together
            assert w.popen.stdin is not None
            w.popen.stdin.write(b"go\n")
            w.popen.stdin.flush()
        for w in workers:
            assert w.wait(procs.READY_TIMEOUT_S) == 0
        reports = [json.loads(w.output()) for w in workers]

    acks = [tuple(a) for r in reports for a in r["acks"]]
    assert len(acks) == WORKERS * BATCHES * SIZE
    assert len({a[0] for a in acks}) == len(acks)
    views = [{h: [tuple(p) for p in entries] for h, entries in r["blocks"]} for r in reports]
    for view in views:  # each saw every block from 0, once, in order
        assert list(view) == list(range(len(view)))
    common = min(len(v) for v in views)
    first = [views[0][h] for h in range(common)]
    for view in views[1:]:
        assert [view[h] for h in range(common)] == first
    for view in views:
        logged = {(eid, h, i) for h, entries in view.items() for i, eid in entries}
        assert logged == set(acks)  # every ack at its position, nothing else, nothing twice
    # Each worker waits for its previous batch, so its batches span several blocks.
    assert len({h for _, h, _ in acks}) >= BATCHES
