"""`SwapClient`: the synchronous client of a coordinator, with a timeout on every call."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import grpc

from rollup_client.protocol import swap
from rollup_client.protocol.errors import DeadlineExceeded, InvalidArgument, TandemError
from rollup_client.protocol.keys import SigningKey
from rollup_client.rpc.channels import open_channel
from rollup_client.rpc.status import rpc_error
from rollup_client.wire import swap_pb2 as pb
from rollup_client.wire import swap_pb2_grpc as pb_grpc
from swap_coordinator import convert

DEFAULT_TIMEOUT_S = 10.0
NONCE_BYTES = 16
FRESH_S = 1.0
"""How long a log time read from an answer still serves as "now" for a new deadline."""


class SwapClient:
    """One channel to one coordinator (`credentials`: mutual TLS, see rollup_client.rpc.tls)."""

    def __init__(
        self,
        target: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        self.target = target
        self.timeout = timeout
        self._channel = open_channel(target, credentials)
        self._stub = pb_grpc.SwapServiceStub(self._channel)
        self._seen: tuple[int, float] = (0, -math.inf)
        """The newest log time in an answer, and when (monotonic) it was seen."""

    def __enter__(self) -> SwapClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _call(self, method: Callable[..., Any], request: Any) -> Any:
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as exc:
            raise rpc_error(exc, f"coordinator {self.target}") from None

    def propose(
        self,
        legs: Sequence[swap.Leg],
        *,
        timeout_ms: int = 0,
        deadline_ms: int = 0,
        nonce: bytes = b"",
    ) -> pb.ProposeResponse:
        req = pb.ProposeRequest(
            legs=[convert.leg_to_pb(leg) for leg in legs],
            timeout_ms=timeout_ms,
            deadline_ms=deadline_ms,
            nonce=nonce,
        )
        resp: pb.ProposeResponse = self._call(self._stub.Propose, req)
        self._saw(resp.status)
        return resp

    def propose_signed(
        self,
        legs: Sequence[swap.Leg],
        signers: Sequence[SigningKey],
        *,
        timeout_ms: int = 0,
        deadline_ms: int = 0,
        nonce: bytes = b"",
    ) -> pb.ProposeResponse:
        """Propose and sign in one call, for a client that holds payers' keys (`signers`).

        The intent is built and signed here, so its deadline is absolute: a `timeout_ms`
        counts from the coordinator's log time (see `recent_log_time`). Signed by every
        payer, the intent is submitted at once, without a round trip per signature.
        """
        deadline_ms = self._deadline(timeout_ms, deadline_ms)
        req = _signed_request(legs, signers, deadline_ms, nonce)
        resp: pb.ProposeResponse = self._call(self._stub.Propose, req)
        self._saw(resp.status)
        return resp

    def propose_signed_many(
        self,
        swaps: Sequence[tuple[Sequence[swap.Leg], bytes]],
        signers: Sequence[SigningKey],
        *,
        timeout_ms: int = 0,
        deadline_ms: int = 0,
    ) -> list[pb.ProposeResponse]:
        """`propose_signed` for many (legs, nonce) swaps at once, all in flight together.

        The coordinator saves proposals that arrive together in one group write and
        submits complete intents together in one batch, so many swaps cost about what
        one does; one call after the other would wait for each write in turn. Answers
        come in the order asked; if any failed, the first failure is raised once every
        call has ended.
        """
        deadline_ms = self._deadline(timeout_ms, deadline_ms)
        futures = [
            self._stub.Propose.future(
                _signed_request(legs, signers, deadline_ms, nonce), timeout=self.timeout
            )
            for legs, nonce in swaps
        ]
        out: list[pb.ProposeResponse] = []
        failed: TandemError | None = None
        for fut in futures:
            try:
                resp: pb.ProposeResponse = fut.result()
            except grpc.RpcError as exc:
                failed = failed or rpc_error(exc, f"coordinator {self.target}")
                continue
            self._saw(resp.status)
            out.append(resp)
        if failed is not None:
            raise failed
        return out

    def _deadline(self, timeout_ms: int, deadline_ms: int) -> int:
        if (timeout_ms > 0) == (deadline_ms > 0):
            raise InvalidArgument("give exactly one of timeout_ms and deadline_ms")
        return deadline_ms or self.recent_log_time() + timeout_ms

    def log_time(self) -> int:
        """The coordinator's log time (ms): what an absolute deadline is set from."""
        resp: pb.LogTimeResponse = self._call(self._stub.LogTime, pb.LogTimeRequest())
        self._saw_time(resp.log_time_ms)
        return resp.log_time_ms

    def recent_log_time(self) -> int:
        """The newest log time an answer carried in the last FRESH_S, else `log_time()`.

        Log time only grows, so a timeout counted from it comes out at most that much
        shorter, never longer: the coordinator counts its own timeouts the same way.
        """
        seen, at = self._seen
        if time.monotonic() - at < FRESH_S:
            return seen
        return self.log_time()

    def _saw(self, status: pb.SwapStatus) -> None:
        self._saw_time(status.log_time_ms)

    def _saw_time(self, log_time_ms: int) -> None:
        if log_time_ms >= self._seen[0]:
            self._seen = (log_time_ms, time.monotonic())

    def sign(self, swap_id: bytes, payer: bytes, signature: bytes) -> pb.SwapStatus:
        req = pb.SignRequest(swap_id=swap_id, payer=payer, signature=signature)
        resp: pb.SignResponse = self._call(self._stub.Sign, req)
        self._saw(resp.status)
        return resp.status

    def get(self, swap_id: bytes) -> pb.SwapStatus:
        resp: pb.GetSwapResponse = self._call(self._stub.Get, pb.GetSwapRequest(swap_id=swap_id))
        self._saw(resp.status)
        return resp.status

    def list(self, state: int = pb.SWAP_STATE_UNSPECIFIED, limit: int = 0) -> list[pb.SwapStatus]:
        req = pb.ListSwapsRequest(state=state, limit=limit)  # type: ignore[arg-type]
        resp: pb.ListSwapsResponse = self._call(self._stub.List, req)
        return list(resp.swaps)

    def watch(self, swap_id: bytes, timeout: float) -> Iterator[pb.SwapStatus]:
        """Status changes until the swap is final or `timeout` seconds pass (then it ends)."""
        stream = self._stub.Watch(pb.WatchSwapRequest(swap_id=swap_id), timeout=timeout)
        try:
            for msg in stream:
                self._saw(msg.status)
                yield msg.status
        except grpc.RpcError as exc:
            error = rpc_error(exc, f"coordinator {self.target}")
            if not isinstance(error, DeadlineExceeded):
                raise error from None
        finally:
            stream.cancel()


def _signed_request(
    legs: Sequence[swap.Leg], signers: Sequence[SigningKey], deadline_ms: int, nonce: bytes
) -> pb.ProposeRequest:
    """A Propose request carrying `signers`' signatures over the intent it makes."""
    intent = swap.Intent(tuple(legs), deadline_ms, nonce or os.urandom(NONCE_BYTES))
    data = intent.signing_bytes()
    return pb.ProposeRequest(
        legs=[convert.leg_to_pb(leg) for leg in legs],
        deadline_ms=deadline_ms,
        nonce=intent.nonce,
        signatures=[pb.PayerSignature(payer=k.public, signature=k.sign(data)) for k in signers],
    )
