"""The durable head, shared with reader threads so they can wait for new blocks."""

from __future__ import annotations

import threading

from rollup_client.protocol.errors import Unavailable
from sequencer.core import Head


class HeadWatch:
    """Readers block on a condition until the head passes a height; no trio involved."""

    def __init__(self, head: Head) -> None:
        self._cond = threading.Condition()
        self.head = head
        self._closed = False

    def publish(self, head: Head) -> None:
        """Called after a block is durable: wake every waiting reader."""
        with self._cond:
            self.head = head
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def wait_for(self, height: int, timeout: float) -> bool:
        """True once block `height` is durable; False on timeout. Unavailable when closed."""
        with self._cond:
            ok = self._cond.wait_for(lambda: self._closed or self.head.height >= height, timeout)
            if self._closed:
                raise Unavailable("sequencer is shutting down: resubscribe from the last height")
            return bool(ok)
