"""What each RPC does, as plain methods called from gRPC handler threads.

Submits are validated here (one signature check per batch), queued on the intake and
answered when their block is durable, often cut and written by the handler's own thread
(see `Committer.drive`): no trio hop on the way. Reads of sealed blocks go straight to
SQLite with this thread's own connection, bounded by the durable head.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from rollup_client.protocol import block, codec
from rollup_client.protocol.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    OutOfRange,
    ResourceExhausted,
    TandemError,
    VerificationError,
)
from rollup_client.protocol.genesis import Genesis
from rollup_client.rpc import wire_bytes
from rollup_client.rpc.submit_reader import BatchFields
from rollup_client.wire import sequencer_pb2 as pb
from sequencer.config import Config
from sequencer.headwatch import HeadWatch
from sequencer.intake import Intake, Ticket
from sequencer.metrics import Metrics
from sequencer.store import DAMAGE, Reader, StoredHeader, verify_stored
from sequencer.validate import Validator

# A call without a deadline still gets an answer or an error within this many seconds.
DEFAULT_WAIT_S = 60.0
# Subscribers re-check that their client is still there this often while idle.
SUBSCRIBE_POLL_S = 1.0
# Blocks this close to the head are served to subscribers from memory (see `RecentBlocks`).
RECENT_BLOCKS = 8
# At most this many namespaces' proofs are kept per recent block: bounds memory whatever
# namespaces are subscribed.
RECENT_PARTS = 256


class RecentBlock:
    """One recent block's wire parts: header field, and each namespace's proof field."""

    __slots__ = ("header", "lock", "parts", "stored")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stored: StoredHeader | None = None
        self.header = b""
        self.parts: dict[str, bytes] = {}


class RecentBlocks:
    """The newest blocks' SubscribeResponse parts, built once and shared by all subscribers.

    Every live subscriber wants the same new block at the same moment; reading it from
    SQLite, building its namespace proofs and serializing them once per subscriber was
    most of the sequencer's time between publishing a block and sending it, and the
    subscribers' namespace sets overlap (every rollup node follows the swap namespace).
    Protobuf joins length-delimited fields as bytes, so a FilteredBlock is its header
    field followed by one field per namespace proof: each is built once per block, by the
    first reader that needs it under the block's lock, and joined per subscriber. Only the
    `depth` newest blocks are kept (a subscriber catching up builds its own), with at most
    `parts` namespaces each.
    """

    def __init__(self, depth: int = RECENT_BLOCKS, parts: int = RECENT_PARTS) -> None:
        self.depth = depth
        self.parts = parts
        self._lock = threading.Lock()
        self._blocks: dict[int, RecentBlock] = {}

    def get(self, height: int, head: int) -> RecentBlock | None:
        """The shared parts of block `height`, or None when it is too old to keep."""
        if height + self.depth <= head:
            return None
        with self._lock:
            found = self._blocks.get(height)
            if found is None:
                found = self._blocks[height] = RecentBlock()
                while len(self._blocks) > self.depth:
                    del self._blocks[min(self._blocks)]
            return found


class Handlers:
    """The sequencer's RPCs, independent of grpc types other than the messages."""

    def __init__(
        self,
        config: Config,
        genesis: Genesis,
        intake: Intake,
        drive: Callable[[Ticket], None],
        reader: Reader,
        watch: HeadWatch,
        metrics: Metrics,
    ) -> None:
        self.config = config
        self.genesis = genesis
        self.validator = Validator(genesis, config.limits)
        self.intake = intake
        self.drive = drive
        self.reader = reader
        self.watch = watch
        self.metrics = metrics
        # The head at startup was verified by Store.recover; later blocks are our own.
        self.trusted_from = watch.head.height
        self._verified: set[int] = set()
        self.recent = RecentBlocks()
        # A Subscribe stream holds a grpc worker thread for as long as it lives: at most
        # half the threads may stream, so submits always find one.
        self.max_subscriptions = max(1, config.grpc_workers // 2)
        self._streams = threading.BoundedSemaphore(self.max_subscriptions)

    def submit(self, req: BatchFields, timeout: float | None) -> bytes:
        """The serialized SubmitBatchResponse, once the block holding the batch is fsynced."""
        _, batch = self.validator.batch(req)
        linger = min(req.linger_ms, self.config.limits.max_linger_ms)
        until = time.monotonic() + linger / 1000 if linger else 0.0
        ticket = self.intake.submit(req.client_key, batch, until)
        self.metrics.batch_size.observe(len(batch.ids))
        self.drive(ticket)
        if not ticket.done.wait(DEFAULT_WAIT_S if timeout is None else timeout):
            raise DeadlineExceeded(
                "the batch was not sealed before the call's deadline; it may still be "
                "logged: resubmit it to learn its position"
            )
        outcome = ticket.outcome
        if isinstance(outcome, TandemError):
            raise outcome
        assert outcome is not None
        return wire_bytes.acks(outcome.ids, outcome.height, outcome.first, outcome.positions)

    def _namespaces(self, names: Sequence[str]) -> list[str]:
        return [codec.check_namespace(n) for n in names]

    def _check_height(self, height: int) -> None:
        head = self.watch.head.height
        if height > head:
            raise OutOfRange(f"block {height} does not exist yet: the head is {head}")

    def filtered(self, height: int, namespaces: Sequence[str] | None) -> pb.FilteredBlock:
        """Block `height` with proofs for `namespaces` (None: all). Must be durable."""
        with self._damage(f"block {height}"):
            sh = self._checked(height)
            wanted = None if namespaces is None else [n for n in namespaces if n in _names(sh)]
            entries = self.reader.entries(height, wanted) if wanted is None or wanted else {}
        return block.filtered_block(sh.header, sh.signature, sh.table, entries, namespaces)

    def _checked(self, height: int) -> StoredHeader:
        """Header of block `height`, after checking the stored block once if it predates us.

        Blocks sealed by this process are known good; older ones were only spot-checked at
        startup (the head), so each is verified in full on its first read.
        """
        sh = self.reader.header(height)
        if height >= self.trusted_from or height in self._verified:
            return sh
        verify_stored(self.reader, sh, self.genesis.sequencer_key)
        if height > 0 and self.reader.header(height - 1).hash != sh.header.prev_hash:
            raise FailedPrecondition(f"block {height} does not link to block {height - 1}")
        self._verified.add(height)
        return sh

    @staticmethod
    @contextmanager
    def _damage(what: str) -> Iterator[None]:
        """Stored bytes that do not check out are DATA_LOSS, never served."""
        try:
            yield
        except (FailedPrecondition, *DAMAGE) as exc:
            raise VerificationError(
                f"{what} is damaged in the sequencer's store ({exc}); read it from a replica"
            ) from exc

    def get_block(
        self, height: int, namespaces: Sequence[str], all_namespaces: bool
    ) -> pb.FilteredBlock:
        names = self._namespaces(namespaces)
        self._check_height(height)
        return self.filtered(height, None if all_namespaces else names)

    def get_entry(self, entry_id: bytes) -> pb.GetEntryResponse:
        if len(entry_id) != codec.HASH_BYTES:
            raise InvalidArgument(f"entry_id must be {codec.HASH_BYTES} bytes, got {len(entry_id)}")
        with self._damage("the entry index"):
            found = self.reader.entry(entry_id)
        if found is None:
            raise NotFound(f"entry {entry_id.hex()} is not in the log")
        entry, ns_ids = found
        with self._damage(f"block {entry.height}"):
            sh = self._checked(entry.height)
        leaf_proof, pos, path = block.entry_proof(sh.table, entry.namespace, ns_ids, entry.index)
        return pb.GetEntryResponse(
            entry=pb.Entry(namespace=entry.namespace, data=entry.data),
            position=pb.Position(height=entry.height, index=entry.index),
            header=pb.SignedHeader(header=sh.header.to_pb(), hash=sh.hash, signature=sh.signature),
            namespace_proof=leaf_proof,
            entry_leaf_index=pos,
            entry_path=path,
        )

    def subscribe(
        self, namespaces: Sequence[str], from_height: int, active: Callable[[], bool]
    ) -> Iterator[bytes]:
        """Every block from `from_height` on, then live ones, while `active()` holds.

        Yields serialized SubscribeResponses: the newest blocks' come from `recent`.
        """
        names = self._namespaces(namespaces)
        if not self._streams.acquire(blocking=False):
            raise ResourceExhausted(
                f"the sequencer serves at most {self.max_subscriptions} subscriptions at once "
                f"(each holds one of its {self.config.grpc_workers} worker threads); close one "
                "you no longer read, or retry later"
            )
        try:
            height = from_height
            while active():
                head = self.watch.head.height
                if height > head:
                    self.watch.wait_for(height, SUBSCRIBE_POLL_S)
                    continue
                yield self._subscribe_response(height, names, head)
                height += 1
        finally:
            self._streams.release()

    def _subscribe_response(self, height: int, names: Sequence[str], head: int) -> bytes:
        """SubscribeResponse{block} for `names`, joined from `recent`'s parts when it is new."""
        recent = self.recent.get(height, head)
        if recent is None:
            return pb.SubscribeResponse(block=self.filtered(height, names)).SerializeToString()
        with recent.lock, self._damage(f"block {height}"):
            sh = recent.stored
            if sh is None:
                sh = self._checked(height)
                no_proofs = block.filtered_block(sh.header, sh.signature, sh.table, {}, [])
                recent.stored, recent.header = sh, no_proofs.SerializeToString()
            fields = [recent.header]
            for ns in sorted(set(names)):
                part = recent.parts.get(ns)
                if part is None:
                    part = self._proof_part(sh, ns)
                    if len(recent.parts) < self.recent.parts:
                        recent.parts[ns] = part
                fields.append(part)
        return wire_bytes.field(1, b"".join(fields))

    def _proof_part(self, sh: StoredHeader, ns: str) -> bytes:
        """Namespace `ns` of block `sh` as a FilteredBlock field: its entries and leaf, or
        the proof of its absence."""
        present = ns in _names(sh)
        entries = self.reader.entries(sh.header.height, [ns]).get(ns, []) if present else []
        return wire_bytes.proof_field(sh.table, ns, entries)

    def status(self) -> pb.StatusResponse:
        head = self.watch.head
        return pb.StatusResponse(
            chain_id=self.genesis.chain_id,
            height=head.height,
            head_hash=head.hash,
            head_time_ms=head.time_ms,
            sequencer_key=self.genesis.sequencer_key,
            limits=self.config.limits.to_pb(),
        )


def _names(sh: StoredHeader) -> set[str]:
    return {r.namespace for r in sh.table}
