"""The coordinator's trio shell: owns the core and the store, follows `swap`, submits intents.

`serve(config)` has the hypercorn shape: it reports the bound port through
`task_status.started(port)` and stops when cancelled. Three tasks share the core, all in
the trio thread: the log follower (subscribe to `swap` from the checkpoint on), the
submitter (complete intents to the sequencer, resubmitted after a restart: the sequencer
dedups by entry id) and the gRPC edge's requests, each hopping in once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from rollup_client.protocol import swap
from rollup_client.protocol.block import VerifiedBlock
from rollup_client.protocol.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    TandemError,
    Unavailable,
)
from rollup_client.protocol.genesis import SWAP_NAMESPACE, Genesis
from rollup_client.protocol.keys import SigningKey
from rollup_client.rpc import TlsFiles
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
from swap_coordinator.edge import Edge
from swap_coordinator.metrics import Metrics
from swap_coordinator.store import Store

CHECKPOINT_EVERY = 500
"""Blocks between checkpoints: a restart after kill -9 replays at most this many."""
RETRY_S = 1.0
SHUTDOWN_GRACE_S = 2.0
NONCE_BYTES = 16
MAX_LIST = 1000
FRESH_S = 1.0
"""Longest since the last followed block that its log time still counts as current."""
DEFAULT_MAX_BATCH = 100
"""Intents per submitted batch unless the sequencer reports a smaller limit."""
ACK_WAIT_S = 0.5
"""How long a request that completes an intent waits for the sequencer's ack before it
writes the intent to the store instead (see `_durable`)."""
DECIDED_KEPT = 4096
"""Decided swaps whose view gRPC threads answer without a hop (see `DecidedViews`)."""


@dataclass(frozen=True)
class Config:
    sequencer: str
    listen: str
    data_dir: Path
    genesis_path: Path
    key_path: Path
    call_timeout_s: float = 10.0
    metrics_listen: str = ""
    max_message_bytes: int = 4 * 1024 * 1024
    tls: TlsFiles | None = None
    """Mutual TLS for this server (clients must present a certificate signed by the CA)."""
    sequencer_tls: TlsFiles | None = None
    """Mutual TLS towards the sequencer."""
    workers: int = 32
    """gRPC worker threads; each open Watch stream holds one."""

    @property
    def db_path(self) -> Path:
        return self.data_dir / "coordinator.db"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "coordinator.log"


class EventLog:
    """Structured log: one JSON line per event, written in groups.

    A line goes into the file's buffer and `flusher` writes what gathered once the trio
    thread gets round to it, after the tasks ready at the time: line buffering made a
    write syscall of every line, four per swap. `close` writes the rest.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(path, "a")  # noqa: SIM115 - closed by close()
        self._unwritten = trio.Event()

    def __call__(self, event: str, **fields: Any) -> None:
        self._f.write(json.dumps({"ts": time.time(), "event": event, **fields}) + "\n")
        self._unwritten.set()

    async def flusher(self) -> None:
        """Write buffered lines to the file whenever there are some."""
        while True:
            await self._unwritten.wait()
            self.flush()

    def flush(self) -> None:
        self._unwritten = trio.Event()
        self._f.flush()

    def close(self) -> None:
        self._f.close()


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


@dataclass
class _SaveBatch:
    """Proposals waiting for one group write, and its result."""

    items: dict[bytes, swap.SignedIntent] = field(default_factory=dict)
    done: trio.Event = field(default_factory=trio.Event)
    error: Exception | None = None


class Shell:
    """Everything that touches the core, on the trio thread; `Api` methods hop in."""

    def __init__(
        self,
        core: Coordinator,
        store: Store,
        link: TrioSequencerClient,
        log: EventLog,
        metrics: Metrics,
        token: trio.lowlevel.TrioToken,
    ) -> None:
        self.metrics = metrics
        self.core = core
        self.store = store
        self.link = link
        self.log = log
        self.token = token
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

    # -- hops from gRPC threads (the `Api` protocol of the edge) --------------------------

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
        result: pb.ProposeResponse = self._hop(self._propose, request)
        return result

    def sign(self, swap_id: bytes, payer: bytes, signature: bytes) -> pb.SwapStatus:
        result: pb.SwapStatus = self._hop(self._sign, swap_id, payer, signature)
        return result

    def get(self, swap_id: bytes) -> pb.SwapStatus:
        view = self.decided.get(swap_id)
        if view is not None:
            return convert.view_to_pb(view)
        result: pb.SwapStatus = self._hop_sync(self._status, swap_id)
        return result

    def log_time(self) -> int:
        result: int = self._hop(self._log_time)
        return result

    def list_swaps(self, state: int, limit: int) -> list[pb.SwapStatus]:
        result: list[pb.SwapStatus] = self._hop_sync(self._list, state, limit)
        return result

    def touches(self, swap_id: bytes) -> int:
        return self.touched.count(swap_id)

    def wait_touch(
        self, swap_id: bytes, mark: int, timeout: float
    ) -> tuple[int, pb.SwapStatus | None]:
        return self.touched.wait(swap_id, mark, timeout)

    def wake(self, swap_id: bytes) -> None:
        self.touched.wake(swap_id)

    def _touch(self, swap_id: bytes, view: SwapView | None = None) -> None:
        """Wake the swap's watchers; with its status (from `view` if the caller has its
        current view), built here, so they need no hop."""
        status = None
        if self.touched.watched(swap_id):
            with contextlib.suppress(NotFound):
                status = convert.view_to_pb(view or self.core.view(swap_id))
        self.touched.touch(swap_id, status)

    # -- the same, on the trio thread -----------------------------------------------------

    async def _propose(self, request: pb.ProposeRequest) -> pb.ProposeResponse:
        sigs = {s.payer: s.signature for s in request.signatures}
        if sigs and not (request.deadline_ms and request.nonce):
            raise InvalidArgument(
                "signatures need the deadline_ms and nonce they were made over, not timeout_ms"
            )
        deadline = deadline_for(await self._log_time(), request.timeout_ms, request.deadline_ms)
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
            status=self._status(sid),
        )

    async def _sign(self, swap_id: bytes, payer: bytes, signature: bytes) -> pb.SwapStatus:
        self.core.check_submittable(swap_id)
        p = self.core.sign(swap_id, payer, signature)
        await self._durable(p)
        self.log("signed", swap_id=swap_id.hex(), payer=payer.hex(), complete=p.complete)
        self.metrics.signatures.inc()
        self._touch(swap_id)
        return self._status(swap_id)

    async def _log_time(self) -> int:
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

    def _status(self, swap_id: bytes) -> pb.SwapStatus:
        return convert.view_to_pb(self.core.view(swap_id))

    def _list(self, state: int, limit: int) -> list[pb.SwapStatus]:
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


def _load(config: Config) -> tuple[Genesis, SigningKey]:
    genesis = Genesis.load(config.genesis_path)
    key = SigningKey.load(config.key_path)
    client = genesis.client(key.public)
    if client is None or not client.may_write(SWAP_NAMESPACE):
        raise FailedPrecondition(
            f"key {config.key_path} is not a genesis client allowed to write {SWAP_NAMESPACE!r}"
        )
    return genesis, key


async def serve(
    config: Config,
    *,
    on_ready: Callable[[str, str], None] | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the coordinator until cancelled; `on_ready(listen, metrics)` fires once SERVING."""
    genesis, key = _load(config)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    log = EventLog(config.log_path)
    store = Store(config.db_path)
    link = TrioSequencerClient(
        config.sequencer,
        key,
        chain_id=genesis.chain_id,
        sequencer_key=genesis.sequencer_key,
        timeout=config.call_timeout_s,
        credentials=config.sequencer_tls.channel_credentials() if config.sequencer_tls else None,
    )
    try:
        core = Coordinator(genesis, store.checkpoint(genesis))
        for signed in store.proposals():
            core.add(signed)
        status = await link.status()
        token = trio.lowlevel.current_trio_token()
        shell = Shell(core, store, link, log, Metrics(), token)
        shell.caught_up_at = status.height
        if status.limits.max_batch_entries:
            shell.max_batch = min(DEFAULT_MAX_BATCH, status.limits.max_batch_entries)
        await _run(config, shell, log, on_ready, task_status)
    finally:
        link.close()
        store.close()
        log("stopped")
        log.close()


async def _run(
    config: Config,
    shell: Shell,
    log: EventLog,
    on_ready: Callable[[str, str], None] | None,
    task_status: trio.TaskStatus[int],
) -> None:
    try:
        edge = Edge(shell, config.listen, config.workers, config.max_message_bytes, config.tls)
    except RuntimeError as exc:
        raise FailedPrecondition(f"cannot listen on {config.listen}: {exc}") from exc
    metrics_addr, httpd = "", None
    try:
        if config.metrics_listen:
            metrics_addr, httpd = shell.metrics.serve(config.metrics_listen)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(log.flusher)
            nursery.start_soon(shell.saver)
            nursery.start_soon(shell.follow)
            nursery.start_soon(shell.submit)
            edge.start()
            log(
                "ready",
                listen=edge.listen,
                metrics=metrics_addr,
                height=shell.core.height,
                proposals=len(shell.core.proposals),
            )
            log.flush()  # in the file before anyone hears the coordinator is ready
            if on_ready is not None:
                on_ready(edge.listen, metrics_addr)
            task_status.started(edge.port)
    finally:
        shell.touched.close()
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(edge.stop, SHUTDOWN_GRACE_S)
            await shell.checkpoint()
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
