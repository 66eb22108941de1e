"""What the sync and trio sequencer clients share: trust, requests, response checks.

The httpx model: `ClientCore` holds no connection and does no I/O. It builds each request
(signing batches with `codec.batch_digest`), checks each answer (acks match what was sent,
blocks and entries verify against the sequencer key). The two clients only differ in how
a call crosses the wire (rollup_client.rpc: channels, and the status table that maps gRPC
failures to the flat library errors).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat

from google.protobuf.message import DecodeError

from rollup_client.protocol import block, codec
from rollup_client.protocol.errors import FailedPrecondition, InvalidArgument, VerificationError
from rollup_client.protocol.keys import SigningKey
from rollup_client.rpc import wire_bytes
from rollup_client.wire import sequencer_pb2 as pb

DEFAULT_TIMEOUT_S = 10.0
# Whole blocks can be large: accept answers up to this size.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
# A subscription that receives nothing for this long gives up (None: never).
DEFAULT_RECONNECT_FOR_S = 60.0
# Retries (of submissions after UNAVAILABLE, of a broken subscription) back off like this.
FIRST_DELAY_S = 0.05
MAX_DELAY_S = 1.0
# The server a failed call's error names.
WHO = "sequencer"


def backoff(attempt: int) -> float:
    """Seconds to wait before retry number `attempt` (0-based): doubling, capped."""
    return min(MAX_DELAY_S, FIRST_DELAY_S * 2.0 ** min(attempt, 32))


def retry_delay(attempt: int, remaining: float) -> float | None:
    """Delay before resubmitting after UNAVAILABLE, or None when the deadline is too close.

    Resubmitting is safe: the sequencer dedups by entry id and answers with the original
    position.
    """
    delay = backoff(attempt)
    return delay if delay < remaining else None


@dataclass(frozen=True, slots=True)
class Ack:
    """Where a submitted entry is in the log; `duplicate` when it was there already."""

    entry_id: bytes
    height: int
    index: int
    duplicate: bool


@dataclass(frozen=True, slots=True)
class Limits:
    """The sequencer's request limits, as it reports them."""

    max_entry_bytes: int
    max_batch_entries: int
    max_batch_bytes: int
    max_inflight_batches_per_client: int
    max_message_bytes: int
    max_linger_ms: int


@dataclass(frozen=True, slots=True)
class Status:
    """The sequencer's chain, durable head and key (the head is not signed: a hint)."""

    chain_id: str
    height: int
    head_hash: bytes
    head_time_ms: int
    sequencer_key: bytes
    limits: Limits


# The sequencer's service, for methods called with wire bytes (`channels.raw_method`).
SERVICE = pb.DESCRIPTOR.services_by_name["SequencerService"].full_name


class ClientCore:
    """The trust anchors (chain id, sequencer key) and every request and answer check.

    Unpinned anchors are learnt from the first Status answer (trust on first use); pinned
    ones (from genesis) must match every Status answer.
    """

    def __init__(
        self,
        key: SigningKey | None,
        chain_id: str | None,
        sequencer_key: bytes | None,
    ) -> None:
        self.key = key
        self.chain_id = chain_id
        self.sequencer_key = sequencer_key

    @property
    def trusted(self) -> bool:
        """True when both anchors are known, so no Status call is needed first."""
        return self.chain_id is not None and self.sequencer_key is not None

    def parse_status(self, resp: pb.StatusResponse) -> Status:
        """Parse a Status answer, learning or checking the anchors."""
        if self.chain_id is None:
            self.chain_id = resp.chain_id
        elif resp.chain_id != self.chain_id:
            raise VerificationError(
                f"sequencer serves chain {resp.chain_id!r}, expected {self.chain_id!r}"
            )
        if self.sequencer_key is None:
            self.sequencer_key = resp.sequencer_key
        elif resp.sequencer_key != self.sequencer_key:
            raise VerificationError("sequencer reports a key other than the pinned one")
        lim = resp.limits
        return Status(
            resp.chain_id,
            resp.height,
            resp.head_hash,
            resp.head_time_ms,
            resp.sequencer_key,
            Limits(
                lim.max_entry_bytes,
                lim.max_batch_entries,
                lim.max_batch_bytes,
                lim.max_inflight_batches_per_client,
                lim.max_message_bytes,
                lim.max_linger_ms,
            ),
        )

    def _anchors(self) -> tuple[str, bytes]:
        if self.chain_id is None or self.sequencer_key is None:
            raise FailedPrecondition("the client has not learnt the chain id and key yet")
        return self.chain_id, self.sequencer_key

    def _signer(self) -> SigningKey:
        if self.key is None:
            raise FailedPrecondition("this client has no signing key: pass key= to submit")
        return self.key

    def submit_request(self, namespace: str, data: bytes) -> tuple[pb.SubmitRequest, bytes]:
        """A signed Submit request and the entry id it must be acknowledged with."""
        key, (chain_id, _) = self._signer(), self._anchors()
        eid = codec.entry_id(codec.check_namespace(namespace), data)
        req = pb.SubmitRequest(
            client_key=key.public,
            entry=pb.Entry(namespace=namespace, data=data),
            signature=key.sign(codec.batch_digest(chain_id, [eid], False)),
        )
        return req, eid

    def submit_ack(self, resp: pb.SubmitResponse, eid: bytes) -> Ack:
        return self._acks([resp.ack], [eid], bundle=False)[0]

    def batch_request(
        self, entries: Sequence[tuple[str, bytes]], bundle: bool, linger_ms: int = 0
    ) -> tuple[bytes, list[bytes]]:
        """A signed SubmitBatch request, serialized, and the entry ids it must be
        acknowledged with (send it through `channels.raw_method`)."""
        if not 0 <= linger_ms <= wire_bytes.MAX_UINT32:
            raise InvalidArgument(
                f"linger_ms must be 0..{wire_bytes.MAX_UINT32} milliseconds, got {linger_ms}"
            )
        key, (chain_id, _) = self._signer(), self._anchors()
        namespaces = [ns for ns, _ in entries]
        for ns in set(namespaces):
            codec.check_namespace(ns)
        ids = codec.entry_ids(namespaces, [data for _, data in entries])
        signature = key.sign(codec.batch_digest(chain_id, ids, bundle))
        request = wire_bytes.batch_request(key.public, entries, bundle, signature, linger_ms)
        return request, ids

    def batch_acks(self, raw: bytes, ids: Sequence[bytes], bundle: bool) -> list[Ack]:
        """The acks of a serialized SubmitBatchResponse for `ids`, checked.

        The common answer, every entry fresh at consecutive positions, is recognised by
        comparing it with its own encoding, with no step per entry through protobuf.
        """
        try:
            resp = pb.SubmitBatchResponse.FromString(raw)
        except DecodeError as exc:
            raise VerificationError(f"SubmitBatch answer does not decode: {exc}") from None
        if resp.acks and not resp.acks[0].duplicate:
            at = resp.acks[0].position
            height, first, n = at.height, at.index, len(ids)
            if raw == wire_bytes.ack_run(ids, height, first):
                positions = range(first, first + n)
                return list(map(Ack, ids, repeat(height, n), positions, repeat(False)))
        return self._acks(resp.acks, ids, bundle)

    def _acks(self, acks: Sequence[pb.EntryAck], ids: Sequence[bytes], bundle: bool) -> list[Ack]:
        got = [Ack(a.entry_id, a.position.height, a.position.index, a.duplicate) for a in acks]
        if [a.entry_id for a in got] != list(ids):
            raise VerificationError("sequencer acknowledged other entries than were sent")
        if bundle and got:
            first = got[0]
            spread = [(a.height, a.index - first.index) for a in got]
            if spread != [(first.height, i) for i in range(len(got))]:
                raise VerificationError("bundle acknowledged at non-consecutive positions")
        return got

    def block_request(self, height: int, namespaces: Sequence[str] | None) -> pb.GetBlockRequest:
        if namespaces is None:
            return pb.GetBlockRequest(height=height, all_namespaces=True)
        names = sorted({codec.check_namespace(n) for n in namespaces})
        return pb.GetBlockRequest(height=height, namespaces=names)

    def parse_block(
        self, resp: pb.GetBlockResponse, height: int, namespaces: Sequence[str] | None
    ) -> block.VerifiedBlock:
        """The verified block; it must be the one asked for."""
        _, seq_key = self._anchors()
        vb = block.verify_block(resp.block, seq_key, namespaces)
        if vb.height != height:
            raise VerificationError(f"asked for block {height}, got block {vb.height}")
        return vb

    def entry_request(self, entry_id: bytes) -> pb.GetEntryRequest:
        return pb.GetEntryRequest(entry_id=entry_id)

    def parse_entry(self, resp: pb.GetEntryResponse, entry_id: bytes) -> block.LogEntry:
        """The verified entry; it must be the one asked for."""
        _, seq_key = self._anchors()
        e = block.verify_entry(resp, seq_key)
        if e.id != entry_id:
            raise VerificationError(f"asked for entry {entry_id.hex()}, got {e.id.hex()}")
        return e

    def sequencer_key_or_fail(self) -> bytes:
        """The sequencer key, for a subscription's verifier."""
        return self._anchors()[1]
