"""The commit engine: group commit of queued batches into durable blocks, in two stages.

Cut (the core seals the next block from what is queued) and write (the store commits it
and every handler of the block is answered), each taken by whichever thread is waiting.
"""

from __future__ import annotations

import functools
import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import trio

from rollup_client.protocol.errors import TandemError, Unavailable
from rollup_client.rpc import EventLog
from sequencer.core import Cut, Position, Sequencer
from sequencer.headwatch import HeadWatch
from sequencer.intake import Intake, Ticket
from sequencer.metrics import Metrics
from sequencer.store import Store


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class _Sealed:
    """A cut block on its way to disk, with the tickets it answers."""

    cut: Cut
    tickets: list[Ticket]


class Committer:
    """Group commit in two stages, cut and write, run by whichever thread is waiting.

    The cut stage takes everything queued, looks up known ids and has the core seal a
    block; the write stage commits it and releases every handler of the block at once.
    Each stage is a role that one thread holds at a time, taken under one mutex: the
    handler thread that submits a batch drives the stages itself when they are free, so
    at light load a batch is cut, written and answered in its own thread with no hop at
    all (three thread hops per block cost more than the fsync). A handler whose own batch
    is answered does not stay for the next block: it wakes the standby thread, which
    also cuts the idle heartbeat blocks. A block is cut when the write stage is free, so
    everything that arrived during the previous write lands in one block (one fsync), or
    earlier when a full block is waiting, so its cut overlaps the write; one sealed block
    at most waits for the write stage. Ids of a block that is cut but not yet written are
    kept in `_unwritten` so the next cut still dedups against them.
    """

    def __init__(
        self,
        core: Sequencer,
        store: Store,
        intake: Intake,
        watch: HeadWatch,
        metrics: Metrics,
        log: EventLog,
        threads: trio.CapacityLimiter,
        clock: Callable[[], int] = wall_ms,
    ) -> None:
        self.core = core
        self.store = store
        self.intake = intake
        self.watch = watch
        self.metrics = metrics
        self.log = log
        self.clock = clock
        self.threads = threads
        # Height -> {id: index} of each block cut but not yet written.
        self._unwritten: dict[int, dict[bytes, int]] = {}
        # Guarded by _mu: who holds each stage, and what lies between the stages.
        self._mu = threading.Lock()
        self._cutting = False
        self._writing = False
        self._pending: list[Ticket] = []  # taken from the intake, left out of a full block
        self._pending_entries = 0
        self._sealed: _Sealed | None = None  # cut, waiting for the write stage
        self._heartbeat_due = False
        # A lone queued batch that asked to linger is held until then (0: none is).
        self._held_until = 0.0
        self._last_cut = time.monotonic()
        self._failure: BaseException | None = None
        self._stopping = False
        self._standby = threading.Event()

    def stop(self) -> None:
        """Stop taking new submissions; everything queued is still sealed and answered."""
        self._stopping = True
        self.intake.close()
        self._standby.set()

    async def run(self, heartbeat_ms: int) -> None:
        """Run the standby thread until `stop()` and everything queued is durable and indexed.

        Shielded: a cancel must not strand a block that is cut (the core has moved past
        it) but not yet written. Call `stop()` to end it.
        """
        with trio.CancelScope(shield=True):
            try:
                await trio.to_thread.run_sync(
                    self._stand_by, heartbeat_ms / 1000, limiter=self.threads
                )
            except BaseException as exc:
                self._fail_waiting(exc)
                raise
            await trio.to_thread.run_sync(
                functools.partial(self.store.index.flush, upkeep=False), limiter=self.threads
            )

    def _fail_waiting(self, exc: BaseException) -> None:
        """The store failed: answer every batch not yet durable with why, never leave it."""
        self.intake.close()
        error = _first_tandem_error(exc)
        with self._mu:
            waiting = self._pending + self.intake.take()
            self._pending = []
            if self._sealed is not None:
                waiting += self._sealed.tickets
        self.intake.finish(waiting, [error] * len(waiting))

    def _stand_by(self, heartbeat: float) -> None:
        """The standby thread: the stages nobody waiting took, and the idle heartbeat."""
        while True:
            self._standby.clear()
            self.drive()
            with self._mu:
                busy = self._cutting or self._writing or self._sealed is not None
                if self._stopping and not busy and not self._has_work():
                    break
                now = time.monotonic()
                wait = self._last_cut + heartbeat - now
                if wait <= 0:
                    # Whoever holds a stage cuts it after its own, or wakes the standby.
                    self._heartbeat_due = True
                    if not busy:
                        continue
                timeout = wait if wait > 0 else heartbeat
                if self._held_until > now:
                    # Nobody else may come: the standby cuts a lingering batch on time.
                    timeout = min(timeout, self._held_until - now)
            self._standby.wait(timeout)
        if self._failure is not None:
            raise self._failure

    def drive(self, own: Ticket | None = None) -> None:
        """Run every stage that is free and has work, until none is or `own` is answered.

        A handler calls it with its ticket right after submitting; once that ticket is
        answered it leaves any remaining work to the standby thread instead of delaying
        its own reply by another block. Whoever changes the state (a submit, a cut, the
        end of a write) looks for the next stage under the same mutex, so no work is left
        with nobody to do it.
        """
        while True:
            with self._mu:
                if own is not None and own.finished:
                    if self._has_work():
                        self._standby.set()
                    break
                stage = self._next_stage()
            if stage is None:
                break
            try:
                stage()
            finally:
                with self._mu:
                    if stage == self._cut:
                        self._cutting = False
                    else:
                        self._writing = False
        if self._stopping:
            self._standby.set()

    def _has_work(self) -> bool:
        """True while a block waits for the write stage, a ticket or a heartbeat for a cut
        (under _mu)."""
        return (
            self._sealed is not None
            or bool(self._pending)
            or self._heartbeat_due
            or self.intake.queued()[0] > 0
        )

    def _next_stage(self) -> Callable[[], None] | None:
        """The stage this thread takes now (marked as held), or None (under _mu)."""
        if not self._writing and self._sealed is not None:
            self._writing = True
            return self._write
        if self._cutting or self._sealed is not None:
            return None
        batches, entries = self.intake.queued()
        if batches or self._pending:
            full = self._pending_entries + entries > self.core.max_block_entries
            if self._writing and not full:
                return None
            if batches == 1 and not self._pending and self._lingers():
                return None
        elif not (self._heartbeat_due and not self._writing):
            return None
        self._cutting = True
        return self._cut

    def _lingers(self) -> bool:
        """True while the one queued batch waits for company (under _mu).

        A batch may ask to linger (SubmitBatchRequest.linger_ms) when other clients are
        about to send batches that belong with it, such as the rollups' votes on one swap:
        cut alone, the first would take a block and an fsync of its own, and the next
        would wait for that write before getting another. The next batch to arrive ends
        the wait, whoever sends it; a stop or a heartbeat falling due ends it too (the
        batch then goes into that block). The standby thread is woken to cut it at its
        deadline, since no handler may come to do it.
        """
        until = 0.0 if self._stopping or self._heartbeat_due else self.intake.lone_linger()
        if until <= time.monotonic():
            return False
        if until != self._held_until:
            self._held_until = until
            self._standby.set()
        return True

    def _cut(self) -> None:
        """The cut stage: seal the next block from the leading tickets, or an empty one."""
        with self._mu:
            tickets = self._pending + self.intake.take()
            self._heartbeat_due = False
            held, self._held_until = self._held_until, 0.0
        if held:
            self.metrics.lingered.labels("company" if len(tickets) > 1 else "alone").inc()
        sealed = None
        if self._failure is not None:
            self._failed(self._failure, tickets)
        else:
            try:
                sealed = self._seal(tickets)
            except BaseException as exc:
                self._failed(exc, tickets)
        rest = tickets[len(sealed.tickets) :] if sealed is not None else []
        with self._mu:
            self._pending = rest
            self._pending_entries = sum(len(t.batch.ids) for t in rest)
            self._sealed = sealed
            self._last_cut = time.monotonic()

    def _seal(self, tickets: Sequence[Ticket]) -> _Sealed:
        """Seal the next block from the leading tickets."""
        batches = [t.batch for t in tickets[: self.core.take([t.batch for t in tickets])]]
        ids = set(itertools.chain.from_iterable(b.ids for b in batches))
        # Look in `_unwritten` before the store: the writer puts a block's ids into the
        # store's index before dropping them from `_unwritten`, so none slips between.
        known: dict[bytes, Position] = {}
        for height, at in list(self._unwritten.items()):
            for eid in at.keys() & ids:
                known[eid] = (height, at[eid])
        if ids:
            known.update(self.store.positions(ids.difference(known)))
        cut = self.core.cut(batches, self.clock(), known)
        blk = cut.block
        self._unwritten[blk.header.height] = dict(zip(blk.ids, range(len(blk.ids)), strict=True))
        return _Sealed(cut, list(tickets[: cut.taken]))

    def _write(self) -> None:
        """The write stage: commit the sealed block durably, then answer its handlers."""
        with self._mu:
            sealed, self._sealed = self._sealed, None
        assert sealed is not None
        cut, tickets = sealed.cut, sealed.tickets
        if self._failure is not None:
            self._failed(self._failure, tickets)
            return
        t0 = time.perf_counter()
        try:
            self.store.write(cut.block)
        except BaseException as exc:
            self.log("store_failed", height=cut.block.header.height, error=str(exc))
            self._failed(exc, tickets)
            return
        self.metrics.fsync.observe(time.perf_counter() - t0)
        del self._unwritten[cut.block.header.height]
        self.intake.finish(tickets, cut.outcomes)
        blk = cut.block
        self.watch.publish(blk.head)
        n = blk.header.entry_count
        self.metrics.height.set(blk.header.height)
        self.metrics.entries.inc(n)
        self.metrics.blocks.inc()
        self.metrics.block_size.observe(n)

    def _failed(self, exc: BaseException, tickets: Sequence[Ticket]) -> None:
        """Answer `tickets` with why the store failed; stop, so the server exits with it."""
        if self._failure is None:
            self._failure = exc
        self.intake.finish(tickets, [_first_tandem_error(exc)] * len(tickets))
        self.stop()


def _first_tandem_error(exc: BaseException) -> TandemError:
    """The Tandem error behind `exc` (through exception groups), else a generic one."""
    found = _tandem_error_in(exc)
    return found if found is not None else Unavailable(f"the sequencer stopped: {exc!r}")


def _tandem_error_in(exc: BaseException) -> TandemError | None:
    if isinstance(exc, TandemError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for sub in exc.exceptions:
            found = _tandem_error_in(sub)
            if found is not None:
                return found
    return None
