"""The gRPC threads' side of the coordinator: the edge's `Api`.

Each request hops into the trio thread once (`Hops`), or is answered in its own thread
without a hop: a decided swap from `DecidedViews`, and Watch streams wait on their own
swap's `Touches`.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from rollup_client.protocol.errors import Unavailable
from rollup_client.wire import swap_pb2 as pb
from swap_coordinator import convert
from swap_coordinator.core import SwapView

if TYPE_CHECKING:
    from swap_coordinator.shell import Shell

DECIDED_KEPT = 4096
"""Decided swaps whose view gRPC threads answer without a hop (see `DecidedViews`)."""


class Touches:
    """Per swap, a counter bumped whenever something about it happened; Watch threads wait
    on their own swap's.

    One condition for every swap woke every open Watch stream (a thread each) on every
    block, a thread switch per stream per block under load. Bumped on the trio side,
    waited on from gRPC threads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[bytes, int] = {}
        self._status: dict[bytes, pb.SwapStatus] = {}
        self._waiting: dict[bytes, tuple[threading.Condition, int]] = {}
        self.closed = False

    def count(self, swap_id: bytes) -> int:
        return self._counts.get(swap_id, 0)

    def watched(self, swap_id: bytes) -> bool:
        """Someone waits on this swap (so its status is worth handing over with a touch)."""
        with self._lock:
            return swap_id in self._waiting

    def touch(self, swap_id: bytes, status: pb.SwapStatus | None = None) -> None:
        """Something happened to the swap; `status`: its status right after, if known."""
        with self._lock:
            self._counts[swap_id] = self._counts.get(swap_id, 0) + 1
            if status is None:
                self._status.pop(swap_id, None)
            else:
                self._status[swap_id] = status
            self._notify(swap_id)

    def wake(self, swap_id: bytes) -> None:
        """Wake the swap's waiters without a change (their stream ended)."""
        with self._lock:
            self._notify(swap_id)

    def _notify(self, swap_id: bytes) -> None:
        found = self._waiting.get(swap_id)
        if found is not None:
            found[0].notify_all()

    def close(self) -> None:
        with self._lock:
            self.closed = True
            for cond, _ in self._waiting.values():
                cond.notify_all()

    def wait(self, swap_id: bytes, mark: int, timeout: float) -> tuple[int, pb.SwapStatus | None]:
        """The swap's count once it differs from `mark`, woken, or after `timeout`, with
        the status handed over by the latest touch (None: ask for it)."""
        with self._lock:
            cond, n = self._waiting.get(swap_id) or (threading.Condition(self._lock), 0)
            self._waiting[swap_id] = (cond, n + 1)
            try:
                if not self.closed and self._counts.get(swap_id, 0) == mark:
                    cond.wait(timeout)
                found = self._counts.get(swap_id, 0), self._status.get(swap_id)
            finally:
                cond, n = self._waiting[swap_id]
                if n == 1:  # nobody waits: no status to keep for them
                    del self._waiting[swap_id]
                    self._status.pop(swap_id, None)
                else:
                    self._waiting[swap_id] = (cond, n - 1)
            if self.closed:
                raise Unavailable("coordinator is shutting down")
            return found


class DecidedViews:
    """Views of recently decided swaps, readable from any thread.

    A decided swap's view never changes again but for the log time and height it is seen
    at, so a Get or Watch of one (a client watching a batch of swaps finds all but the
    first already decided) is answered in the gRPC thread from here, with the clock the
    follower last published: no hop into the trio thread and back. Bounded: the oldest
    are forgotten, and a swap not found here is asked of the core as before.
    """

    def __init__(self, keep: int = DECIDED_KEPT) -> None:
        self._keep = keep
        self._views: dict[bytes, SwapView] = {}
        self._lock = threading.Lock()
        self.clock = (-1, 0)
        """(log height, log time in ms) of the newest block followed; set by the follower."""

    def add(self, view: SwapView) -> None:
        with self._lock:
            self._views[view.swap_id] = view
            if len(self._views) > self._keep:
                del self._views[next(iter(self._views))]

    def get(self, swap_id: bytes) -> SwapView | None:
        """The swap's view as of the current clock, if it is decided and still kept."""
        with self._lock:
            view = self._views.get(swap_id)
        if view is None:
            return None
        height, time_ms = self.clock
        return dataclasses.replace(view, log_height=height, log_time_ms=time_ms)


class Hops:
    """The edge's `Api`: every call is safe from any thread, and hops into `shell` at most once."""

    def __init__(self, shell: Shell, token: trio.lowlevel.TrioToken) -> None:
        self.shell = shell
        self.token = token

    def _hop(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return trio.from_thread.run(fn, *args, trio_token=self.token)
        except trio.RunFinishedError:
            raise Unavailable("coordinator is shutting down") from None

    def _hop_sync(self, fn: Callable[..., Any], *args: Any) -> Any:
        """`_hop` for a function that never awaits: run in the trio thread's entry queue,
        without a task spawned for it."""
        try:
            return trio.from_thread.run_sync(fn, *args, trio_token=self.token)
        except trio.RunFinishedError:
            raise Unavailable("coordinator is shutting down") from None

    def propose(self, request: pb.ProposeRequest) -> pb.ProposeResponse:
        result: pb.ProposeResponse = self._hop(self.shell.propose, request)
        return result

    def sign(self, swap_id: bytes, payer: bytes, signature: bytes) -> pb.SwapStatus:
        result: pb.SwapStatus = self._hop(self.shell.sign, swap_id, payer, signature)
        return result

    def get(self, swap_id: bytes) -> pb.SwapStatus:
        view = self.shell.decided.get(swap_id)
        if view is not None:
            return convert.view_to_pb(view)
        result: pb.SwapStatus = self._hop_sync(self.shell.status, swap_id)
        return result

    def log_time(self) -> int:
        result: int = self._hop(self.shell.log_time)
        return result

    def list_swaps(self, state: int, limit: int) -> list[pb.SwapStatus]:
        result: list[pb.SwapStatus] = self._hop_sync(self.shell.list_swaps, state, limit)
        return result

    def touches(self, swap_id: bytes) -> int:
        return self.shell.touched.count(swap_id)

    def wait_touch(
        self, swap_id: bytes, mark: int, timeout: float
    ) -> tuple[int, pb.SwapStatus | None]:
        return self.shell.touched.wait(swap_id, mark, timeout)

    def wake(self, swap_id: bytes) -> None:
        self.shell.touched.wake(swap_id)
