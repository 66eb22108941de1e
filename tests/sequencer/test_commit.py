"""The commit stages, driven by the submitting thread itself: no other thread in these tests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from rollup_client.protocol import codec
from rollup_client.protocol.errors import Unavailable
from rollup_client.protocol.keys import SigningKey
from rollup_client.rpc import EventLog
from sequencer.commit import Committer
from sequencer.core import Acks, Batch, Item, Sequencer
from sequencer.headwatch import HeadWatch
from sequencer.intake import Intake, Ticket
from sequencer.metrics import Metrics
from sequencer.store import Store

KEY = SigningKey.from_seed(b"\x07" * 32)


def batch(tag: str, n: int) -> Batch:
    data = [f"{tag}-{i}".encode() for i in range(n)]
    return Batch.of(Item("a", d, codec.entry_id("a", d)) for d in data)


@pytest.fixture
def committer(tmp_path: Path) -> Iterator[Committer]:
    """A committer over a fresh store holding the genesis block, blocks of at most 2 entries."""
    store = Store(tmp_path / "blocks.sqlite")
    core = Sequencer(KEY, None, max_block_entries=2)
    first = core.cut([], 1_000, {}).block
    store.write(first)
    intake = Intake(max_inflight_per_client=16, max_queue_entries=100)
    yield Committer(
        core, store, intake, HeadWatch(first.head), Metrics(), EventLog(None),
        trio.CapacityLimiter(1), clock=lambda: 2_000,
    )  # fmt: skip
    store.close()


def acks(ticket: Ticket) -> list[tuple[int, int]]:
    assert isinstance(ticket.outcome, Acks)
    return [(a.height, a.index) for a in ticket.outcome]


def lingered(committer: Committer) -> dict[str, float | None]:
    """The lingered-batches counter per way the wait ended (None: never counted)."""
    get = committer.metrics.registry.get_sample_value
    name = "tandem_sequencer_lingered_batches_total"
    return {ended: get(name, {"ended": ended}) for ended in ("company", "alone")}


def test_a_lone_batch_is_cut_written_and_answered_by_its_own_thread(committer: Committer) -> None:
    ticket = committer.intake.submit(b"A", batch("x", 2))
    committer.drive(ticket)
    assert ticket.finished
    assert ticket.done.is_set()
    assert acks(ticket) == [(1, 0), (1, 1)]
    assert committer.watch.head.height == 1
    assert committer.store.positions({codec.entry_id("a", b"x-1")}) == {
        codec.entry_id("a", b"x-1"): (1, 1)
    }


def test_a_handler_leaves_the_next_block_to_whoever_drives_next(committer: Committer) -> None:
    first = committer.intake.submit(b"A", batch("x", 2))
    second = committer.intake.submit(b"B", batch("y", 2))
    committer.drive(first)
    assert acks(first) == [(1, 0), (1, 1)]
    assert not second.finished
    committer.drive()  # what the standby thread does when woken
    assert acks(second) == [(2, 0), (2, 1)]


def test_a_failing_store_answers_the_batches_with_why_and_stops(committer: Committer) -> None:
    committer.store.close()
    ticket = committer.intake.submit(b"A", batch("x", 1))
    committer.drive(ticket)
    assert isinstance(ticket.outcome, Unavailable)
    with pytest.raises(Unavailable):
        committer.intake.submit(b"A", batch("y", 1))


def test_a_lone_lingering_batch_waits_for_company_and_shares_its_block(
    committer: Committer,
) -> None:
    lingering = committer.intake.submit(b"A", batch("x", 1), time.monotonic() + 600)
    committer.drive(lingering)
    assert not lingering.finished
    assert committer.watch.head.height == 0
    company = committer.intake.submit(b"B", batch("y", 1))
    committer.drive(company)
    assert acks(lingering) == [(1, 0)]
    assert acks(company) == [(1, 1)]
    assert lingered(committer) == {"company": 1.0, "alone": None}


def test_a_lingering_batch_is_cut_alone_once_its_time_is_up(committer: Committer) -> None:
    ticket = committer.intake.submit(b"A", batch("x", 1), time.monotonic() - 0.001)
    committer.drive(ticket)
    assert acks(ticket) == [(1, 0)]


def test_a_stop_ends_the_wait_of_a_lingering_batch(committer: Committer) -> None:
    ticket = committer.intake.submit(b"A", batch("x", 1), time.monotonic() + 600)
    committer.drive(ticket)
    assert not ticket.finished
    committer.stop()
    committer.drive()
    assert acks(ticket) == [(1, 0)]


async def answered_by_standby(committer: Committer, heartbeat_ms: int, linger_s: float) -> Ticket:
    """Submit a batch lingering `linger_s` with the standby thread running, and wait (30 s
    at most) until it is answered; the committer is stopped whatever happens."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(committer.run, heartbeat_ms)
        try:
            ticket = committer.intake.submit(b"A", batch("x", 1), time.monotonic() + linger_s)
            await trio.to_thread.run_sync(committer.drive, ticket)
            assert await trio.to_thread.run_sync(ticket.done.wait, 30.0)
            return ticket
        finally:
            committer.stop()


async def test_the_standby_thread_cuts_a_lingering_batch_at_its_deadline(
    committer: Committer,
) -> None:
    """Nobody else may come: without the standby's wake-up the batch would wait for the
    next heartbeat, here ten minutes away."""
    ticket = await answered_by_standby(committer, 600_000, linger_s=0.05)
    assert acks(ticket) == [(1, 0)]
    assert lingered(committer) == {"company": None, "alone": 1.0}


async def test_a_heartbeat_falling_due_takes_a_lingering_batch_along(committer: Committer) -> None:
    """The standby must not spin between a due heartbeat and a batch that lingers."""
    await answered_by_standby(committer, 1, linger_s=600)
