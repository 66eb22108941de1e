"""The thread-safe seam between the node's trio thread and the gRPC handler threads.

Handlers never hop into trio per request on the submit path: they append to
`SubmitQueue` and wait on their own event; the node drains the queue once per wake-up,
forwards one batch, and releases every waiter. `NodeView` is the little state the
handlers read without a hop (head, pending ids), published by the node after each block.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from rollup_client.protocol.errors import (
    DeadlineExceeded,
    ResourceExhausted,
    TandemError,
    Unavailable,
)


@dataclass(frozen=True, slots=True)
class Head:
    """What the node has durably applied, and the newest sequencer height it has seen."""

    height: int = -1
    time_ms: int = 0
    state_root: bytes = b""
    sequencer_height: int = -1

    @property
    def lag(self) -> int:
        return max(self.sequencer_height - self.height, 0)


class NodeView:
    """Head and in-flight transaction states; waiters wake on every new block."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._head = Head()
        # tx id -> None while waiting for the sequencer, (height, index) once sequenced.
        self._inflight: dict[bytes, tuple[int, int] | None] = {}

    @property
    def head(self) -> Head:
        return self._head

    def publish(self, head: Head, executed: list[bytes]) -> None:
        """A block group is durable: forget its transactions and wake every waiter."""
        with self._cond:
            self._head = head
            for tx_id in executed:
                self._inflight.pop(tx_id, None)
            self._cond.notify_all()

    def saw_sequencer(self, height: int) -> None:
        """The sequencer's head is at least `height` (for the lag in Status)."""
        with self._cond:
            if height > self._head.sequencer_height:
                self._head = replace(self._head, sequencer_height=height)

    def pending(self, tx_id: bytes) -> None:
        with self._cond:
            self._inflight.setdefault(tx_id, None)

    def sequenced(self, tx_id: bytes, height: int, index: int) -> None:
        with self._cond:
            if height > self._head.height:
                self._inflight[tx_id] = (height, index)
            else:
                self._inflight.pop(tx_id, None)

    def forget(self, tx_id: bytes) -> None:
        with self._cond:
            if self._inflight.get(tx_id) is None:
                self._inflight.pop(tx_id, None)

    def inflight(self, tx_id: bytes) -> tuple[bool, tuple[int, int] | None]:
        """(known, position): known while pending or sequenced and not yet executed."""
        with self._cond:
            return tx_id in self._inflight, self._inflight.get(tx_id)

    def wait_block(self, seen_height: int, timeout: float) -> None:
        """Block until a block newer than `seen_height` is durable, or `timeout` passes."""
        with self._cond:
            self._cond.wait_for(lambda: self._head.height > seen_height, timeout)


@dataclass(slots=True)
class Submission:
    """One user transaction waiting to be forwarded; the node fills in the outcome."""

    data: bytes
    tx_id: bytes
    done: threading.Event = field(default_factory=threading.Event)
    position: tuple[int, int] | None = None
    duplicate: bool = False
    error: TandemError | None = None

    def resolve(self, position: tuple[int, int], duplicate: bool) -> None:
        if not self.done.is_set():
            self.position, self.duplicate = position, duplicate
            self.done.set()

    def fail(self, error: TandemError) -> None:
        """Report `error` to the waiting handler, unless it already has its outcome."""
        if not self.done.is_set():
            self.error = error
            self.done.set()

    def wait(self, timeout: float | None) -> tuple[tuple[int, int], bool]:
        """The acknowledged (position, duplicate), or the error the node reported."""
        if not self.done.wait(timeout):
            raise DeadlineExceeded("the sequencer did not acknowledge the transaction in time")
        if self.error is not None:
            raise self.error
        assert self.position is not None
        return self.position, self.duplicate


class SubmitQueue:
    """Many handler threads append; the node drains everything in one go per wake-up."""

    def __init__(self, wake: Callable[[], None], max_items: int) -> None:
        self._wake = wake
        self._max = max_items
        self._lock = threading.Lock()
        self._items: list[Submission] = []
        self._armed = False
        self._closed = False

    def put(self, sub: Submission) -> None:
        """Queue `sub`; wake the node only if nobody has since the last drain."""
        with self._lock:
            if self._closed:
                raise Unavailable("the rollup node is shutting down: resubmit")
            if len(self._items) >= self._max:
                raise ResourceExhausted(
                    f"{self._max} transactions already waiting for the sequencer: retry later"
                )
            self._items.append(sub)
            wake, self._armed = not self._armed, True
        if wake:
            self._wake()

    def drain(self) -> list[Submission]:
        with self._lock:
            items, self._items, self._armed = self._items, [], False
        return items

    def waiting(self) -> bool:
        with self._lock:
            return bool(self._items)

    def close_intake(self) -> None:
        """Refuse further submissions; those queued stay for the node to forward."""
        with self._lock:
            self._closed = True

    def close(self) -> list[Submission]:
        """Refuse further submissions; return those still queued."""
        with self._lock:
            self._closed = True
            items, self._items = self._items, []
        return items
