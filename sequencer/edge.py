"""The grpcio edge: a synchronous server adapting RPCs to `Handlers`.

Every library error becomes its gRPC status here, through the one table in
rollup_client.errors; anything else is a bug and surfaces as INTERNAL without killing
the server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any, NoReturn, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from rollup_client.errors import GRPC_CODES, InvalidArgument, TandemError
from rollup_client.wire import sequencer_pb2 as pb
from rollup_client.wire import sequencer_pb2_grpc as pb_grpc
from sequencer.handlers import Handlers

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["SequencerService"].full_name
T = TypeVar("T")


def _abort(context: grpc.ServicerContext, exc: TandemError) -> NoReturn:
    context.abort(GRPC_CODES.get(type(exc), grpc.StatusCode.UNKNOWN), str(exc))
    raise AssertionError("unreachable: context.abort raises")


def _call(context: grpc.ServicerContext, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except TandemError as exc:
        _abort(context, exc)


class SequencerServicer(pb_grpc.SequencerServiceServicer):
    """Thin adapter: request fields in, `Handlers` call, response out."""

    def __init__(self, handlers: Handlers) -> None:
        self.h = handlers

    def SubmitBatch(
        self, request: pb.SubmitBatchRequest, context: grpc.ServicerContext
    ) -> pb.SubmitBatchResponse:
        acks = _call(
            context,
            lambda: self.h.submit_batch(
                request.client_key,
                request.entries,
                request.bundle,
                request.signature,
                context.time_remaining(),
            ),
        )
        return pb.SubmitBatchResponse(acks=acks)

    def Submit(self, request: pb.SubmitRequest, context: grpc.ServicerContext) -> pb.SubmitResponse:
        entries = [request.entry] if request.HasField("entry") else []
        acks = _call(
            context,
            lambda: self.h.submit_batch(
                request.client_key, entries, False, request.signature, context.time_remaining()
            ),
        )
        return pb.SubmitResponse(ack=acks[0])

    def GetBlock(
        self, request: pb.GetBlockRequest, context: grpc.ServicerContext
    ) -> pb.GetBlockResponse:
        blk = _call(
            context,
            lambda: self.h.get_block(request.height, request.namespaces, request.all_namespaces),
        )
        return pb.GetBlockResponse(block=blk)

    def GetEntry(
        self, request: pb.GetEntryRequest, context: grpc.ServicerContext
    ) -> pb.GetEntryResponse:
        return _call(context, lambda: self.h.get_entry(request.entry_id))

    def Subscribe(
        self, request: pb.SubscribeRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.SubscribeResponse]:
        try:
            yield from self.h.subscribe(request.namespaces, request.from_height, context.is_active)
        except TandemError as exc:
            _abort(context, exc)

    def Status(self, request: pb.StatusRequest, context: grpc.ServicerContext) -> pb.StatusResponse:
        return _call(context, self.h.status)


class _Unparseable:
    """Stands in for request bytes that did not parse (grpcio treats None as a failure)."""


UNPARSEABLE = _Unparseable()


def _lenient(message: type[Message]) -> Callable[[bytes], Message | _Unparseable]:
    """Parse request bytes, or UNPARSEABLE so the handler can answer INVALID_ARGUMENT.

    grpcio would otherwise answer INTERNAL before any handler runs.
    """

    def parse(data: bytes) -> Message | _Unparseable:
        try:
            return message.FromString(data)
        except DecodeError:
            return UNPARSEABLE

    return parse


def rpc_handlers(servicer: SequencerServicer) -> grpc.GenericRpcHandler:
    """The service's method handlers, with request parsing that tolerates garbage."""

    def unary(
        method: Callable[[Any, grpc.ServicerContext], Message],
        req: type[Message],
        resp: type[Message],
    ) -> grpc.RpcMethodHandler:
        return grpc.unary_unary_rpc_method_handler(
            _checked(method, req),
            request_deserializer=_lenient(req),
            response_serializer=resp.SerializeToString,
        )

    return grpc.method_handlers_generic_handler(
        SERVICE_NAME,
        {
            "SubmitBatch": unary(
                servicer.SubmitBatch, pb.SubmitBatchRequest, pb.SubmitBatchResponse
            ),
            "Submit": unary(servicer.Submit, pb.SubmitRequest, pb.SubmitResponse),
            "GetBlock": unary(servicer.GetBlock, pb.GetBlockRequest, pb.GetBlockResponse),
            "GetEntry": unary(servicer.GetEntry, pb.GetEntryRequest, pb.GetEntryResponse),
            "Status": unary(servicer.Status, pb.StatusRequest, pb.StatusResponse),
            "Subscribe": grpc.unary_stream_rpc_method_handler(
                _checked_stream(servicer.Subscribe, pb.SubscribeRequest),
                request_deserializer=_lenient(pb.SubscribeRequest),
                response_serializer=pb.SubscribeResponse.SerializeToString,
            ),
        },
    )


def _unparseable(context: grpc.ServicerContext, req: type[Message]) -> NoReturn:
    _abort(context, InvalidArgument(f"request bytes are not a valid {req.DESCRIPTOR.name}"))


def _checked(
    method: Callable[[Any, grpc.ServicerContext], T], req: type[Message]
) -> Callable[[Message | _Unparseable, grpc.ServicerContext], T]:
    def handle(request: Message | _Unparseable, context: grpc.ServicerContext) -> T:
        if isinstance(request, _Unparseable):
            _unparseable(context, req)
        return method(request, context)

    return handle


def _checked_stream(
    method: Callable[[Any, grpc.ServicerContext], Iterator[T]], req: type[Message]
) -> Callable[[Message | _Unparseable, grpc.ServicerContext], Iterator[T]]:
    def handle(request: Message | _Unparseable, context: grpc.ServicerContext) -> Iterator[T]:
        if isinstance(request, _Unparseable):
            _unparseable(context, req)
        yield from method(request, context)

    return handle


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
    """The running grpc server with its health service."""

    def __init__(self, handlers: Handlers, listen: str, workers: int) -> None:
        limits = handlers.config.limits
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="seq-grpc"),
            options=server_options(limits.max_message_bytes),
        )
        self.server.add_generic_rpc_handlers((rpc_handlers(SequencerServicer(handlers)),))
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
        )
        host = listen.rpartition(":")[0]
        self.port = self.server.add_insecure_port(listen)
        self.listen = f"{host}:{self.port}"
        for name in ("", SERVICE_NAME):
            self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)

    def start(self) -> None:
        self.server.start()

    def serving(self) -> None:
        for name in ("", SERVICE_NAME):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    def draining(self) -> None:
        self.health.enter_graceful_shutdown()

    def stop(self, grace: float) -> None:
        self.server.stop(grace).wait()
