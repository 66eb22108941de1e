"""The coordinator's trio shell: owns the core and the store, follows `swap`, submits intents.

Three tasks share the core, all in the trio thread: the log follower (subscribe to `swap`
from the checkpoint on), the submitter (complete intents to the sequencer, resubmitted after
a restart: the sequencer dedups by entry id) and the gRPC edge's requests, each hopping in
once (see `hops`).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass, field

import trio

from rollup_client.protocol import swap
from rollup_client.protocol.block import VerifiedBlock
from rollup_client.protocol.errors import InvalidArgument, NotFound, TandemError
from rollup_client.protocol.genesis import SWAP_NAMESPACE
from rollup_client.rpc import EventLog
from rollup_client.sdk import TrioSequencerClient
from rollup_client.wire import swap_pb2 as pb
from swap_coordinator import convert
from swap_coordinator.core import (
    Coordinator,
    Proposal,
    State,
    SwapView,
    changed_swaps,
    deadline_for,
)
from swap_coordinator.hops import DecidedViews, Touches
from swap_coordinator.metrics import Metrics
from swap_coordinator.store import Store

CHECKPOINT_EVERY = 500
"""Blocks between checkpoints: a restart after kill -9 replays at most this many."""
RETRY_S = 1.0
NONCE_BYTES = 16
MAX_LIST = 1000
FRESH_S = 1.0
"""Longest since the last followed block that its log time still counts as current."""
DEFAULT_MAX_BATCH = 100
"""Intents per submitted batch unless the sequencer reports a smaller limit."""
ACK_WAIT_S = 0.5
"""How long a request that completes an intent waits for the sequencer's ack before it
writes the intent to the store instead (see `_durable`)."""


@dataclass
class _SaveBatch:
    """Proposals waiting for one group write, and its result."""

    items: dict[bytes, swap.SignedIntent] = field(default_factory=dict)
    done: trio.Event = field(default_factory=trio.Event)
    error: Exception | None = None


class Shell:
    """Everything that touches the core, on the trio thread; `Hops` hops in."""

    def __init__(
        self,
        core: Coordinator,
        store: Store,
        link: TrioSequencerClient,
        log: EventLog,
        metrics: Metrics,
    ) -> None:
        self.metrics = metrics
        self.core = core
        self.store = store
        self.link = link
        self.log = log
        self.touched = Touches()
        self.decided = DecidedViews()
        self._wake = trio.Event()
        self._db = trio.Lock()
        self._since_checkpoint = 0
        self._followed_at = -math.inf
        self.caught_up_at = 0
        """The sequencer's head height at start: older blocks are a replay, not news."""
        self._unsaved = _SaveBatch()
        self._save_wake = trio.Event()
        self._in_log: dict[bytes, trio.Event] = {}
        """Complete intents whose request waits for them to be acknowledged or ordered."""
        self.max_batch = DEFAULT_MAX_BATCH

    # -- requests, hopped in from gRPC threads by `Hops` --------------------------------

    def _touch(self, swap_id: bytes, view: SwapView | None = None) -> None:
        """Wake the swap's watchers; with its status (from `view` if the caller has its
        current view), built here, so they need no hop."""
        status = None
        if self.touched.watched(swap_id):
            with contextlib.suppress(NotFound):
                status = convert.view_to_pb(view or self.core.view(swap_id))
        self.touched.touch(swap_id, status)

    async def propose(self, request: pb.ProposeRequest) -> pb.ProposeResponse:
        sigs = {s.payer: s.signature for s in request.signatures}
        if sigs and not (request.deadline_ms and request.nonce):
            raise InvalidArgument(
                "signatures need the deadline_ms and nonce they were made over, not timeout_ms"
            )
        deadline = deadline_for(await self.log_time(), request.timeout_ms, request.deadline_ms)
        nonce = request.nonce or os.urandom(NONCE_BYTES)
        legs = [convert.leg_from_pb(leg) for leg in request.legs]
        p = self.core.propose(legs, deadline, nonce, sigs)
        await self._durable(p)
        sid = p.signed.swap_id
        self.log(
            "proposed",
            swap_id=sid.hex(),
            deadline_ms=deadline,
            legs=len(legs),
            signatures=len(sigs),
            complete=p.complete,
        )
        self.metrics.proposals.inc()
        self.metrics.signatures.inc(len(sigs))
        self._touch(sid)
        return pb.ProposeResponse(
            swap_id=sid,
            deadline_ms=deadline,
            signing_bytes=p.signed.intent.signing_bytes(),
            payers=list(p.signed.intent.payers()),
            status=self.status(sid),
        )

    async def sign(self, swap_id: bytes, payer: bytes, signature: bytes) -> pb.SwapStatus:
        self.core.check_submittable(swap_id)
        p = self.core.sign(swap_id, payer, signature)
        await self._durable(p)
        self.log("signed", swap_id=swap_id.hex(), payer=payer.hex(), complete=p.complete)
        self.metrics.signatures.inc()
        self._touch(swap_id)
        return self.status(swap_id)

    async def log_time(self) -> int:
        """The log time a new deadline counts from: the newest block followed here.

        While blocks keep arriving it trails the sequencer's head by at most one block (a
        heartbeat when idle), so a timeout can only come out that much shorter, never
        longer; asking the sequencer every time cost a round trip on every proposal. When
        no block came for FRESH_S (catching up after a start, a dropped stream), the
        sequencer is asked.
        """
        live = self.core.height >= self.caught_up_at
        if live and time.monotonic() - self._followed_at < FRESH_S:
            return self.core.time_ms
        return (await self.link.status()).head_time_ms

    def status(self, swap_id: bytes) -> pb.SwapStatus:
        return convert.view_to_pb(self.core.view(swap_id))

    def list_swaps(self, state: int, limit: int) -> list[pb.SwapStatus]:
        want = None
        if state != pb.SWAP_STATE_UNSPECIFIED:
            if state not in convert.STATE_NAMES:
                raise InvalidArgument(f"unknown swap state {state}")
            want = State(convert.STATE_NAMES[state])
        n = min(limit or MAX_LIST, MAX_LIST)
        return [convert.view_to_pb(v) for v in self.core.list(want, n)]

    async def _durable(self, p: Proposal) -> None:
        """Return once the proposal survives a crash: in the store, or in the log.

        A complete intent is submitted at once, and the sequencer's ack (or the intent
        seen in the log) makes it as durable as a write here would: a restart follows the
        log and finds it there. Only if that takes longer than ACK_WAIT_S (the sequencer
        is slow or down) is it written to the store, which a restart resubmits from. The
        write used to run beside every submission: a thread hop, an SQLite transaction
        and an fsync per request (or group), competing with the sequencer's own fsync
        on the same disk while the swap waits for it. Partial proposals are always
        written: nothing else holds their signatures.
        """
        sid = p.signed.swap_id
        if not p.complete:
            await self._save(p.signed)
            return
        if self._in_the_log(sid, p):
            return
        waiter = self._in_log.get(sid)
        if waiter is None:
            waiter = self._in_log[sid] = trio.Event()
            self._wake.set()
        try:
            with trio.move_on_after(ACK_WAIT_S):
                await waiter.wait()
        finally:
            if self._in_log.get(sid) is waiter and not waiter.is_set():
                del self._in_log[sid]
        if not self._in_the_log(sid, p):
            await self._save(p.signed)

    def _in_the_log(self, swap_id: bytes, p: Proposal) -> bool:
        return p.submitted_at is not None or self.core.tracker.get(swap_id) is not None

    def _logged(self, swap_id: bytes) -> None:
        """The intent was acknowledged or ordered: its waiting requests may answer."""
        waiter = self._in_log.pop(swap_id, None)
        if waiter is not None:
            waiter.set()

    async def _save(self, signed: swap.SignedIntent) -> None:
        """Durable before the caller answers; joins the next group write (see `saver`)."""
        batch = self._unsaved
        batch.items[signed.swap_id] = signed
        self._save_wake.set()
        await batch.done.wait()
        if batch.error is not None:
            raise batch.error

    async def saver(self) -> None:
        """Group commit of proposals: whatever arrived during one write goes in the next.

        One fsync per request capped the coordinator at a few hundred requests a second
        under load; now each write carries every proposal and signature waiting for it.
        """
        while True:
            await self._save_wake.wait()
            self._save_wake = trio.Event()
            batch, self._unsaved = self._unsaved, _SaveBatch()
            try:
                async with self._db:
                    await trio.to_thread.run_sync(
                        self.store.save_proposals, list(batch.items.values())
                    )
            except Exception as exc:  # every waiting request answers with why
                batch.error = exc
            batch.done.set()

    # -- background tasks -----------------------------------------------------------------

    async def follow(self) -> None:
        """Apply every block of `swap` in order; checkpoint every CHECKPOINT_EVERY blocks."""
        blocks = self.link.subscribe([SWAP_NAMESPACE], self.core.height + 1, reconnect_for=None)
        async with blocks:
            async for blk in blocks:
                await self._follow_one(blk)

    async def _follow_one(self, blk: VerifiedBlock) -> None:
        events = self.core.apply_block(blk)
        self.decided.clock = (blk.height, blk.time_ms)
        views: dict[bytes, SwapView] = {}
        for ev in events:
            if isinstance(ev, swap.Decided):
                if ev.swap_id in self.core.proposals:  # what this coordinator is asked about
                    views[ev.swap_id] = view = self.core.view(ev.swap_id)
                    self.decided.add(view)
                self.metrics.decisions.labels(ev.outcome.value).inc()
                self.log(
                    "decided",
                    swap_id=ev.swap_id.hex(),
                    outcome=ev.outcome.value,
                    height=ev.height,
                    index=ev.index,
                )
            else:
                self._logged(ev.intent.swap_id)
                self.log("ordered", swap_id=ev.intent.swap_id.hex(), height=ev.height)
        for sid in changed_swaps(blk, events):  # each swap's watchers woken once per block
            self._touch(sid, views.get(sid))
        self._followed_at = time.monotonic()
        self.metrics.height.set(blk.height)
        self.metrics.time_ms.set(blk.time_ms)
        self.metrics.pending.set(len(self.core.tracker.pending()))
        self._since_checkpoint += 1
        moved = bool(blk.entries or events)
        if self._since_checkpoint >= CHECKPOINT_EVERY:
            await self.checkpoint()
        if moved:
            self._wake.set()

    async def checkpoint(self) -> None:
        async with self._db:
            await trio.to_thread.run_sync(self.store.save_checkpoint, self.core.tracker)
        self._since_checkpoint = 0

    async def submit(self) -> None:
        """Send complete intents to the sequencer until acknowledged (or expired).

        Everything that became complete since the last send goes in one batch (one round
        trip, one signature check), so under load intents group-commit instead of
        queueing behind each other's acknowledgements.
        """
        while True:
            self._wake = trio.Event()  # a wake-up during the sends below is not lost
            ready = self.core.to_submit()
            for start in range(0, len(ready), self.max_batch):
                await self._submit_batch(ready[start : start + self.max_batch])
            with trio.move_on_after(RETRY_S):
                await self._wake.wait()

    async def _submit_batch(self, batch: list[tuple[bytes, bytes]]) -> None:
        try:
            acks = await self.link.submit_batch([(SWAP_NAMESPACE, data) for _, data in batch])
        except TandemError as exc:
            if len(batch) > 1:  # one refused intent must not hold the others back
                for one in batch:
                    await self._submit_batch([one])
                return
            self.log("submit_failed", swap_id=batch[0][0].hex(), error=str(exc))
            self.metrics.submit_failures.inc()
            return
        for (sid, _), ack in zip(batch, acks, strict=True):
            self.core.submitted(sid, ack.height, ack.index)
            self._logged(sid)
            self._touch(sid)
            self.metrics.submissions.inc()
            self.log(
                "submitted",
                swap_id=sid.hex(),
                height=ack.height,
                index=ack.index,
                duplicate=ack.duplicate,
            )
