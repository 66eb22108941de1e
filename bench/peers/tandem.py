"""Tandem itself: a real `tandem sequencer run` process (fsync on every block).

`start` initialises a fresh single-node network in `workdir` and serves it; the client
submits signed batches of the bench namespace and returns once each is durably ordered.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from bench.procs import LOOPBACK, Server, running, tandem_command
from rollup_client.protocol.block import VerifiedBlock
from rollup_client.protocol.genesis import Genesis
from rollup_client.protocol.keys import SigningKey
from rollup_client.sdk import SequencerClient

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


class LagProbe:
    """Follows the bench namespace in a thread, recording each data block's delivery lag.

    Lag = arrival (wall clock, after the SDK verified the block) minus the block's log
    time, which the sequencer stamps from the same machine's clock when it cuts the block.
    """

    def __init__(self, target: dict[str, Any]) -> None:
        self.client = open_client(target)
        self.lags_ms: list[float] = []
        self._from = self.client.status().height + 1
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._follow, name="bench-lag", daemon=True)

    def _follow(self) -> None:
        # The SDK documents closing the iterator as the way to end the stream.
        blocks = cast(
            Generator[VerifiedBlock, None, None], self.client.subscribe([NAMESPACE], self._from)
        )
        try:
            for vb in blocks:
                if vb.entries:
                    self.lags_ms.append(time.time() * 1000.0 - vb.time_ms)
                if self._stop.is_set():
                    break
        except BaseException as exc:
            self._error = exc
        finally:
            blocks.close()

    def __enter__(self) -> LagProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop at the next block (a heartbeat comes at least every heartbeat_ms)."""
        self._stop.set()
        self._thread.join(timeout=CALL_TIMEOUT_S)
        self.client.close()
        if self._error is not None:
            raise RuntimeError(f"subscription failed: {self._error!r}") from self._error
