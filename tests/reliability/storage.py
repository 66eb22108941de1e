"""Helpers for the storage tests: load until kill -9, copy and tear SQLite files, check.

A torn write is modelled on SQLite's write-ahead log, where every commit appends frames
and the last frame of a commit carries the database size: `commit_ends` lists the byte
offset just after each commit, so a test can cut or corrupt the log exactly at, before or
after the last acknowledged commit.
"""

from __future__ import annotations

import shutil
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc

from rollup_client.protocol import block, codec, tx
from rollup_client.protocol.errors import FailedPrecondition
from rollup_client.wire import sequencer_pb2 as pb
from rollup_client.wire import sequencer_pb2_grpc as pb_grpc
from sequencer.core import Head
from sequencer.store import Store
from tests.keys import key
from tests.rollup_node.conftest import CHAIN_ID as NODE_CHAIN_ID
from tests.rollup_node.conftest import GOLD
from tests.sequencer.helpers import Net, signed_batch

# `python -c FSIZE_LIMITED BYTES ARGV...`: exec ARGV with at most BYTES per file written
# (RLIMIT_FSIZE; CPython ignores SIGXFSZ, so writes fail with EFBIG as on a full disk).
FSIZE_LIMITED = (
    "import os, resource, sys; n = int(sys.argv[1]); "
    "resource.setrlimit(resource.RLIMIT_FSIZE, (n, n)); os.execv(sys.argv[2], sys.argv[2:])"
)
WAL_HEADER = 32
FRAME_HEADER = 24
TIMEOUT_S = 10.0
LOAD_DEADLINE_S = 30.0

Acked = dict[bytes, tuple[int, int]]


def load_then(net: Net, listen: str, enough: int, crash: Callable[[], None]) -> Acked:
    """Three threads submit until `enough` entries are acknowledged, then `crash()` runs
    while they are still submitting; returns every acknowledged entry's position."""
    acked: Acked = {}
    lock = threading.Lock()
    stop = threading.Event()

    def submitter(n: int) -> None:
        with grpc.insecure_channel(listen) as channel:
            stub = pb_grpc.SequencerServiceStub(channel)
            seq = 0
            while not stop.is_set():
                items = [
                    ("alpha" if i % 3 else "beta", b"%d-%d-%d" % (n, seq, i)) for i in range(10)
                ]
                seq += 1
                try:
                    resp = stub.SubmitBatch(signed_batch(net.client, items), timeout=TIMEOUT_S)
                except grpc.RpcError:
                    return
                with lock:
                    for a in resp.acks:
                        acked[a.entry_id] = (a.position.height, a.position.index)

    threads = [threading.Thread(target=submitter, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    limit = time.monotonic() + LOAD_DEADLINE_S
    try:
        while len(acked) < enough and time.monotonic() < limit:
            time.sleep(0.01)
        crash()
    finally:
        stop.set()
        for t in threads:
            t.join(TIMEOUT_S)
    assert len(acked) >= enough, f"only {len(acked)} entries acknowledged"
    with lock:
        return dict(acked)


def commit_ends(wal: bytes) -> list[int]:
    """Byte offsets just after each commit frame of a SQLite WAL file."""
    if len(wal) < WAL_HEADER:
        return []
    (page,) = struct.unpack(">I", wal[8:12])
    ends, off = [], WAL_HEADER
    while off + FRAME_HEADER + page <= len(wal):
        (_, db_size) = struct.unpack(">II", wal[off : off + 8])
        off += FRAME_HEADER + page
        if db_size:
            ends.append(off)
    return ends


def copy_dir(src: Path, dst: Path) -> Path:
    """A copy of a data dir without SQLite's shared-memory index (it is rebuilt on open)."""
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*-shm"))
    return dst


def truncate(path: Path, size: int) -> None:
    with path.open("r+b") as f:
        f.truncate(size)


def overwrite(path: Path, offset: int, junk: bytes) -> None:
    with path.open("r+b") as f:
        f.seek(offset)
        f.write(junk)


@dataclass
class Recovered:
    """What a sequencer store recovered to (None: an empty store), or why it refused."""

    head: Head | None
    refused: str = ""


def recover(
    data_dir: Path, sequencer_key: bytes, check: Callable[[Store, Head], None]
) -> Recovered:
    """Open the store as `tandem sequencer run` does; run `check` on what it recovered."""
    try:
        store = Store(data_dir / "blocks.sqlite")
    except FailedPrecondition as exc:
        return Recovered(None, str(exc))
    try:
        try:
            head = store.recover(sequencer_key)
        except FailedPrecondition as exc:
            return Recovered(None, str(exc))
        if head is not None:
            check(store, head)
        return Recovered(head)
    finally:
        store.close()


def verify_chain(store: Store, head: Head, sequencer_key: bytes) -> None:
    """Every block up to `head` as the server would serve it verifies and links to its parent."""
    reader = store.reader()
    try:
        prev = codec.ZERO_HASH
        for h in range(head.height + 1):
            sh = reader.header(h)
            fb = block.filtered_block(
                sh.header, sh.signature, sh.table, reader.entries(h, None), None
            )
            v = block.verify_block(fb, sequencer_key, None)
            assert v.header.prev_hash == prev, f"block {h} does not link to {h - 1}"
            prev = v.hash
        assert prev == head.hash
    finally:
        reader.close()


def assert_acked(store: Store, acked: Acked) -> None:
    """Every acknowledged entry is in the log exactly at its acknowledged position."""
    found = store.known(acked)
    missing = [eid.hex()[:16] for eid in acked if eid not in found]
    assert not missing, f"{len(missing)} acknowledged entries lost, e.g. {missing[:3]}"
    moved = [
        (eid.hex()[:16], acked[eid], (a.height, a.index))
        for eid, a in found.items()
        if (a.height, a.index) != acked[eid]
    ]
    assert not moved, f"acknowledged entries moved: {moved[:3]}"


def feed_transfers(stub: pb_grpc.SequencerServiceStub, start: int, count: int) -> int:
    """`count` transfers from alice on rollup alpha of the rollup-node test network
    (nonces from `start`), submitted straight to the sequencer by the feeder key."""
    alice, feeder = key("alice"), key("feeder")
    datas = [
        tx.Transfer(alice.public, key(f"u{n % 20}").public, GOLD, 1 + n % 5, n, "alpha")
        .sign(alice)
        .encode()
        for n in range(start, start + count)
    ]
    ids = [codec.entry_id("alpha", d) for d in datas]
    resp = stub.SubmitBatch(
        pb.SubmitBatchRequest(
            client_key=feeder.public,
            entries=[pb.Entry(namespace="alpha", data=d) for d in datas],
            signature=feeder.sign(codec.batch_digest(NODE_CHAIN_ID, ids, False)),
        ),
        timeout=TIMEOUT_S,
    )
    return max(a.position.height for a in resp.acks)
