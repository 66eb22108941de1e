"""The subscription core: which block comes next, whether a block may follow, when to resume.

Pure (time is passed in), shared by the sync and trio clients. Every block is checked
before it is handed out: signature and namespace proofs (`block.verify_block`), the next
height in sequence, the hash link to the block before it and non-decreasing log time. The
follower remembers the last block across reconnects, so a resumed stream continues at the
next height with nothing skipped and nothing repeated.
"""

from __future__ import annotations

from collections.abc import Sequence

from rollup_client.protocol import block, codec
from rollup_client.protocol.errors import (
    InvalidArgument,
    TandemError,
    Unavailable,
    VerificationError,
)
from rollup_client.sdk.core import backoff
from rollup_client.wire import sequencer_pb2 as pb


class Follower:
    """Follows the log from `from_height`: verifies blocks in order and plans reconnects.

    `reconnect_for` bounds how long the stream may stay broken (no block accepted) before
    `dropped` gives up with Unavailable; None retries forever.
    """

    def __init__(
        self,
        sequencer_key: bytes,
        namespaces: Sequence[str],
        from_height: int,
        *,
        now: float,
        reconnect_for: float | None,
    ) -> None:
        if from_height < 0:
            raise InvalidArgument(f"from_height must be >= 0, got {from_height}")
        self.sequencer_key = sequencer_key
        self.namespaces = sorted({codec.check_namespace(n) for n in namespaces})
        self.next_height = from_height
        # Block 0 links to the zero hash; a later start has nothing to link to yet.
        self.prev_hash: bytes | None = codec.ZERO_HASH if from_height == 0 else None
        self.prev_time_ms = 0
        self.reconnect_for = reconnect_for
        self._attempts = 0
        self._progress_at = now

    def request(self) -> pb.SubscribeRequest:
        """The Subscribe request that resumes right after the last accepted block."""
        return pb.SubscribeRequest(namespaces=self.namespaces, from_height=self.next_height)

    def accept(self, fb: pb.FilteredBlock, now: float) -> block.VerifiedBlock:
        """Verify the next block of the stream; raise VerificationError if it may not follow."""
        vb = block.verify_block(fb, self.sequencer_key, self.namespaces)
        if vb.height != self.next_height:
            raise VerificationError(f"expected block {self.next_height}, got block {vb.height}")
        if self.prev_hash is not None and vb.header.prev_hash != self.prev_hash:
            raise VerificationError(f"block {vb.height} does not link to block {vb.height - 1}")
        if vb.time_ms < self.prev_time_ms:
            raise VerificationError(f"block {vb.height}: log time went backwards")
        self.next_height, self.prev_hash, self.prev_time_ms = vb.height + 1, vb.hash, vb.time_ms
        self._attempts, self._progress_at = 0, now
        return vb

    def dropped(self, error: TandemError | None, now: float) -> float:
        """Seconds to wait before resubscribing after the stream ended with `error`.

        None means the stream ended cleanly or went idle; Unavailable that it broke (the
        client's transport says which of its failures mean that). Any other error is the
        server refusing the request itself and is raised, as is Unavailable once
        `reconnect_for` has passed since the last accepted block.
        """
        if error is not None and not isinstance(error, Unavailable):
            raise error
        if self.reconnect_for is not None and now - self._progress_at >= self.reconnect_for:
            why = "no block" if error is None else str(error)
            raise Unavailable(
                f"subscription gave up after {self.reconnect_for:g}s without a block "
                f"(next height {self.next_height}): {why}"
            )
        self._attempts += 1
        return backoff(self._attempts - 1)
