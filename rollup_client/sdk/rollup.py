"""`RollupClient` (synchronous) and `TrioRollupClient`: the user SDK of a rollup node.

Both share every request builder and response parser (httpx style), and map failed calls
through rollup_client.rpc.status; they differ only in how one unary call is made. Every call
has a timeout. `transfer` fetches the sender's nonce, signs, submits and returns the receipt
once executed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from rollup_client.protocol import keys, tx
from rollup_client.protocol.errors import DeadlineExceeded, TandemError
from rollup_client.rpc.channels import call_unary, open_channel
from rollup_client.rpc.status import from_number, rpc_error
from rollup_client.wire import rollup_pb2 as rpb
from rollup_client.wire import rollup_pb2_grpc as rpb_grpc

DEFAULT_TIMEOUT_S = 10.0
# Extra time given to the RPC beyond a WaitReceipt's own wait, so the server answers first.
_WAIT_MARGIN_S = 2.0

_STATES = {
    rpb.RECEIPT_STATE_PENDING: "pending",
    rpb.RECEIPT_STATE_SEQUENCED: "sequenced",
    rpb.RECEIPT_STATE_EXECUTED: "executed",
}


@dataclass(frozen=True, slots=True)
class Submitted:
    """Where a submitted transaction landed in the log."""

    tx_id: bytes
    height: int
    index: int
    duplicate: bool


@dataclass(frozen=True, slots=True)
class TxReceipt:
    """A transaction's state: "pending", "sequenced" or "executed" (then `ok`, `reason`)."""

    tx_id: bytes
    state: str
    height: int = 0
    index: int = 0
    ok: bool = False
    reason: str = ""
    kind: str = ""
    swap_id: bytes = b""
    block_start: bool = False

    @property
    def executed(self) -> bool:
        return self.state == "executed"


@dataclass(frozen=True, slots=True)
class StateRoot:
    height: int
    state_root: bytes
    time_ms: int


@dataclass(frozen=True, slots=True)
class EscrowLeg:
    sender: bytes
    to: bytes
    asset: str
    amount: int


@dataclass(frozen=True, slots=True)
class RollupStatus:
    rollup_id: str
    height: int
    time_ms: int
    state_root: bytes
    sequencer_height: int
    lag: int
    node_key: bytes


# -- shared request building and response parsing ---------------------------------------


def _receipt(r: rpb.Receipt) -> TxReceipt:
    return TxReceipt(
        tx_id=r.tx_id,
        state=_STATES.get(r.state, "unspecified"),
        height=r.position.height,
        index=r.position.index,
        ok=r.ok,
        reason=r.reason,
        kind=r.kind,
        swap_id=r.swap_id,
        block_start=r.block_start,
    )


def _executed(r: TxReceipt, wait_s: float) -> TxReceipt:
    if not r.executed:
        raise DeadlineExceeded(
            f"transaction {r.tx_id.hex()} still {r.state} after {wait_s:g} s"
            + (f" (sequenced at {r.height}:{r.index})" if r.state == "sequenced" else "")
        )
    return r


def _sign_transfer(
    rollup: str, key: keys.SigningKey, to: bytes, asset: str, amount: int, nonce: int
) -> tx.SignedTransfer:
    return tx.Transfer(key.public, to, asset, amount, nonce, rollup).sign(key)


def _status(r: rpb.RollupStatusResponse) -> RollupStatus:
    return RollupStatus(
        r.rollup_id, r.height, r.time_ms, r.state_root, r.sequencer_height, r.lag, r.node_key
    )


def _root(r: rpb.GetStateRootResponse) -> StateRoot:
    return StateRoot(r.height, r.state_root, r.time_ms)


def _root_req(height: int | None) -> rpb.GetStateRootRequest:
    if height is None:
        return rpb.GetStateRootRequest(latest=True)
    return rpb.GetStateRootRequest(height=height)


def _legs(r: rpb.GetEscrowResponse) -> list[EscrowLeg]:
    return [EscrowLeg(g.sender, g.to, g.asset, g.amount) for g in r.legs]


def _submitted(r: rpb.SubmitTransactionResponse) -> Submitted:
    return Submitted(r.tx_id, r.position.height, r.position.index, r.duplicate)


def _results(r: rpb.SubmitTransactionsResponse, who: str) -> list[Submitted | TandemError]:
    out: list[Submitted | TandemError] = []
    for x in r.results:
        if x.code:
            out.append(from_number(x.code, f"{who}: {x.error}"))
        else:
            out.append(Submitted(x.tx_id, x.position.height, x.position.index, x.duplicate))
    return out


def _many_req(stxs: Sequence[tx.SignedTransfer]) -> rpb.SubmitTransactionsRequest:
    return rpb.SubmitTransactionsRequest(transactions=[s.encode() for s in stxs])


def _wait_req(tx_id: bytes, wait_s: float) -> rpb.WaitReceiptRequest:
    return rpb.WaitReceiptRequest(tx_id=tx_id, timeout_ms=max(1, int(wait_s * 1000)))


class _Base:
    """Target, stub and timeout shared by both clients."""

    def __init__(
        self,
        target: str,
        timeout: float,
        channel: grpc.Channel | None,
        credentials: grpc.ChannelCredentials | None,
    ) -> None:
        self.target = target
        self.timeout = timeout
        self._channel = open_channel(target, credentials) if channel is None else channel
        self._stub = rpb_grpc.RollupServiceStub(self._channel)
        self._rollup_id: str | None = None

    def close(self) -> None:
        self._channel.close()

    def _who(self) -> str:
        return f"rollup node {self.target}"


class RollupClient(_Base):
    """Synchronous client of one rollup node (`credentials`: mutual TLS, rollup_client.rpc.tls)."""

    def __init__(
        self,
        target: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        channel: grpc.Channel | None = None,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        super().__init__(target, timeout, channel, credentials)

    def __enter__(self) -> RollupClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: Callable[..., Any], request: Any, timeout: float | None = None) -> Any:
        try:
            return method(request, timeout=timeout or self.timeout)
        except grpc.RpcError as exc:
            raise rpc_error(exc, self._who()) from None

    def status(self) -> RollupStatus:
        return _status(self._call(self._stub.Status, rpb.RollupStatusRequest()))

    def rollup_id(self) -> str:
        if self._rollup_id is None:
            self._rollup_id = self.status().rollup_id
        return self._rollup_id

    def submit(self, stx: tx.SignedTransfer) -> Submitted:
        """Forward a signed transaction; returns its log position once durable."""
        req = rpb.SubmitTransactionRequest(transaction=stx.encode())
        return _submitted(self._call(self._stub.SubmitTransaction, req))

    def submit_raw(self, data: bytes) -> Submitted:
        """Forward transaction bytes as they are (tools and tests of malformed input)."""
        req = rpb.SubmitTransactionRequest(transaction=data)
        return _submitted(self._call(self._stub.SubmitTransaction, req))

    def submit_many(self, stxs: Sequence[tx.SignedTransfer]) -> list[Submitted | TandemError]:
        """Forward up to 1000 transactions in one call; one result or error each, in order."""
        return _results(self._call(self._stub.SubmitTransactions, _many_req(stxs)), self._who())

    def receipt(self, tx_id: bytes) -> TxReceipt:
        resp = self._call(self._stub.GetReceipt, rpb.GetReceiptRequest(tx_id=tx_id))
        return _receipt(resp.receipt)

    def wait_receipt(self, tx_id: bytes, wait_s: float | None = None) -> TxReceipt:
        """The receipt once executed; DeadlineExceeded if not within `wait_s`."""
        wait = self.timeout if wait_s is None else wait_s
        resp = self._call(
            self._stub.WaitReceipt, _wait_req(tx_id, wait), timeout=wait + _WAIT_MARGIN_S
        )
        return _executed(_receipt(resp.receipt), wait)

    def transfer(
        self,
        key: keys.SigningKey,
        to: bytes,
        asset: str,
        amount: int,
        *,
        nonce: int | None = None,
        wait_s: float | None = None,
    ) -> TxReceipt:
        """Sign and submit a transfer from `key`'s account; the receipt once executed.

        The nonce is fetched from the node unless given (give it when sending several
        transfers from one account without waiting for each).
        """
        n = self.nonce(key.public) if nonce is None else nonce
        stx = _sign_transfer(self.rollup_id(), key, to, asset, amount, n)
        sub = self.submit(stx)
        return self.wait_receipt(sub.tx_id, wait_s)

    def balance(self, account: bytes, asset: str) -> int:
        req = rpb.GetBalanceRequest(account=account, asset=asset)
        return int(self._call(self._stub.GetBalance, req).amount)

    def balances(self, account: bytes) -> dict[str, int]:
        resp = self._call(self._stub.GetBalances, rpb.GetBalancesRequest(account=account))
        return {b.asset: b.amount for b in resp.balances}

    def nonce(self, account: bytes) -> int:
        return int(self._call(self._stub.GetNonce, rpb.GetNonceRequest(account=account)).nonce)

    def state_root(self, height: int | None = None) -> StateRoot:
        """The state root after block `height` (None: the newest applied)."""
        return _root(self._call(self._stub.GetStateRoot, _root_req(height)))

    def escrow(self, swap_id: bytes) -> list[EscrowLeg]:
        """What this rollup holds locked for `swap_id` now."""
        return _legs(self._call(self._stub.GetEscrow, rpb.GetEscrowRequest(swap_id=swap_id)))


class TrioRollupClient(_Base):
    """The same client for trio code; calls are cancellable and never block the loop."""

    def __init__(
        self,
        target: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        channel: grpc.Channel | None = None,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        super().__init__(target, timeout, channel, credentials)

    async def __aenter__(self) -> TrioRollupClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    async def _call(self, method: Any, request: Any, timeout: float | None = None) -> Any:
        return await call_unary(method, request, timeout or self.timeout, self._who())

    async def status(self) -> RollupStatus:
        return _status(await self._call(self._stub.Status, rpb.RollupStatusRequest()))

    async def rollup_id(self) -> str:
        if self._rollup_id is None:
            self._rollup_id = (await self.status()).rollup_id
        return self._rollup_id

    async def submit(self, stx: tx.SignedTransfer) -> Submitted:
        req = rpb.SubmitTransactionRequest(transaction=stx.encode())
        return _submitted(await self._call(self._stub.SubmitTransaction, req))

    async def submit_raw(self, data: bytes) -> Submitted:
        req = rpb.SubmitTransactionRequest(transaction=data)
        return _submitted(await self._call(self._stub.SubmitTransaction, req))

    async def submit_many(self, stxs: Sequence[tx.SignedTransfer]) -> list[Submitted | TandemError]:
        resp = await self._call(self._stub.SubmitTransactions, _many_req(stxs))
        return _results(resp, self._who())

    async def receipt(self, tx_id: bytes) -> TxReceipt:
        resp = await self._call(self._stub.GetReceipt, rpb.GetReceiptRequest(tx_id=tx_id))
        return _receipt(resp.receipt)

    async def wait_receipt(self, tx_id: bytes, wait_s: float | None = None) -> TxReceipt:
        wait = self.timeout if wait_s is None else wait_s
        resp = await self._call(
            self._stub.WaitReceipt, _wait_req(tx_id, wait), timeout=wait + _WAIT_MARGIN_S
        )
        return _executed(_receipt(resp.receipt), wait)

    async def transfer(
        self,
        key: keys.SigningKey,
        to: bytes,
        asset: str,
        amount: int,
        *,
        nonce: int | None = None,
        wait_s: float | None = None,
    ) -> TxReceipt:
        n = await self.nonce(key.public) if nonce is None else nonce
        stx = _sign_transfer(await self.rollup_id(), key, to, asset, amount, n)
        sub = await self.submit(stx)
        return await self.wait_receipt(sub.tx_id, wait_s)

    async def balance(self, account: bytes, asset: str) -> int:
        req = rpb.GetBalanceRequest(account=account, asset=asset)
        return int((await self._call(self._stub.GetBalance, req)).amount)

    async def balances(self, account: bytes) -> dict[str, int]:
        resp = await self._call(self._stub.GetBalances, rpb.GetBalancesRequest(account=account))
        return {b.asset: b.amount for b in resp.balances}

    async def nonce(self, account: bytes) -> int:
        resp = await self._call(self._stub.GetNonce, rpb.GetNonceRequest(account=account))
        return int(resp.nonce)

    async def state_root(self, height: int | None = None) -> StateRoot:
        return _root(await self._call(self._stub.GetStateRoot, _root_req(height)))

    async def escrow(self, swap_id: bytes) -> list[EscrowLeg]:
        resp = await self._call(self._stub.GetEscrow, rpb.GetEscrowRequest(swap_id=swap_id))
        return _legs(resp)
