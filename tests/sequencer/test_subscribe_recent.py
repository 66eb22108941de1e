"""Subscribers at the head share one built answer per (block, namespace set)."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from rollup_client import block
from rollup_client.wire import sequencer_pb2 as pb
from sequencer.handlers import RecentBlocks
from tests.sequencer.helpers import signed_batch
from tests.sequencer.test_service import TIMEOUT, Running, call, start


class Builds:
    """A build function that counts its calls per key."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: dict[tuple[int, str], int] = {}

    def make(self, height: int, tag: str) -> bytes:
        with self.lock:
            self.calls[height, tag] = self.calls.get((height, tag), 0) + 1
        return f"{height}:{tag}".encode()


def test_concurrent_readers_of_a_recent_block_build_it_once() -> None:
    recent = RecentBlocks(depth=4, slots=16)
    builds = Builds()
    got: list[bytes] = []
    start_all = threading.Barrier(8)

    def reader(names: list[str]) -> None:
        start_all.wait()
        got.append(recent.get(10, names, 10, lambda: builds.make(10, "ab")))

    threads = [
        threading.Thread(target=reader, args=(["a", "b"] if i % 2 else ["b", "a", "b"],))
        for i in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == [b"10:ab"] * 8
    assert builds.calls == {(10, "ab"): 1}


def test_other_sets_old_blocks_and_evicted_slots_are_built_again() -> None:
    recent = RecentBlocks(depth=4, slots=2)
    builds = Builds()
    recent.get(10, ["a"], 10, lambda: builds.make(10, "a"))
    recent.get(10, ["b"], 10, lambda: builds.make(10, "b"))
    recent.get(10, ["a"], 10, lambda: builds.make(10, "a"))
    assert builds.calls == {(10, "a"): 1, (10, "b"): 1}
    # A third slot pushes out the oldest, (10, a).
    recent.get(11, ["a"], 11, lambda: builds.make(11, "a"))
    recent.get(10, ["a"], 11, lambda: builds.make(10, "a"))
    assert builds.calls[10, "a"] == 2
    # Block 6 is `depth` below the head: a catching-up reader, never cached.
    for _ in range(2):
        recent.get(6, ["a"], 10, lambda: builds.make(6, "a"))
    assert builds.calls[6, "a"] == 2


@pytest.fixture
async def ticking(tmp_path: Path) -> AsyncIterator[Running]:
    async with trio.open_nursery() as nursery:
        r = await start(tmp_path, nursery, heartbeat_ms=20)
        try:
            yield r
        finally:
            r.channel.close()
            nursery.cancel_scope.cancel()


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
            served = await call(lambda req=req: ticking.stub.GetBlock(req, timeout=TIMEOUT))
            assert fb == served.block
    entries = [
        (e.namespace, e.data)
        for fb in results[0]
        for e in block.verify_block(fb, key, sets[0]).entries
    ]
    assert sorted(entries) == [("alpha", b"1"), ("alpha", b"3"), ("beta", b"2")]
