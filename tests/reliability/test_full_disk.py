"""Running out of space: the sequencer under a file-size limit (RLIMIT_FSIZE).

The limit is set in the child just before it execs `tandem sequencer run`, so its block
store hits EFBIG (CPython ignores SIGXFSZ) as it would hit ENOSPC on a full disk. Big
batches are submitted until one fails. What must hold: the failure is an error the client
can see (never an acknowledgement that is later lost), every acknowledged entry survives,
and once space returns the same data dir starts and accepts submissions again.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest

from rollup_client.wire import sequencer_pb2 as pb
from rollup_client.wire import sequencer_pb2_grpc as pb_grpc
from tests.procs import tandem
from tests.reliability.storage import FSIZE_LIMITED, TIMEOUT_S, Acked
from tests.sequencer.helpers import Net, make_net, signed_batch
from tests.sequencer.proc import read_ready, running

pytestmark = pytest.mark.processes

LIMIT_BYTES = 3 * 1024 * 1024
ENTRY_BYTES = 30_000


@contextmanager
def limited_sequencer(data: Path, limit: int) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`tandem sequencer run` with at most `limit` bytes per file; always ended."""
    err = (data / "stderr.txt").open("w")
    args = ["--data-dir", str(data), "--listen", "127.0.0.1:0", "--heartbeat-ms", "100"]
    popen = subprocess.Popen(
        [sys.executable, "-c", FSIZE_LIMITED, str(limit), *tandem("sequencer", "run", *args)],
        stdout=subprocess.PIPE,
        stderr=err,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "100"},
        start_new_session=True,
    )
    try:
        yield popen, read_ready(popen, 30.0)["listen"]
    finally:
        if popen.poll() is None:
            popen.kill()
        popen.communicate(timeout=TIMEOUT_S)
        err.close()


def fill(net: Net, listen: str) -> tuple[Acked, grpc.StatusCode, str]:
    """Submit 300 KB batches until one fails; the acks before it and the failure."""
    acked: Acked = {}
    with grpc.insecure_channel(listen) as channel:
        stub = pb_grpc.SequencerServiceStub(channel)
        for n in range(LIMIT_BYTES // ENTRY_BYTES):
            items = [("alpha", bytes([n % 256, i]) * (ENTRY_BYTES // 2)) for i in range(10)]
            try:
                resp = stub.SubmitBatch(signed_batch(net.client, items), timeout=TIMEOUT_S)
            except grpc.RpcError as exc:
                assert isinstance(exc, grpc.Call)
                return acked, exc.code(), exc.details() or ""
            for a in resp.acks:
                acked[a.entry_id] = (a.position.height, a.position.index)
    raise AssertionError("the file-size limit was never reached")


def serving(listen: str) -> bool:
    with grpc.insecure_channel(listen) as channel:
        try:
            pb_grpc.SequencerServiceStub(channel).Status(pb.StatusRequest(), timeout=2.0)
        except grpc.RpcError:
            return False
    return True


@pytest.fixture(scope="module")
def filled(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Net, Acked, grpc.StatusCode, str, str]:
    tmp_path = tmp_path_factory.mktemp("full")
    net = make_net(tmp_path)
    with limited_sequencer(tmp_path, LIMIT_BYTES) as (popen, listen):
        acked, code, details = fill(net, listen)
        if not serving(listen):
            popen.wait(TIMEOUT_S)  # it is going down: let it finish saying why
    return net, acked, code, details, (tmp_path / "stderr.txt").read_text()


def test_a_full_disk_loses_no_ack_and_recovers_when_space_returns(
    filled: tuple[Net, Acked, grpc.StatusCode, str, str],
) -> None:
    net, acked, code, _, _ = filled
    assert acked, "nothing was acknowledged before the disk filled"
    assert code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)
    with running(net.data_dir, "--heartbeat-ms", "50") as proc:
        channel, stub = proc.stub()
        with channel:
            for eid, pos in acked.items():
                got = stub.GetEntry(pb.GetEntryRequest(entry_id=eid), timeout=TIMEOUT_S)
                assert (got.position.height, got.position.index) == pos
            top = max(h for h, _ in acked.values())
            fresh = stub.SubmitBatch(
                signed_batch(net.client, [("alpha", b"space again")]), timeout=TIMEOUT_S
            )
            assert fresh.acks[0].position.height > top


def test_a_full_disk_is_reported_clearly(
    filled: tuple[Net, Acked, grpc.StatusCode, str, str],
) -> None:
    _, _, _, details, stderr = filled
    said = (details + stderr).lower()
    assert "full" in said or "space" in said or "too large" in said
    assert "Traceback" not in stderr
    assert "KeyError" not in stderr
