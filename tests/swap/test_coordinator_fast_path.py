"""The coordinator's fast path: submission bookkeeping, group saves, Watch promptness."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from rollup_client import swap
from rollup_client.wire import swap_pb2 as pb
from swap_coordinator.core import Coordinator
from swap_coordinator.edge import SwapServicer
from swap_coordinator.service import Changes
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
    def is_active(self) -> bool:
        return True


class StatusApi:
    """The edge's Api with statuses set by the test: what Watch sees of the shell."""

    def __init__(self) -> None:
        self.changes = Changes()
        self.status = pb.SwapStatus(state=pb.SWAP_STATE_SUBMITTED, log_time_ms=1)
        self.marks = 0
        self.gets = 0

    def get(self, swap_id: bytes) -> pb.SwapStatus:
        self.gets += 1
        return self.status

    def version(self) -> int:
        return self.changes.version

    def wait_change(self, version: int, timeout: float) -> int:
        return self.changes.wait(version, timeout)

    def touches(self, swap_id: bytes) -> int:
        return self.marks


def test_watch_sends_the_final_state_at_once_and_skips_blocks_that_do_not_touch_it() -> None:
    api = StatusApi()
    servicer = SwapServicer(api, watch_poll_s=30.0)  # type: ignore[arg-type]
    ctx = FakeContext()
    stream = servicer.Watch(pb.WatchSwapRequest(swap_id=b"s" * 32), ctx)  # type: ignore[arg-type]
    assert next(stream).status.state == pb.SWAP_STATE_SUBMITTED

    def later() -> None:
        for _ in range(10):  # blocks that do not concern this swap: no re-read
            api.changes.bump()
        api.status = pb.SwapStatus(state=pb.SWAP_STATE_COMMITTED, log_time_ms=12)
        api.marks += 1
        api.changes.bump()

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
