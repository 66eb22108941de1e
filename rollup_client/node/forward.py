"""User transactions from the gRPC handlers to the sequencer, in batches.

Handlers put submissions on the `SubmitQueue` (see bridge.py) and wake the forwarder
once; it checks each against the machine's state (nonces), forwards the good ones in
batches of the sequencer's size, and answers every handler with its position or error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import trio

from rollup_client.node.bridge import NodeView, Submission, SubmitQueue
from rollup_client.node.link import SequencerLink
from rollup_client.protocol.errors import TandemError, Unavailable
from rollup_client.protocol.statemachine import StateMachine

T = TypeVar("T")


def chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    """`items` cut into consecutive runs of at most `size`."""
    return [items[i : i + size] for i in range(0, len(items), size)]


class Forwarder:
    """Owns the submit queue; runs in the trio thread, where `check_state` may read."""

    def __init__(
        self,
        rollup_id: str,
        machine: StateMachine,
        link: SequencerLink,
        view: NodeView,
        max_queued: int,
    ) -> None:
        self.rollup_id = rollup_id
        self.machine = machine
        self.link = link
        self.view = view
        self._wakeup = trio.Event()
        self._draining = False
        self._forwarded = trio.Event()
        self._token = trio.lowlevel.current_trio_token()
        self.queue = SubmitQueue(self._wake_from_thread, max_items=max_queued)

    def _wake_from_thread(self) -> None:
        try:
            self._token.run_sync_soon(self._wake)
        except trio.RunFinishedError as exc:
            raise Unavailable("the rollup node is shutting down") from exc

    def _wake(self) -> None:
        self._wakeup.set()

    async def run(self) -> None:
        """Drain the queue once per wake-up: check nonces, forward one batch, release all.

        Returns once draining and the queue is empty. On the way out every waiting
        handler is released with Unavailable, so no handler thread outlives the node.
        """
        good: list[Submission] = []
        try:
            while not self._draining or self.queue.waiting():
                await self._wakeup.wait()
                self._wakeup = trio.Event()
                good = []
                for sub in self.queue.drain():
                    try:
                        self.machine.check_state(sub.data)
                    except TandemError as exc:
                        self.view.forget(sub.tx_id)
                        sub.fail(exc)
                    else:
                        good.append(sub)
                for chunk in chunks(good, self.link.max_batch_entries):
                    await self._forward(chunk)
        finally:
            for sub in good + self.queue.close():
                sub.fail(Unavailable("the rollup node is shutting down: resubmit"))
            self._forwarded.set()

    async def drain(self, grace_s: float) -> None:
        """Refuse new submissions; wait (at most `grace_s`) until accepted ones are answered."""
        self._draining = True
        self.queue.close_intake()
        self._wake()
        with trio.move_on_after(grace_s):
            await self._forwarded.wait()

    async def _forward(self, subs: Sequence[Submission]) -> None:
        ns = self.rollup_id
        try:
            acks = await self.link.submit_batch([(ns, s.data) for s in subs])
        except TandemError as exc:
            for s in subs:
                self.view.forget(s.tx_id)
                s.fail(exc)
            return
        for s, (height, index, duplicate) in zip(subs, acks, strict=True):
            self.view.sequenced(s.tx_id, height, index)
            s.resolve((height, index), duplicate)
