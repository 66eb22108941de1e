"""kill -9 of the sequencer under load, restart on the same data dir: nothing acknowledged
is lost or moved, heights continue, and subscribers (trio and sync) resume without a gap
or a duplicate.
"""

from __future__ import annotations

import itertools
import threading

import trio

from rollup_client.protocol.block import VerifiedBlock
from rollup_client.sdk import Ack
from tests.procs import Sequencer

SUBMITTERS = 2
BATCH = 10
BEFORE_CRASH = AFTER_CRASH = 150  # acks
NAMESPACES = [f"load{i}" for i in range(SUBMITTERS)]
DEADLINE_S = 90.0


def _check_chain(blocks: list[VerifiedBlock]) -> None:
    assert [b.height for b in blocks] == list(range(len(blocks)))
    for prev, b in itertools.pairwise(blocks):
        assert b.header.prev_hash == prev.hash
        assert b.time_ms >= prev.time_ms


async def test_kill_9_under_load_then_restart(sequencer: Sequencer) -> None:
    acks: list[Ack] = []
    trio_seen: list[VerifiedBlock] = []
    sync_seen: list[VerifiedBlock] = []
    enough = {n: trio.Event() for n in (BEFORE_CRASH, BEFORE_CRASH + AFTER_CRASH)}
    stop_submitting = trio.Event()
    final_height: list[int] = []  # set once: where the subscribers may stop
    sync_stop = threading.Event()

    async def submitter(n: int) -> None:
        i = 0
        while not stop_submitting.is_set():
            batch = [(NAMESPACES[n], f"{n}/{i}/{j}".encode()) for j in range(BATCH)]
            acks.extend(await client.submit_batch(batch))
            i += 1
            for threshold, event in enough.items():
                if len(acks) >= threshold:
                    event.set()

    async def trio_subscriber(reached: trio.Event) -> None:
        async with client.subscribe(NAMESPACES, reconnect_for=30) as blocks:
            async for b in blocks:
                trio_seen.append(b)
                if final_height and b.height >= final_height[0]:
                    break
        reached.set()

    def sync_subscriber() -> None:
        with sequencer.client(timeout=20) as sync_client:
            for b in sync_client.subscribe(NAMESPACES, reconnect_for=30):
                sync_seen.append(b)
                if sync_stop.is_set() and (not final_height or b.height >= final_height[0]):
                    break

    with trio.fail_after(DEADLINE_S):
        async with sequencer.trio_client(timeout=20) as client, trio.open_nursery() as readers:
            reached = trio.Event()
            readers.start_soon(trio_subscriber, reached)
            readers.start_soon(trio.to_thread.run_sync, sync_subscriber)
            try:
                async with trio.open_nursery() as load:
                    for n in range(SUBMITTERS):
                        load.start_soon(submitter, n)
                    await enough[BEFORE_CRASH].wait()
                    acked_at_crash = len(acks)
                    await trio.to_thread.run_sync(sequencer.crash_restart)
                    await enough[BEFORE_CRASH + AFTER_CRASH].wait()
                    stop_submitting.set()
                final_height.append((await client.status()).height)
            finally:
                sync_stop.set()  # the thread cannot be cancelled: it stops on its own
            await reached.wait()

            # Every acknowledged entry is in the log at its acknowledged position.
            for a in acks:
                e = await client.get_entry(a.entry_id)
                assert (e.height, e.index) == (a.height, a.index)

    assert len(acks) >= BEFORE_CRASH + AFTER_CRASH > acked_at_crash
    assert len({a.entry_id for a in acks}) == len(acks)
    want = {(a.entry_id, a.height, a.index) for a in acks}
    for seen in (trio_seen, sync_seen):
        _check_chain(seen)
        assert seen[-1].height >= final_height[0] > max(a.height for a in acks[:acked_at_crash])
        got = [(e.id, e.height, e.index) for b in seen for e in b.entries]
        assert len(got) == len(set(got))
        assert set(got) == want
