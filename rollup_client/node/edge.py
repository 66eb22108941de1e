"""The grpcio edge of a rollup node: `RollupService`, health and reflection.

Handlers are adapters only. Submissions go through the node's SubmitQueue (no trio hop
per request); receipts and roots are read from SQLite by the handler thread (immutable
once committed); balances, nonces and escrow hop into trio once, where the state lives.
Library errors become gRPC statuses here through the one table in rollup_client.rpc.status.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import grpc
import trio

from rollup_client.node.bridge import NodeView, Submission, SubmitQueue
from rollup_client.node.config import NodeConfig
from rollup_client.node.store import StoreReader
from rollup_client.protocol import codec, keys, tx
from rollup_client.protocol.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    OutOfRange,
    ResourceExhausted,
    TandemError,
    Unavailable,
)
from rollup_client.protocol.statemachine import BLOCK_START, Receipt, StateMachine
from rollup_client.rpc import GrpcServer, call
from rollup_client.rpc.status import number_of
from rollup_client.wire import rollup_pb2 as rpb
from rollup_client.wire import rollup_pb2_grpc as rpb_grpc
from rollup_client.wire import sequencer_pb2 as pb

MAX_SUBMIT_BATCH = 1000
T = TypeVar("T")


def _key(raw: bytes, what: str) -> bytes:
    if len(raw) != keys.PUBLIC_KEY_BYTES:
        raise InvalidArgument(f"{what} must be a 32-byte Ed25519 public key, got {len(raw)} bytes")
    return raw


def _id(raw: bytes, what: str) -> bytes:
    if len(raw) != 32:
        raise InvalidArgument(f"{what} must be 32 bytes, got {len(raw)}")
    return raw


def receipt_pb(r: Receipt) -> rpb.Receipt:
    """An executed receipt on the wire."""
    start = r.index == BLOCK_START
    return rpb.Receipt(
        tx_id=r.entry_id,
        state=rpb.RECEIPT_STATE_EXECUTED,
        position=pb.Position(height=r.height, index=0 if start else r.index),
        ok=r.ok,
        reason=r.reason,
        kind=r.kind,
        swap_id=r.swap_id or b"",
        block_start=start,
    )


@dataclass(frozen=True, slots=True)
class NodeParts:
    """What the edge reaches of a running node: the shell builds it and hands it over.

    `machine` is read in the trio thread only (`_in_trio`), except `check_stateless`;
    `queue` takes submissions from handler threads; `key` is the node's public key.
    """

    machine: StateMachine
    view: NodeView
    queue: SubmitQueue
    reader: StoreReader
    key: bytes
    token: trio.lowlevel.TrioToken


class RollupServicer(rpb_grpc.RollupServiceServicer):
    """Thin adapter from RollupService requests to the node."""

    def __init__(self, config: NodeConfig, parts: NodeParts) -> None:
        self.config = config
        self.machine = parts.machine
        self.view = parts.view
        self.queue = parts.queue
        self.reader = parts.reader
        self.node_key = parts.key
        self.token = parts.token
        # Waiters hold a handler thread each; at most half the threads may wait at once.
        self._waiters = threading.BoundedSemaphore(max(1, config.grpc_workers // 2))

    def _in_trio(self, fn: Callable[[], T]) -> T:
        """Run a read of the machine in the trio thread, where its state lives."""
        try:
            return trio.from_thread.run_sync(fn, trio_token=self.token)
        except trio.RunFinishedError as exc:
            raise Unavailable("the rollup node is shutting down") from exc

    # -- submit ----------------------------------------------------------------------------

    def _enqueue(self, data: bytes) -> Submission:
        """Stateless checks in this thread, then hand the transaction to the node."""
        if not self.config.submit:
            raise FailedPrecondition("this node is a read-only replica: submit to the primary")
        self.machine.check_stateless(data)
        sub = Submission(data, codec.entry_id(self.config.rollup_id, data))
        self.view.pending(sub.tx_id)
        try:
            self.queue.put(sub)
        except TandemError:
            self.view.forget(sub.tx_id)
            raise
        return sub

    def _wait_s(self, remaining: float | None) -> float:
        cap = self.config.max_wait_ms / 1000
        return cap if remaining is None else min(remaining, cap)

    def _submit(self, data: bytes, remaining: float | None) -> rpb.SubmitTransactionResponse:
        sub = self._enqueue(data)
        (height, index), duplicate = sub.wait(self._wait_s(remaining))
        return rpb.SubmitTransactionResponse(
            tx_id=sub.tx_id, position=pb.Position(height=height, index=index), duplicate=duplicate
        )

    def SubmitTransaction(
        self, request: rpb.SubmitTransactionRequest, context: grpc.ServicerContext
    ) -> rpb.SubmitTransactionResponse:
        return call(context, lambda: self._submit(request.transaction, context.time_remaining()))

    def _submit_many(
        self, datas: Sequence[bytes], remaining: float | None
    ) -> rpb.SubmitTransactionsResponse:
        if len(datas) > MAX_SUBMIT_BATCH:
            raise InvalidArgument(
                f"{len(datas)} transactions in one call: send at most {MAX_SUBMIT_BATCH}"
            )
        deadline = time.monotonic() + self._wait_s(remaining)
        subs: list[Submission | TandemError] = []
        for data in datas:
            try:
                subs.append(self._enqueue(data))
            except TandemError as exc:
                subs.append(exc)
        results = []
        for sub in subs:
            try:
                if isinstance(sub, TandemError):
                    raise sub
                (height, index), duplicate = sub.wait(max(deadline - time.monotonic(), 0.0))
            except TandemError as exc:
                code = number_of(exc)
                tx_id = sub.tx_id if isinstance(sub, Submission) else b""
                results.append(rpb.TransactionResult(tx_id=tx_id, code=code, error=str(exc)))
                continue
            results.append(
                rpb.TransactionResult(
                    tx_id=sub.tx_id,
                    position=pb.Position(height=height, index=index),
                    duplicate=duplicate,
                )
            )
        return rpb.SubmitTransactionsResponse(results=results)

    def SubmitTransactions(
        self, request: rpb.SubmitTransactionsRequest, context: grpc.ServicerContext
    ) -> rpb.SubmitTransactionsResponse:
        return call(
            context, lambda: self._submit_many(request.transactions, context.time_remaining())
        )

    # -- receipts --------------------------------------------------------------------------

    def _lookup(self, tx_id: bytes) -> rpb.Receipt | None:
        r = self.reader.receipt(tx_id)
        if r is not None:
            return receipt_pb(r)
        known, pos = self.view.inflight(tx_id)
        if not known:
            return None
        if pos is None:
            return rpb.Receipt(tx_id=tx_id, state=rpb.RECEIPT_STATE_PENDING)
        return rpb.Receipt(
            tx_id=tx_id,
            state=rpb.RECEIPT_STATE_SEQUENCED,
            position=pb.Position(height=pos[0], index=pos[1]),
        )

    def _receipt(self, tx_id: bytes) -> rpb.Receipt:
        r = self._lookup(_id(tx_id, "tx_id"))
        if r is None:
            raise NotFound(
                f"no transaction {tx_id.hex()} known to this node: not submitted here, "
                "or not executed yet"
            )
        return r

    def GetReceipt(
        self, request: rpb.GetReceiptRequest, context: grpc.ServicerContext
    ) -> rpb.GetReceiptResponse:
        return rpb.GetReceiptResponse(receipt=call(context, lambda: self._receipt(request.tx_id)))

    def _wait(self, tx_id: bytes, timeout_ms: int, remaining: float | None) -> rpb.Receipt:
        _id(tx_id, "tx_id")
        cap = self.config.max_wait_ms / 1000
        wait = min(timeout_ms / 1000, cap) if timeout_ms else cap
        if remaining is not None:
            wait = min(wait, remaining)
        deadline = time.monotonic() + wait
        r = self._lookup(tx_id)
        if r is not None and r.state == rpb.RECEIPT_STATE_EXECUTED:
            return r
        if not self._waiters.acquire(blocking=False):
            raise ResourceExhausted(
                "too many WaitReceipt calls waiting on this node: retry later or poll GetReceipt"
            )
        try:
            while True:
                seen = self.view.head.height
                r = self._lookup(tx_id)
                left = deadline - time.monotonic()
                if (r is not None and r.state == rpb.RECEIPT_STATE_EXECUTED) or left <= 0:
                    break
                self.view.wait_block(seen, left)
        finally:
            self._waiters.release()
        if r is None:
            return self._receipt(tx_id)
        return r

    def WaitReceipt(
        self, request: rpb.WaitReceiptRequest, context: grpc.ServicerContext
    ) -> rpb.WaitReceiptResponse:
        r = call(
            context, lambda: self._wait(request.tx_id, request.timeout_ms, context.time_remaining())
        )
        return rpb.WaitReceiptResponse(receipt=r)

    # -- state -----------------------------------------------------------------------------

    def GetBalance(
        self, request: rpb.GetBalanceRequest, context: grpc.ServicerContext
    ) -> rpb.GetBalanceResponse:
        def read() -> rpb.GetBalanceResponse:
            account = _key(request.account, "account")
            tx.check_asset(request.asset)
            return self._in_trio(
                lambda: rpb.GetBalanceResponse(
                    amount=self.machine.balance(account, request.asset), height=self.machine.height
                )
            )

        return call(context, read)

    def GetBalances(
        self, request: rpb.GetBalancesRequest, context: grpc.ServicerContext
    ) -> rpb.GetBalancesResponse:
        def read() -> rpb.GetBalancesResponse:
            account = _key(request.account, "account")
            return self._in_trio(
                lambda: rpb.GetBalancesResponse(
                    balances=[
                        rpb.AssetBalance(asset=a, amount=self.machine.balance(account, a))
                        for a in self.machine.assets
                    ],
                    height=self.machine.height,
                )
            )

        return call(context, read)

    def GetNonce(
        self, request: rpb.GetNonceRequest, context: grpc.ServicerContext
    ) -> rpb.GetNonceResponse:
        def read() -> rpb.GetNonceResponse:
            account = _key(request.account, "account")
            return self._in_trio(
                lambda: rpb.GetNonceResponse(
                    nonce=self.machine.nonce(account), height=self.machine.height
                )
            )

        return call(context, read)

    def _state_root(self, height: int, latest: bool) -> rpb.GetStateRootResponse:
        head = self.view.head
        if latest:
            if head.height < 0:
                raise NotFound("no block applied yet")
            return rpb.GetStateRootResponse(
                height=head.height, state_root=head.state_root, time_ms=head.time_ms
            )
        if height > head.height:
            raise OutOfRange(f"height {height} not applied yet: this node is at {head.height}")
        row = self.reader.root_at(height)
        if row is None:
            raise NotFound(f"no state root recorded for height {height}")
        return rpb.GetStateRootResponse(height=height, state_root=row[1], time_ms=row[0])

    def GetStateRoot(
        self, request: rpb.GetStateRootRequest, context: grpc.ServicerContext
    ) -> rpb.GetStateRootResponse:
        return call(context, lambda: self._state_root(request.height, request.latest))

    def GetEscrow(
        self, request: rpb.GetEscrowRequest, context: grpc.ServicerContext
    ) -> rpb.GetEscrowResponse:
        def read() -> rpb.GetEscrowResponse:
            swap_id = _id(request.swap_id, "swap_id")
            return self._in_trio(
                lambda: rpb.GetEscrowResponse(
                    legs=[
                        rpb.EscrowLeg(sender=g.payer, to=g.payee, asset=g.asset, amount=g.amount)
                        for g in self.machine.escrow(swap_id)
                    ],
                    height=self.machine.height,
                )
            )

        return call(context, read)

    def Status(
        self, request: rpb.RollupStatusRequest, context: grpc.ServicerContext
    ) -> rpb.RollupStatusResponse:
        head = self.view.head
        return rpb.RollupStatusResponse(
            rollup_id=self.config.rollup_id,
            height=head.height,
            time_ms=head.time_ms,
            state_root=head.state_root,
            sequencer_height=max(head.sequencer_height, 0),
            lag=head.lag,
            node_key=self.node_key,
        )


class RollupEdge(GrpcServer):
    """The running grpc server of one node, with its health service."""

    def __init__(self, config: NodeConfig, parts: NodeParts) -> None:
        super().__init__(
            rpb.DESCRIPTOR.services_by_name["RollupService"],
            RollupServicer(config, parts),
            config.listen,
            workers=config.grpc_workers,
            max_message_bytes=config.max_message_bytes,
            tls=config.tls,
            thread_name="rollup-grpc",
            maximum_concurrent_rpcs=4 * config.grpc_workers,
        )
