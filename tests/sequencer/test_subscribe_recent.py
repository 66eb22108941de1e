"""Subscribers at the head share one built answer per (block, namespace set)."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from rollup_client.protocol import block, codec
from rollup_client.rpc import wire_bytes
from rollup_client.wire import sequencer_pb2 as pb
from sequencer.handlers import RecentBlock, RecentBlocks
from tests.sequencer.helpers import signed_batch
from tests.sequencer.test_service import TIMEOUT, Running, call, serving


def test_readers_of_a_recent_block_share_one_set_of_parts() -> None:
    recent = RecentBlocks(depth=4, parts=16)
    got: list[RecentBlock | None] = []
    start_all = threading.Barrier(8)

    def reader() -> None:
        start_all.wait()
        got.append(recent.get(10, 10))

    threads = [threading.Thread(target=reader) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got[0] is not None
    assert all(g is got[0] for g in got)


def test_only_the_newest_blocks_are_kept() -> None:
    recent = RecentBlocks(depth=4, parts=16)
    kept = {h: recent.get(h, h) for h in range(10, 16)}
    # Block 12 is `depth` below the head: a catching-up reader builds its own.
    assert recent.get(11, 15) is recent.get(12, 16) is None
    assert [h for h in range(10, 16) if recent.get(h, 15) is kept[h]] == [12, 13, 14, 15]


_NAMES = st.sampled_from(["a", "bench", "m-1", "z" * 63])


@given(
    st.lists(st.tuples(_NAMES, st.binary(max_size=300)), max_size=40),
    _NAMES,
    st.integers(min_value=0, max_value=20_000),
    st.integers(min_value=16_384, max_value=70_000),
)
def test_a_proof_field_is_the_bytes_protobuf_writes(
    entries: list[tuple[str, bytes]], ns: str, far: int, big: int
) -> None:
    """Present and absent namespaces, index 0 and empty data (both left out by protobuf),
    indices and sizes past the varint cache (a two-byte varint holds 16383)."""
    names = [n for n, _ in entries] + [ns, ns]
    datas = [d for _, d in entries] + [b"x" * big, b""]
    table = block.table_of(names, [codec.entry_id(n, d) for n, d in zip(names, datas, strict=True)])
    mine = [(i, d) for i, (n, d) in enumerate(zip(names, datas, strict=True)) if n == ns]
    mine[-1] = (len(names) + far, b"")
    for wanted, got in ((ns, mine), ("absent", [])):
        expected = block.namespace_proof(table, wanted, got).SerializeToString()
        assert wire_bytes.proof_field(table, wanted, got) == wire_bytes.field(2, expected)


@pytest.fixture
async def ticking(tmp_path: Path) -> AsyncIterator[Running]:
    async with serving(tmp_path, heartbeat_ms=20) as r:
        yield r


@pytest.mark.processes
async def test_live_subscribers_with_different_sets_get_what_get_block_serves(
    ticking: Running,
) -> None:
    key = ticking.net.genesis.sequencer_key
    head = (await ticking.status()).height
    sets = [["beta", "alpha"], ["alpha"], ["alpha", "beta"], ["gamma"]]
    acks = await ticking.submit(
        signed_batch(ticking.net.client, [("alpha", b"1"), ("beta", b"2"), ("alpha", b"3")])
    )
    target = acks[0].position.height + 3

    def read(names: list[str]) -> list[pb.FilteredBlock]:
        stream = ticking.stub.Subscribe(
            pb.SubscribeRequest(namespaces=names, from_height=head), timeout=TIMEOUT
        )
        out = []
        for resp in stream:
            block.verify_block(resp.block, key, names)
            out.append(resp.block)
            if resp.block.header.header.height == target:
                stream.cancel()
                break
        return out

    results: dict[int, list[pb.FilteredBlock]] = {}
    async with trio.open_nursery() as nursery:
        for i, names in enumerate(sets):

            async def one(i: int = i, names: list[str] = names) -> None:
                results[i] = await call(lambda: read(names))

            nursery.start_soon(one)
    for i, names in enumerate(sets):
        assert [b.header.header.height for b in results[i]] == list(range(head, target + 1))
        for fb in results[i]:
            req = pb.GetBlockRequest(height=fb.header.header.height, namespaces=names)
            served = await call(partial(ticking.stub.GetBlock, req, timeout=TIMEOUT))
            assert fb == served.block
    entries = [
        (e.namespace, e.data)
        for fb in results[0]
        for e in block.verify_block(fb, key, sets[0]).entries
    ]
    assert sorted(entries) == [("alpha", b"1"), ("alpha", b"3"), ("beta", b"2")]
