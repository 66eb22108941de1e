"""The one queue between gRPC handler threads and the commit stages.

Handlers append validated batches and block on their ticket; the committer's cut stage
takes everything queued at once, seals it into a block and its write stage releases every
ticket of that block in one pass after the fsync. No handler hops into trio.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from rollup_client.protocol.errors import ResourceExhausted, Unavailable
from sequencer.core import Batch, Outcome


class Latch:
    """A one-shot event for one waiter: a lock held from creation until `set`.

    A threading.Event is a Condition, its lock and a waiter lock: several times the GIL
    time per batch to create, set and wait on that one bare lock costs.
    """

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()

    def set(self) -> None:
        """Release the waiter; call once."""
        self._lock.release()

    def is_set(self) -> bool:
        return not self._lock.locked()

    def wait(self, timeout: float) -> bool:
        """True once set, False when `timeout` seconds pass first."""
        if not self._lock.acquire(timeout=max(timeout, 0.0)):
            return False
        self._lock.release()
        return True


class Ticket:
    """One submitted batch waiting for its block; `linger_until`: the monotonic time
    until which it asks to wait for company (0: it does not)."""

    __slots__ = ("batch", "client", "done", "finished", "linger_until", "outcome")

    def __init__(self, client: bytes, batch: Batch, linger_until: float = 0.0) -> None:
        self.client = client
        self.batch = batch
        self.linger_until = linger_until
        self.done = Latch()
        self.outcome: Outcome | None = None
        self.finished = False


class Intake:
    """Thread-safe submission queue with per-client in-flight and total size limits."""

    def __init__(self, max_inflight_per_client: int, max_queue_entries: int) -> None:
        self._lock = threading.Lock()
        self._queue: list[Ticket] = []
        self._inflight: dict[bytes, int] = {}
        self._entries = 0
        self._queued_entries = 0
        self._max_inflight = max_inflight_per_client
        self._max_entries = max_queue_entries
        self._closed = False

    def submit(self, client: bytes, batch: Batch, linger_until: float = 0.0) -> Ticket:
        """Queue `batch`; raises Unavailable when draining, ResourceExhausted when full."""
        n = len(batch.ids)
        with self._lock:
            if self._closed:
                raise Unavailable("sequencer is shutting down: submit to it again after restart")
            inflight = self._inflight.get(client, 0)
            if inflight >= self._max_inflight:
                raise ResourceExhausted(
                    f"client has {inflight} batches in flight (limit {self._max_inflight}): "
                    "wait for acks before sending more"
                )
            if self._entries + n > self._max_entries:
                raise ResourceExhausted("sequencer queue is full: retry shortly")
            ticket = Ticket(client, batch, linger_until)
            self._queue.append(ticket)
            self._inflight[client] = inflight + 1
            self._entries += n
            self._queued_entries += n
        return ticket

    def queued(self) -> tuple[int, int]:
        """How many batches, and entries in them, are queued and not yet taken."""
        with self._lock:
            return len(self._queue), self._queued_entries

    def lone_linger(self) -> float:
        """Until when the only queued batch asks to wait for company; 0 when there is not
        exactly one queued batch, or it does not ask."""
        with self._lock:
            return self._queue[0].linger_until if len(self._queue) == 1 else 0.0

    def take(self) -> list[Ticket]:
        """Everything queued."""
        with self._lock:
            queued, self._queue = self._queue, []
            self._queued_entries = 0
            return queued

    def finish(self, tickets: Sequence[Ticket], outcomes: Sequence[Outcome]) -> None:
        """Record each ticket's outcome and release its handler; a ticket finishes once."""
        done = []
        with self._lock:
            for t, o in zip(tickets, outcomes, strict=True):
                if t.finished:
                    continue
                t.finished = True
                self._inflight[t.client] -= 1
                if not self._inflight[t.client]:
                    del self._inflight[t.client]
                self._entries -= len(t.batch.ids)
                done.append((t, o))
        for t, o in done:
            t.outcome = o
            t.done.set()

    def close(self) -> None:
        """Refuse new submissions; queued ones are still taken and finished."""
        with self._lock:
            self._closed = True
