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

import grpc

from bench.peers.grpc_echo import channel_options
from bench.procs import LOOPBACK, Server, running, tandem_command
from rollup_client import codec
from rollup_client.keys import SigningKey
from rollup_client.wire import sequencer_pb2 as pb
from rollup_client.wire import sequencer_pb2_grpc as pb_grpc

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
    """What a worker needs to submit: address, client key file and chain id."""
    return {
        "address": ready.group(1),
        "key": identity["client_key"],
        "chain_id": identity["chain_id"],
    }


@contextmanager
def start(workdir: Path) -> Iterator[dict[str, Any]]:
    """A fresh sequencer in `workdir`/tandem; yields the worker target."""
    data_dir = workdir / "tandem"
    identity = init(data_dir)
    with running(server(data_dir, workdir / "tandem.log")) as seq:
        assert seq.ready_match is not None
        yield target(seq.ready_match, identity)


class TandemClient:
    """Signs one batch per call (or one entry per Submit) and checks the acks match."""

    def __init__(self, address: str, key: SigningKey, chain_id: str, single: bool) -> None:
        self.channel = grpc.insecure_channel(address, options=channel_options())
        self.stub = pb_grpc.SequencerServiceStub(self.channel)
        self.key = key
        self.chain_id = chain_id
        self.single = single

    def send(self, payloads: list[bytes]) -> None:
        for chunk in [[p] for p in payloads] if self.single else [payloads]:
            ids = [codec.entry_id(NAMESPACE, p) for p in chunk]
            sig = self.key.sign(codec.batch_digest(self.chain_id, ids, False))
            entries = [pb.Entry(namespace=NAMESPACE, data=p) for p in chunk]
            if self.single:
                req = pb.SubmitRequest(client_key=self.key.public, entry=entries[0], signature=sig)
                acks = [self.stub.Submit(req, timeout=CALL_TIMEOUT_S).ack]
            else:
                batch = pb.SubmitBatchRequest(
                    client_key=self.key.public, entries=entries, signature=sig
                )
                acks = list(self.stub.SubmitBatch(batch, timeout=CALL_TIMEOUT_S).acks)
            if [a.entry_id for a in acks] != ids:
                raise RuntimeError("the sequencer acknowledged other entries than were sent")

    def close(self) -> None:
        self.channel.close()


def connect(target: dict[str, Any], single: bool) -> TandemClient:
    key = SigningKey.load(Path(target["key"]))
    client = TandemClient(target["address"], key, target["chain_id"], single)
    grpc.channel_ready_future(client.channel).result(timeout=CALL_TIMEOUT_S)
    return client
