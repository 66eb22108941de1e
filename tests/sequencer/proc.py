"""Start `tandem sequencer run` as a real process and always end it."""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc

from rollup_client.wire import sequencer_pb2_grpc as pb_grpc
from tests import procs

READY_TIMEOUT_S = 30.0


@dataclass
class Proc:
    popen: subprocess.Popen[str]
    listen: str
    metrics: str

    def stub(self) -> tuple[grpc.Channel, pb_grpc.SequencerServiceStub]:
        channel = grpc.insecure_channel(self.listen)
        return channel, pb_grpc.SequencerServiceStub(channel)


def tandem(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        procs.tandem(*args), capture_output=True, text=True, timeout=timeout, check=False
    )


def read_ready(popen: subprocess.Popen[str], timeout: float) -> dict[str, str]:
    """The ready line, or an assertion with the process's stderr if it never comes."""
    assert popen.stdout is not None
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        readable, _, _ = select.select([popen.stdout], [], [], max(left, 0))
        if readable:
            line = popen.stdout.readline()
            if line:
                return dict(json.loads(line))
        if not readable or popen.poll() is not None:
            popen.kill()
            _, err = popen.communicate(timeout=10)
            raise AssertionError(f"sequencer never became ready: {err}")


@contextmanager
def running(data_dir: Path, *extra: str) -> Iterator[Proc]:
    popen = subprocess.Popen(
        procs.tandem(
            "sequencer", "run", "--data-dir", str(data_dir), "--listen", "127.0.0.1:0", *extra
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        ready = read_ready(popen, READY_TIMEOUT_S)
        yield Proc(popen, ready["listen"], ready["metrics"])
    finally:
        if popen.poll() is None:
            popen.kill()
        popen.communicate(timeout=10)
