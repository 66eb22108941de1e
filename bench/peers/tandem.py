"""Tandem itself: a real `tandem sequencer run` process (fsync on every block).

`start` initialises a fresh single-node network in `workdir` and serves it; the client
submits signed batches of the bench namespace and returns once each is durably ordered.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.procs import LOOPBACK, Server, running, tandem_command
from rollup_client.client import SequencerClient
from rollup_client.genesis import Genesis
from rollup_client.keys import SigningKey

NAMESPACE = "bench"
CALL_TIMEOUT_S = 10.0
DURABILITY = "fsync per block (SQLite WAL, synchronous=FULL)"
READY = re.compile(r'"event": "ready", "listen": "([^"]+)"')


def init(data_dir: Path) -> dict[str, Any]:
    """`tandem sequencer init`: genesis, sequencer key and a dev client key in `data_dir`."""
    out = subprocess.run(
        [*tandem_command(), "sequencer", "init", "--data-dir", str(data_dir), "--json"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


def server(data_dir: Path, log_path: Path) -> Server:
    """An unstarted `tandem sequencer run` on a free loopback port."""
    argv = [
        *tandem_command(),
        "sequencer",
        "run",
        "--data-dir",
        str(data_dir),
        "--listen",
        f"{LOOPBACK}:0",
        "--metrics-listen",
        "",
    ]
    return Server(argv, log_path, READY)


def target(ready: re.Match[str], identity: dict[str, Any]) -> dict[str, Any]:
    """What a worker needs to submit: address, client key file and genesis file."""
    return {
        "address": ready.group(1),
        "key": identity["client_key"],
        "genesis": identity["genesis"],
    }


@contextmanager
def start(workdir: Path) -> Iterator[dict[str, Any]]:
    """A fresh sequencer in `workdir`/tandem; yields the worker target."""
    data_dir = workdir / "tandem"
    identity = init(data_dir)
    with running(server(data_dir, workdir / "tandem.log")) as seq:
        assert seq.ready_match is not None
        yield {**target(seq.ready_match, identity), "pid": seq.pid}


class TandemClient:
    """The SDK's sync client: one signed SubmitBatch per batch, or one Submit per entry."""

    def __init__(self, client: SequencerClient, single: bool) -> None:
        self.client = client
        self.single = single

    def send(self, payloads: list[bytes]) -> None:
        if self.single:
            for p in payloads:
                self.client.submit(NAMESPACE, p)
            return
        self.client.submit_batch([(NAMESPACE, p) for p in payloads])

    def close(self) -> None:
        self.client.close()


def open_client(target: dict[str, Any]) -> SequencerClient:
    """An SDK client for `target`, pinned to the network's genesis."""
    genesis = Genesis.load(Path(target["genesis"]))
    return SequencerClient(
        target["address"],
        SigningKey.load(Path(target["key"])),
        chain_id=genesis.chain_id,
        sequencer_key=genesis.sequencer_key,
        timeout=CALL_TIMEOUT_S,
    )


def connect(target: dict[str, Any], single: bool) -> TandemClient:
    client = open_client(target)
    client.status()
    return TandemClient(client, single)
