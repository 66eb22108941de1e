"""The trio shell and grpc edge in-process: real sockets on loopback, raw wire stubs.

Sync grpc calls run in threads (`call`) because the commit loop needs the trio thread.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

import grpc
import pytest
import trio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from rollup_client.protocol import block, codec
from rollup_client.rpc.status import CODES
from rollup_client.wire import sequencer_pb2 as pb
from rollup_client.wire import sequencer_pb2_grpc as pb_grpc
from sequencer.config import Config, Limits
from sequencer.service import serve
from tests.sequencer.helpers import Net, make_net, signed_batch
from tests.sequencer.test_validate import CASES, LIMITS, bad_request

pytestmark = pytest.mark.processes

T = TypeVar("T")
TIMEOUT = 10.0


async def call(fn: Callable[[], T]) -> T:
    return await trio.to_thread.run_sync(fn)


@dataclass
class Running:
    net: Net
    stub: pb_grpc.SequencerServiceStub
    channel: grpc.Channel
    target: str

    async def status(self) -> pb.StatusResponse:
        return await call(lambda: self.stub.Status(pb.StatusRequest(), timeout=TIMEOUT))

    async def submit(self, req: pb.SubmitBatchRequest) -> list[pb.EntryAck]:
        return list((await call(lambda: self.stub.SubmitBatch(req, timeout=TIMEOUT))).acks)


async def start(
    tmp_path: Path, nursery: trio.Nursery, heartbeat_ms: int, limits: Limits = LIMITS
) -> Running:
    net = make_net(tmp_path)
    cfg = Config(
        data_dir=tmp_path,
        heartbeat_ms=heartbeat_ms,
        limits=limits,
        max_block_entries=100,
    )
    target = (await nursery.start(serve, cfg)).listen
    channel = grpc.insecure_channel(target)
    return Running(net, pb_grpc.SequencerServiceStub(channel), channel, target)


@asynccontextmanager
async def serving(
    tmp_path: Path, heartbeat_ms: int, limits: Limits = LIMITS
) -> AsyncIterator[Running]:
    """A sequencer served in-process until the block ends."""
    async with trio.open_nursery() as nursery:
        r = await start(tmp_path, nursery, heartbeat_ms, limits)
        try:
            yield r
        finally:
            r.channel.close()
            nursery.cancel_scope.cancel()


@pytest.fixture
async def quiet(tmp_path: Path) -> AsyncIterator[Running]:
    """A sequencer whose heartbeat is too slow to move the height during a test."""
    async with serving(tmp_path, heartbeat_ms=600_000) as r:
        yield r


@pytest.fixture
async def ticking(tmp_path: Path) -> AsyncIterator[Running]:
    async with serving(tmp_path, heartbeat_ms=20) as r:
        yield r


async def test_submit_acks_positions_that_get_entry_proves(quiet: Running) -> None:
    items = [("alpha", b"one"), ("beta", b"two"), ("alpha", b"three")]
    acks = await quiet.submit(signed_batch(quiet.net.client, items, bundle=True))
    assert [a.entry_id for a in acks] == [codec.entry_id(ns, d) for ns, d in items]
    assert not any(a.duplicate for a in acks)
    height = acks[0].position.height
    assert [a.position.index for a in acks] == [0, 1, 2]
    for a, (ns, data) in zip(acks, items, strict=True):
        got = await call(
            partial(quiet.stub.GetEntry, pb.GetEntryRequest(entry_id=a.entry_id), timeout=TIMEOUT)
        )
        e = block.verify_entry(got, quiet.net.genesis.sequencer_key)
        assert (e.namespace, e.data, e.height, e.index) == (ns, data, height, a.position.index)
    again = await quiet.submit(signed_batch(quiet.net.client, items, bundle=True))
    assert [(a.position, a.duplicate) for a in again] == [(a.position, True) for a in acks]
    single = pb.SubmitRequest(
        client_key=quiet.net.client.public,
        entry=pb.Entry(namespace="beta", data=b"two"),
        signature=quiet.net.client.sign(
            codec.batch_digest("test-chain", [codec.entry_id("beta", b"two")], False)
        ),
    )
    one = await call(lambda: quiet.stub.Submit(single, timeout=TIMEOUT))
    assert one.ack.duplicate
    assert one.ack.position == acks[1].position
    st = await quiet.status()
    assert st.height >= height
    assert st.chain_id == "test-chain"
    assert st.sequencer_key == quiet.net.genesis.sequencer_key
    assert st.limits.max_batch_entries == LIMITS.max_batch_entries


async def test_concurrent_resubmissions_all_get_the_one_original_position(ticking: Running) -> None:
    # 14 concurrent batches: under the default in-flight limit for one client key.
    reqs = [signed_batch(ticking.net.client, [("alpha", bytes([i % 7]))]) for i in range(14)]
    results: list[list[pb.EntryAck]] = []

    async def one(req: pb.SubmitBatchRequest) -> None:
        results.append(await ticking.submit(req))

    async with trio.open_nursery() as nursery:
        for req in reqs:
            nursery.start_soon(one, req)
    first: dict[bytes, pb.Position] = {}
    for acks in results:
        for a in acks:
            first.setdefault(a.entry_id, a.position)
            assert a.position == first[a.entry_id]
    assert len(first) == 7
    fresh = sum(1 for acks in results for a in acks if not a.duplicate)
    assert fresh == 7


async def test_get_block_filters_with_proofs_and_refuses_the_future(quiet: Running) -> None:
    items = [("alpha", b"a"), ("beta", b"b"), ("gamma", b"c")]
    acks = await quiet.submit(signed_batch(quiet.net.client, items))
    h = acks[0].position.height
    key = quiet.net.genesis.sequencer_key
    some = await call(
        lambda: quiet.stub.GetBlock(
            pb.GetBlockRequest(height=h, namespaces=["beta", "delta"]), timeout=TIMEOUT
        )
    )
    v = block.verify_block(some.block, key, ["beta", "delta"])
    assert [(e.namespace, e.data) for e in v.entries] == [("beta", b"b")]
    every = await call(
        lambda: quiet.stub.GetBlock(
            pb.GetBlockRequest(height=h, all_namespaces=True), timeout=TIMEOUT
        )
    )
    assert len(block.verify_block(every.block, key, None).entries) == 3
    errors = {
        grpc.StatusCode.OUT_OF_RANGE: lambda: quiet.stub.GetBlock(
            pb.GetBlockRequest(height=h + 1), timeout=TIMEOUT
        ),
        grpc.StatusCode.NOT_FOUND: lambda: quiet.stub.GetEntry(
            pb.GetEntryRequest(entry_id=b"\x00" * 32), timeout=TIMEOUT
        ),
        grpc.StatusCode.INVALID_ARGUMENT: lambda: quiet.stub.GetEntry(
            pb.GetEntryRequest(entry_id=b"\x00" * 5), timeout=TIMEOUT
        ),
    }
    for code, fn in errors.items():
        with pytest.raises(grpc.RpcError) as info:
            await call(fn)
        assert info.value.code() == code


@pytest.mark.parametrize("case", sorted(CASES))
async def test_bad_input_gets_its_status_and_changes_nothing(quiet: Running, case: str) -> None:
    before = await quiet.status()
    req = bad_request(quiet.net, case)
    with pytest.raises(grpc.RpcError) as info:
        await quiet.submit(req)
    assert info.value.code() == CODES[CASES[case][0]], info.value.details()
    after = await quiet.status()
    assert (after.height, after.head_hash) == (before.height, before.head_hash)
    for e in req.entries:
        with pytest.raises(grpc.RpcError) as miss:
            await call(
                partial(
                    quiet.stub.GetEntry,
                    pb.GetEntryRequest(entry_id=codec.entry_id(e.namespace, e.data)),
                    timeout=TIMEOUT,
                )
            )
        assert miss.value.code() == grpc.StatusCode.NOT_FOUND
    good = await quiet.submit(signed_batch(quiet.net.client, [("alpha", case.encode())]))
    assert good[0].position.height == before.height + 1


async def test_health_and_reflection(quiet: Running) -> None:
    health = health_pb2_grpc.HealthStub(quiet.channel)
    for service in ("", "tandem.v1.SequencerService"):
        resp = await call(
            partial(
                # types-grpcio-health-checking's HealthStub declares no Check (grpcio sets it
                # per stub).
                health.Check,  # type: ignore[attr-defined]
                health_pb2.HealthCheckRequest(service=service),
                timeout=TIMEOUT,
            )
        )
        assert resp.status == health_pb2.HealthCheckResponse.SERVING
    refl = reflection_pb2_grpc.ServerReflectionStub(quiet.channel)
    req = reflection_pb2.ServerReflectionRequest(list_services="")
    # types-grpcio-reflection types ServerReflectionInfo as binascii's Incomplete, no callable.
    answers = await call(lambda: list(refl.ServerReflectionInfo(iter([req]), timeout=TIMEOUT)))  # type: ignore[operator]
    names = {s.name for s in answers[0].list_services_response.service}
    assert "tandem.v1.SequencerService" in names


async def test_subscribe_streams_every_block_linked_with_live_heartbeats(ticking: Running) -> None:
    key = ticking.net.genesis.sequencer_key
    acks = await ticking.submit(signed_batch(ticking.net.client, [("alpha", b"1"), ("beta", b"2")]))
    target = acks[0].position.height + 5

    def read() -> list[block.VerifiedBlock]:
        stream = ticking.stub.Subscribe(
            pb.SubscribeRequest(namespaces=["alpha"], from_height=0), timeout=TIMEOUT
        )
        out = []
        for resp in stream:
            out.append(block.verify_block(resp.block, key, ["alpha"]))
            if out[-1].height == target:
                stream.cancel()
                break
        return out

    blocks = await call(read)
    assert [b.height for b in blocks] == list(range(target + 1))
    for prev, cur in itertools.pairwise(blocks):
        assert cur.header.prev_hash == prev.hash
        assert cur.time_ms >= prev.time_ms
    assert blocks[0].header.prev_hash == codec.ZERO_HASH
    found = [(e.height, e.index, e.data) for b in blocks for e in b.entries]
    assert found == [(acks[0].position.height, acks[0].position.index, b"1")]
    assert sum(1 for b in blocks if not b.entries) >= 5


async def test_restart_serves_identical_blocks_and_continues(tmp_path: Path) -> None:
    hashes = []
    for _ in range(2):
        async with trio.open_nursery() as nursery:
            r = await start(tmp_path, nursery, heartbeat_ms=600_000)
            st = await r.status()
            got = [
                (
                    await call(
                        partial(
                            r.stub.GetBlock,
                            pb.GetBlockRequest(height=h, all_namespaces=True),
                            timeout=TIMEOUT,
                        )
                    )
                ).block.header.hash
                for h in range(st.height + 1)
            ]
            hashes.append(got)
            acks = await r.submit(signed_batch(r.net.client, [("alpha", bytes([len(got)]))]))
            assert acks[0].position.height == st.height + 1
            r.channel.close()
            nursery.cancel_scope.cancel()
    assert hashes[1][: len(hashes[0])] == hashes[0]
    assert len(hashes[1]) == len(hashes[0]) + 1


async def test_a_damaged_older_block_is_data_loss_never_served(tmp_path: Path) -> None:
    ids = []
    async with trio.open_nursery() as nursery:
        r = await start(tmp_path, nursery, heartbeat_ms=600_000)
        for n in range(3):
            acks = await r.submit(signed_batch(r.net.client, [("alpha", b"entry %d" % n)]))
            ids.append((acks[0].entry_id, acks[0].position.height))
        r.channel.close()
        nursery.cancel_scope.cancel()
    damaged = ids[1][1]
    with sqlite3.connect(tmp_path / "blocks.sqlite") as db:
        (blob,) = db.execute("SELECT records FROM entries WHERE height=?", (damaged,)).fetchone()
        db.execute("UPDATE entries SET records=? WHERE height=?", (blob[:-1] + b"X", damaged))
    async with trio.open_nursery() as nursery:
        r = await start(tmp_path, nursery, heartbeat_ms=600_000)
        for height, code in [(damaged, grpc.StatusCode.DATA_LOSS), (damaged - 1, None)]:
            req = pb.GetBlockRequest(height=height, all_namespaces=True)
            if code is None:
                await call(partial(r.stub.GetBlock, req, timeout=TIMEOUT))
                continue
            with pytest.raises(grpc.RpcError) as info:
                await call(partial(r.stub.GetBlock, req, timeout=TIMEOUT))
            assert info.value.code() == code
            assert "damaged" in (info.value.details() or "")
        with pytest.raises(grpc.RpcError) as info:
            await call(
                lambda: r.stub.GetEntry(pb.GetEntryRequest(entry_id=ids[1][0]), timeout=TIMEOUT)
            )
        assert info.value.code() == grpc.StatusCode.DATA_LOSS
        assert (await r.status()).height == ids[2][1]
        r.channel.close()
        nursery.cancel_scope.cancel()
