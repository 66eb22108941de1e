"""The grpcio edge of the coordinator: requests in, one hop into the trio shell, responses out.

Every library error becomes its gRPC status through the one table in rollup_client.errors;
anything else surfaces as INTERNAL without taking the server down.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any, NoReturn, Protocol, TypeVar

import grpc
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from rollup_client.errors import GRPC_CODES, TandemError
from rollup_client.node_tls import TlsFiles
from rollup_client.wire import swap_pb2 as pb
from rollup_client.wire import swap_pb2_grpc as pb_grpc

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["SwapService"].full_name
FINAL = (pb.SWAP_STATE_COMMITTED, pb.SWAP_STATE_ABORTED, pb.SWAP_STATE_EXPIRED)
T = TypeVar("T")


class Api(Protocol):
    """What the edge needs from the shell; every call is safe from any thread."""

    def propose(self, request: pb.ProposeRequest) -> pb.ProposeResponse: ...
    def sign(self, swap_id: bytes, payer: bytes, signature: bytes) -> pb.SwapStatus: ...
    def get(self, swap_id: bytes) -> pb.SwapStatus: ...
    def list_swaps(self, state: int, limit: int) -> list[pb.SwapStatus]: ...
    def version(self) -> int: ...
    def wait_change(self, version: int, timeout: float) -> int: ...


def _abort(context: grpc.ServicerContext, exc: TandemError) -> NoReturn:
    context.abort(GRPC_CODES.get(type(exc), grpc.StatusCode.UNKNOWN), str(exc))
    raise AssertionError("unreachable: context.abort raises")


def _call(context: grpc.ServicerContext, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except TandemError as exc:
        _abort(context, exc)


class SwapServicer(pb_grpc.SwapServiceServicer):
    """Thin adapter: request fields in, `Api` call, response out."""

    def __init__(self, api: Api, watch_poll_s: float = 1.0, watch_min_s: float = 0.05) -> None:
        self.api = api
        self.watch_poll_s = watch_poll_s
        self.watch_min_s = watch_min_s

    def Propose(
        self, request: pb.ProposeRequest, context: grpc.ServicerContext
    ) -> pb.ProposeResponse:
        return _call(context, lambda: self.api.propose(request))

    def Sign(self, request: pb.SignRequest, context: grpc.ServicerContext) -> pb.SignResponse:
        st = _call(
            context, lambda: self.api.sign(request.swap_id, request.payer, request.signature)
        )
        return pb.SignResponse(status=st)

    def Get(self, request: pb.GetSwapRequest, context: grpc.ServicerContext) -> pb.GetSwapResponse:
        return pb.GetSwapResponse(status=_call(context, lambda: self.api.get(request.swap_id)))

    def List(
        self, request: pb.ListSwapsRequest, context: grpc.ServicerContext
    ) -> pb.ListSwapsResponse:
        swaps = _call(context, lambda: self.api.list_swaps(request.state, request.limit))
        return pb.ListSwapsResponse(swaps=swaps)

    def Watch(
        self, request: pb.WatchSwapRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.WatchSwapResponse]:
        last: pb.SwapStatus | None = None
        version = self.api.version()
        while context.is_active():
            st = _call(context, lambda: self.api.get(request.swap_id))
            if st != last:
                yield pb.WatchSwapResponse(status=st)
                last = st
            if st.state in FINAL:
                return
            # at most one update per watch_min_s: blocks come back to back under load
            earliest = time.monotonic() + self.watch_min_s
            version = self.api.wait_change(version, self.watch_poll_s)
            time.sleep(max(0.0, earliest - time.monotonic()))


_MALFORMED = object()
"""What a lenient parser returns for bad bytes (grpc itself answers INTERNAL to None)."""


def _lenient(message: Any) -> Callable[[bytes], Any]:
    """A request parser that yields _MALFORMED for bytes that are not the message."""

    def parse(data: bytes) -> Any:
        try:
            return message.FromString(data)
        except DecodeError:
            return _MALFORMED

    return parse


def _malformed(context: grpc.ServicerContext, name: str) -> NoReturn:
    context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"malformed request: not a valid {name}")
    raise AssertionError("unreachable: context.abort raises")


def _guarded(fn: Callable[..., Any], name: str, streaming: bool) -> Callable[..., Any]:
    if streaming:

        def stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            if request is _MALFORMED:
                _malformed(context, name)
            yield from fn(request, context)

        return stream

    def unary(request: Any, context: grpc.ServicerContext) -> Any:
        if request is _MALFORMED:
            _malformed(context, name)
        return fn(request, context)

    return unary


def register(servicer: SwapServicer, server: grpc.Server) -> None:
    """The generated registration, except that undecodable requests get INVALID_ARGUMENT."""
    handlers = {}
    for m in pb.DESCRIPTOR.services_by_name["SwapService"].methods:
        request, response = getattr(pb, m.input_type.name), getattr(pb, m.output_type.name)
        make = (
            grpc.unary_stream_rpc_method_handler
            if m.server_streaming
            else grpc.unary_unary_rpc_method_handler
        )
        handlers[m.name] = make(
            _guarded(getattr(servicer, m.name), m.input_type.name, m.server_streaming),
            request_deserializer=_lenient(request),
            response_serializer=response.SerializeToString,
        )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))


def server_options(max_message_bytes: int) -> list[tuple[str, int]]:
    """Explicit channel options: no port sharing, bounded messages, keepalive."""
    return [
        ("grpc.so_reuseport", 0),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
        ("grpc.http2.max_ping_strikes", 0),
    ]


class Edge:
    """The running grpc server with health checking and reflection."""

    def __init__(
        self,
        api: Api,
        listen: str,
        workers: int,
        max_message_bytes: int,
        tls: TlsFiles | None = None,
    ) -> None:
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="swap-grpc"),
            options=server_options(max_message_bytes),
        )
        register(SwapServicer(api), self.server)
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
        )
        host = listen.rpartition(":")[0]
        if tls is None:
            self.port = self.server.add_insecure_port(listen)
        else:
            self.port = self.server.add_secure_port(listen, tls.server_credentials())
        self.listen = f"{host}:{self.port}"
        self._set(health_pb2.HealthCheckResponse.NOT_SERVING)

    def _set(self, status: health_pb2.HealthCheckResponse.ServingStatus.ValueType) -> None:
        for name in ("", SERVICE_NAME):
            self.health.set(name, status)

    def start(self) -> None:
        self.server.start()
        self._set(health_pb2.HealthCheckResponse.SERVING)

    def stop(self, grace: float) -> None:
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()
