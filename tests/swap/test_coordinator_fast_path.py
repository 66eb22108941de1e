"""The coordinator's fast path: submission bookkeeping, group saves, Watch promptness."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
import trio.testing

from rollup_client.protocol import swap
from rollup_client.protocol.errors import InvalidArgument, Unavailable
from rollup_client.rpc import EventLog
from rollup_client.wire import swap_pb2 as pb
from swap_coordinator.core import Coordinator, changed_swaps
from swap_coordinator.edge import SwapServicer
from swap_coordinator.hops import DecidedViews, Hops, Touches
from swap_coordinator.metrics import Metrics
from swap_coordinator.shell import Shell
from swap_coordinator.store import Store

from .helpers import ASSET, USERS, genesis, make_block, signed, vote

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
    assert api.gets == 1
    assert list(stream) == []


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


def test_changed_swaps_names_each_swap_a_block_moved_as_decoding_every_entry_would() -> None:
    core = Coordinator(G)
    one, two = complete(core, 1), complete(core, 2)
    data = dict(core.to_submit())
    core.apply_block(make_block(0, 10, [data[one.swap_id]]))
    late = swap.Intent(legs(3), 5, b"late")  # ordered after its deadline: void
    late_data = signed(late)
    datas = [
        vote(one.swap_id, "alpha", True),
        data[two.swap_id],
        data[one.swap_id],  # repeated: nothing moves, as decoding it would say
        vote(one.swap_id, "beta", True),  # decides `one`
        b"\x11" + b"x" * 10,  # malformed, too short to name a swap
        late_data,
        vote(two.swap_id, "gamma", True),  # no leg on gamma: ignored, still names `two`
    ]
    blk = make_block(1, 20, datas)
    events = core.apply_block(blk)
    assert [type(e) for e in events] == [swap.IntentOrdered, swap.Decided]
    decoded: dict[bytes, None] = {}
    for d in datas:
        with contextlib.suppress(InvalidArgument):
            decoded[swap.decode_swap_entry(d).swap_id] = None
    assert (
        changed_swaps(blk, events)
        == list(decoded)
        == [
            one.swap_id,
            two.swap_id,
            late.swap_id,
        ]
    )
    assert core.tracker.decision(late.swap_id).outcome is swap.Outcome.ABORT  # void


def test_changed_swaps_includes_swaps_aborted_at_the_block_start() -> None:
    core = Coordinator(G)
    intent = complete(core, 1, deadline=50)
    core.apply_block(make_block(0, 10, [dict(core.to_submit())[intent.swap_id]]))
    blk = make_block(1, 60, [])  # past the deadline, undecided: aborted at the start
    assert changed_swaps(blk, core.apply_block(blk)) == [intent.swap_id]


def test_decided_views_carry_the_current_clock_and_forget_the_oldest() -> None:
    core = Coordinator(G)
    decided = DecidedViews(keep=2)
    intents = [complete(core, n) for n in (1, 2, 3)]
    data = dict(core.to_submit())
    core.apply_block(make_block(0, 10, [data[i.swap_id] for i in intents]))
    votes = [vote(i.swap_id, r, True) for i in intents for r in ("alpha", "beta")]
    core.apply_block(make_block(1, 20, votes))
    for i in intents:
        decided.add(core.view(i.swap_id))
    assert decided.get(intents[0].swap_id) is None  # forgotten: the core is asked instead
    decided.clock = (7, 70)
    got = decided.get(intents[2].swap_id)
    assert got is not None
    core.apply_block(make_block(7, 70, []))
    assert got == core.view(intents[2].swap_id)  # what the hop would have answered


def test_a_decided_swap_is_answered_without_a_hop_and_lines_reach_the_log(
    tmp_path: Path,
) -> None:
    core = Coordinator(G)
    intent = complete(core, 1)
    store = Store(tmp_path / "c.db")
    log = EventLog(tmp_path / "c.log")
    lines: list[dict[str, object]] = []

    async def follow() -> Hops:
        shell = Shell(core, store, None, log, Metrics())  # type: ignore[arg-type]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(log.flusher)
            data = dict(core.to_submit())[intent.swap_id]
            await shell._follow_one(make_block(0, 10, [data]))
            votes = [vote(intent.swap_id, r, True) for r in ("alpha", "beta")]
            await shell._follow_one(make_block(1, 20, votes))
            await shell._follow_one(make_block(2, 30, []))
            await trio.testing.wait_all_tasks_blocked()
            text = (tmp_path / "c.log").read_text()
            lines.extend(json.loads(x) for x in text.splitlines())
            nursery.cancel_scope.cancel()
        return Hops(shell, trio.lowlevel.current_trio_token())

    try:
        hops = trio.run(follow)
    finally:
        store.close()
        log.close()
    assert [x["event"] for x in lines] == ["ordered", "decided"]  # written without a close
    # The trio run is over: a hop would fail, the decided view answers from this thread.
    st = hops.get(intent.swap_id)
    assert st.state == pb.SWAP_STATE_COMMITTED
    assert st.log_height == 2
    assert st.log_time_ms == 30
    with pytest.raises(Unavailable):
        hops.get(b"u" * 32)
