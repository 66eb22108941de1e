"""The submission queue: limits, what is queued, draining on shutdown."""

from __future__ import annotations

import threading

import pytest

from rollup_client.protocol import codec
from rollup_client.protocol.errors import ResourceExhausted, Unavailable
from sequencer.core import Acks, Batch, Item
from sequencer.intake import Intake


def batch(n: int) -> Batch:
    return Batch.of(Item("a", bytes([i]), codec.entry_id("a", bytes([i]))) for i in range(n))


def test_in_flight_per_client_is_bounded_until_acked() -> None:
    intake = Intake(max_inflight_per_client=2, max_queue_entries=100)
    t1 = intake.submit(b"A", batch(1))
    intake.submit(b"A", batch(1))
    with pytest.raises(ResourceExhausted, match="in flight"):
        intake.submit(b"A", batch(1))
    intake.submit(b"B", batch(1))
    taken = intake.take()
    assert len(taken) == 3
    intake.finish([t1], [Acks((b"x",), 0, 0)])
    assert t1.done.is_set()
    intake.submit(b"A", batch(1))


def test_a_full_queue_is_resource_exhausted() -> None:
    intake = Intake(max_inflight_per_client=10, max_queue_entries=5)
    intake.submit(b"A", batch(4))
    with pytest.raises(ResourceExhausted, match="full"):
        intake.submit(b"B", batch(2))
    intake.submit(b"B", batch(1))


def test_queued_counts_batches_and_entries_until_taken() -> None:
    intake = Intake(10, 100)
    assert intake.queued() == (0, 0)
    intake.submit(b"A", batch(2))
    intake.submit(b"B", batch(3))
    assert intake.queued() == (2, 5)
    assert len(intake.take()) == 2
    assert intake.queued() == (0, 0)


def test_closed_intake_refuses_but_still_hands_out_what_was_queued() -> None:
    intake = Intake(10, 100)
    t = intake.submit(b"A", batch(1))
    intake.close()
    with pytest.raises(Unavailable):
        intake.submit(b"A", batch(1))
    assert intake.take() == [t]


def test_a_ticket_wakes_its_waiter_once_finished_and_not_before() -> None:
    intake = Intake(10, 100)
    t = intake.submit(b"A", batch(1))
    assert not t.done.is_set()
    assert not t.done.wait(0.01)
    assert not t.done.wait(-1.0)
    waiter = threading.Thread(target=lambda: woke.append(t.done.wait(10.0)))
    woke: list[bool] = []
    waiter.start()
    intake.finish([t, t], [Acks((b"x",), 0, 0)] * 2)  # a ticket finishes once
    waiter.join()
    assert woke == [True]
    assert t.done.is_set()
    assert t.done.wait(0.0)
