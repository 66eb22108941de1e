"""The grpcio edge: a synchronous server adapting RPCs to `Handlers`.

Every library error becomes its gRPC status here, through the one table in
rollup_client.errors; anything else is a bug and surfaces as INTERNAL without killing
the server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent import futures
from typing import NoReturn, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from rollup_client.errors import GRPC_CODES, TandemError
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
        pb_grpc.add_SequencerServiceServicer_to_server(SequencerServicer(handlers), self.server)
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
