"""The coordinator's fast path: submission bookkeeping, group saves, Watch promptness."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from rollup_client import swap
from rollup_client.errors import Unavailable
from rollup_client.wire import swap_pb2 as pb
from swap_coordinator.core import Coordinator
from swap_coordinator.edge import SwapServicer
from swap_coordinator.service import Touches
from swap_coordinator.store import Store

from .helpers import ASSET, USERS, genesis, make_block

A, B, _ = USERS
G = genesis()


def legs(amount: int) -> tuple[swap.Leg, ...]:
    return (
        swap.Leg("alpha", A.public, B.public, ASSET, amount),
        swap.Leg("beta", B.public, A.public, ASSET, amount),
    )


def complete(core: Coordinator, amount: int, deadline: int = 1_000) -> swap.Intent:
    intent = core.propose(legs(amount), deadline, b"n").signed.intent
    for k in (A, B):
        core.sign(intent.swap_id, k.public, k.sign(intent.signing_bytes()))
    return intent


def test_to_submit_lists_each_complete_intent_until_acknowledged_or_ordered() -> None:
    core = Coordinator(G)
    half = core.propose(legs(1), 1_000, b"n").signed.intent
    core.sign(half.swap_id, A.public, A.sign(half.signing_bytes()))
    one, two, three = (complete(core, n) for n in (2, 3, 4))
    assert [sid for sid, _ in core.to_submit()] == [one.swap_id, two.swap_id, three.swap_id]
    core.submitted(one.swap_id, 0, 0)
    data = dict(core.to_submit())[two.swap_id]
    core.apply_block(make_block(0, 10, [data]))
    assert [sid for sid, _ in core.to_submit()] == [three.swap_id]
    core.apply_block(make_block(1, 1_000, []))  # log time reached the deadline: expired
    assert core.to_submit() == []


def test_to_submit_after_restart_includes_stored_complete_intents() -> None:
    core = Coordinator(G)
    intent = complete(core, 5)
    again = Coordinator(G)
    again.add(core.proposals[intent.swap_id].signed)
    assert [sid for sid, _ in again.to_submit()] == [intent.swap_id]


def test_save_proposals_is_one_group_and_updates_in_place(tmp_path: Path) -> None:
    core = Coordinator(G)
    first = core.propose(legs(1), 1_000, b"n").signed
    done = complete(core, 2)
    store = Store(tmp_path / "c.db")
    try:
        store.save_proposals([first, core.proposals[done.swap_id].signed])
        store.save_proposals([core.proposals[first.swap_id].signed])  # idempotent update
        saved = store.proposals()
    finally:
        store.close()
    assert [s.swap_id for s in saved] == [first.swap_id, done.swap_id]
    assert saved[1] == core.proposals[done.swap_id].signed


class FakeContext:
    def __init__(self) -> None:
        self.active = True
        self.callbacks: list[Callable[[], object]] = []

    def is_active(self) -> bool:
        return self.active

    def add_callback(self, callback: Callable[[], object]) -> bool:
        self.callbacks.append(callback)
        return True

    def end(self) -> None:
        """The client went away: what grpc does when a stream is cancelled."""
        self.active = False
        for callback in self.callbacks:
            callback()


class StatusApi:
    """The edge's Api with statuses set by the test: what Watch sees of the shell."""

    def __init__(self) -> None:
        self.touched = Touches()
        self.status = pb.SwapStatus(state=pb.SWAP_STATE_SUBMITTED, log_time_ms=1)
        self.gets = 0

    def get(self, swap_id: bytes) -> pb.SwapStatus:
        self.gets += 1
        return self.status

    def touches(self, swap_id: bytes) -> int:
        return self.touched.count(swap_id)

    def wait_touch(
        self, swap_id: bytes, mark: int, timeout: float
    ) -> tuple[int, pb.SwapStatus | None]:
        return self.touched.wait(swap_id, mark, timeout)

    def wake(self, swap_id: bytes) -> None:
        self.touched.wake(swap_id)


def test_watch_sends_the_final_state_at_once_and_skips_blocks_that_do_not_touch_it() -> None:
    api = StatusApi()
    servicer = SwapServicer(api, watch_poll_s=30.0)  # type: ignore[arg-type]
    ctx = FakeContext()
    stream = servicer.Watch(pb.WatchSwapRequest(swap_id=b"s" * 32), ctx)  # type: ignore[arg-type]
    assert next(stream).status.state == pb.SWAP_STATE_SUBMITTED

    def later() -> None:
        for n in range(10):  # other swaps' news: no re-read of this one
            api.touched.touch(bytes([n]) * 32)
        api.status = pb.SwapStatus(state=pb.SWAP_STATE_COMMITTED, log_time_ms=12)
        api.touched.touch(b"s" * 32)

    t0 = time.monotonic()
    bumper = threading.Thread(target=later)
    bumper.start()
    try:
        final = next(stream)
    finally:
        bumper.join()
    assert final.status.state == pb.SWAP_STATE_COMMITTED
    assert time.monotonic() - t0 < 5.0  # well under the 30 s poll
    assert api.gets == 2
    assert list(stream) == []


def test_a_touch_handing_over_the_status_spares_the_watch_its_hop() -> None:
    api = StatusApi()
    servicer = SwapServicer(api, watch_poll_s=30.0)  # type: ignore[arg-type]
    ctx = FakeContext()
    stream = servicer.Watch(pb.WatchSwapRequest(swap_id=b"s" * 32), ctx)  # type: ignore[arg-type]
    assert next(stream).status.state == pb.SWAP_STATE_SUBMITTED
    final = pb.SwapStatus(state=pb.SWAP_STATE_COMMITTED, log_time_ms=12)
    toucher = threading.Thread(target=api.touched.touch, args=(b"s" * 32, final))
    toucher.start()
    try:
        assert next(stream).status == final
    finally:
        toucher.join()
    assert api.gets == 1 and list(stream) == []


def test_a_watch_whose_client_left_ends_without_waiting_for_its_poll() -> None:
    api = StatusApi()
    servicer = SwapServicer(api, watch_poll_s=30.0)  # type: ignore[arg-type]
    ctx = FakeContext()
    stream = servicer.Watch(pb.WatchSwapRequest(swap_id=b"s" * 32), ctx)  # type: ignore[arg-type]
    assert next(stream).status.state == pb.SWAP_STATE_SUBMITTED
    t0 = time.monotonic()
    leaver = threading.Thread(target=ctx.end)
    leaver.start()
    try:
        assert list(stream) == []
    finally:
        leaver.join()
    assert time.monotonic() - t0 < 5.0  # well under the 30 s poll
    assert api.gets == 1


def test_touches_wake_only_their_swap_and_closing_wakes_everyone() -> None:
    touches = Touches()
    assert touches.wait(b"a", 0, 0.0) == (0, None)  # nothing happened: the timeout answers
    touches.touch(b"a")
    assert touches.wait(b"a", 0, 30.0) == (1, None)  # already moved on: no wait at all
    closer = threading.Thread(target=touches.close)
    closer.start()
    try:
        with pytest.raises(Unavailable):
            touches.wait(b"b", 0, 30.0)
    finally:
        closer.join()
