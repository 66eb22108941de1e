"""A submitter process for the multi-client test: subscribes, submits on "go", reports.

    python submitter.py TARGET KEY_PEM CHAIN_ID SEQUENCER_KEY_HEX NAMESPACE WATCH BATCHES SIZE

Subscribes from height 0 to the comma-separated WATCH namespaces, prints the ready line
once the stream delivers, submits BATCHES batches of SIZE entries to NAMESPACE when a
line arrives on stdin, and keeps reading until it has seen as many entries as all
submitters together write (len(WATCH) * BATCHES * SIZE). Then it prints one JSON line:
its acks and, per block, the (index, entry id) pairs it observed.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

from rollup_client.protocol.keys import SigningKey
from rollup_client.sdk import SequencerClient

SUBSCRIBE_DEADLINE_S = 60.0


def main(argv: list[str]) -> None:
    target, key_pem, chain_id, seq_key, ns, watch_arg, batches, size = argv
    watch = watch_arg.split(",")
    expect = len(watch) * int(batches) * int(size)
    client = SequencerClient(
        target,
        SigningKey.load(Path(key_pem)),
        chain_id=chain_id,
        sequencer_key=bytes.fromhex(seq_key),
    )
    blocks: list[tuple[int, list[tuple[int, str]]]] = []
    streaming, done = threading.Event(), threading.Event()

    def follow() -> None:
        seen = 0
        for b in client.subscribe(watch):
            blocks.append((b.height, [(e.index, e.id.hex()) for e in b.entries]))
            streaming.set()
            seen += len(b.entries)
            if seen >= expect:
                break
        done.set()

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    if not streaming.wait(SUBSCRIBE_DEADLINE_S):
        raise SystemExit("the subscription never delivered a block")
    print(json.dumps({"event": "ready"}), flush=True)
    sys.stdin.readline()
    acks = []
    for i in range(int(batches)):
        batch = [(ns, f"{ns}/{i}/{j}".encode()) for j in range(int(size))]
        acks += [(a.entry_id.hex(), a.height, a.index) for a in client.submit_batch(batch)]
    if not done.wait(SUBSCRIBE_DEADLINE_S):
        raise SystemExit("the subscription never showed every entry")
    reader.join()
    client.close()
    print(json.dumps({"acks": acks, "blocks": blocks}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
