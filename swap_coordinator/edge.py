"""The grpcio edge of the coordinator: requests in, one hop into the trio shell, responses out.

Every library error becomes its gRPC status through the one table in rollup_client.rpc.status;
anything else surfaces as INTERNAL without taking the server down.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Protocol

import grpc

from rollup_client.rpc import GrpcServer, TlsFiles, call
from rollup_client.wire import swap_pb2 as pb
from rollup_client.wire import swap_pb2_grpc as pb_grpc

FINAL = (pb.SWAP_STATE_COMMITTED, pb.SWAP_STATE_ABORTED, pb.SWAP_STATE_EXPIRED)


class Api(Protocol):
    """What the edge needs from the shell; every call is safe from any thread."""

    def propose(self, request: pb.ProposeRequest) -> pb.ProposeResponse: ...
    def sign(self, swap_id: bytes, payer: bytes, signature: bytes) -> pb.SwapStatus: ...
    def get(self, swap_id: bytes) -> pb.SwapStatus: ...
    def list_swaps(self, state: int, limit: int) -> list[pb.SwapStatus]: ...
    def log_time(self) -> int: ...
    def touches(self, swap_id: bytes) -> int: ...
    def wait_touch(
        self, swap_id: bytes, mark: int, timeout: float
    ) -> tuple[int, pb.SwapStatus | None]: ...
    def wake(self, swap_id: bytes) -> None: ...


class SwapServicer(pb_grpc.SwapServiceServicer):
    """Thin adapter: request fields in, `Api` call, response out."""

    def __init__(self, api: Api, watch_poll_s: float = 1.0) -> None:
        self.api = api
        self.watch_poll_s = watch_poll_s

    def Propose(
        self, request: pb.ProposeRequest, context: grpc.ServicerContext
    ) -> pb.ProposeResponse:
        return call(context, lambda: self.api.propose(request))

    def Sign(self, request: pb.SignRequest, context: grpc.ServicerContext) -> pb.SignResponse:
        st = call(context, lambda: self.api.sign(request.swap_id, request.payer, request.signature))
        return pb.SignResponse(status=st)

    def Get(self, request: pb.GetSwapRequest, context: grpc.ServicerContext) -> pb.GetSwapResponse:
        return pb.GetSwapResponse(status=call(context, lambda: self.api.get(request.swap_id)))

    def List(
        self, request: pb.ListSwapsRequest, context: grpc.ServicerContext
    ) -> pb.ListSwapsResponse:
        swaps = call(context, lambda: self.api.list_swaps(request.state, request.limit))
        return pb.ListSwapsResponse(swaps=swaps)

    def LogTime(
        self, request: pb.LogTimeRequest, context: grpc.ServicerContext
    ) -> pb.LogTimeResponse:
        return pb.LogTimeResponse(log_time_ms=call(context, self.api.log_time))

    def Watch(
        self, request: pb.WatchSwapRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.WatchSwapResponse]:
        """Each status change of the swap, and the log time left at most every poll.

        The status is fetched again (one hop into the trio thread) as soon as something
        happened to this swap (signature, submission, intent or vote ordered, decision),
        so the final state goes out at once; otherwise only every `watch_poll_s`, not on
        every block: under load blocks come back to back and many Watch streams are open.
        The stream's thread sleeps until then, woken early only by its own swap or by the
        stream ending; a touch that hands over the status spares the hop.
        """
        sid = request.swap_id
        context.add_callback(lambda: self.api.wake(sid))
        last: pb.SwapStatus | None = None
        mark = self.api.touches(sid)
        st = call(context, lambda: self.api.get(sid))
        while context.is_active():
            if st != last:
                yield pb.WatchSwapResponse(status=st)
                last = st
            if st.state in FINAL:
                return
            fresh: pb.SwapStatus | None = None
            refresh_at = time.monotonic() + self.watch_poll_s
            while context.is_active() and time.monotonic() < refresh_at:
                left = max(0.0, refresh_at - time.monotonic())
                seen, fresh = self.api.wait_touch(sid, mark, left)
                if seen != mark:
                    mark = seen
                    break
                fresh = None
            if fresh is not None:
                st = fresh
            elif context.is_active():
                mark = self.api.touches(sid)
                st = call(context, lambda: self.api.get(sid))


class Edge(GrpcServer):
    """The coordinator's grpc server: SERVING from `start` until `stop` drains it."""

    def __init__(
        self,
        api: Api,
        listen: str,
        workers: int,
        max_message_bytes: int,
        tls: TlsFiles | None = None,
    ) -> None:
        super().__init__(
            pb.DESCRIPTOR.services_by_name["SwapService"],
            SwapServicer(api),
            listen,
            workers=workers,
            max_message_bytes=max_message_bytes,
            tls=tls,
            thread_name="swap-grpc",
        )

    def start(self) -> None:
        super().start()
        self.serving()

    def stop(self, grace: float) -> None:
        self.draining()
        super().stop(grace)
