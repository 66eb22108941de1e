"""The one grpcio server shell every Tandem process uses: options, registration, lifecycle.

The sequencer, the rollup node and the coordinator differ only in their servicer; how a
server is configured, how it answers request bytes that do not parse, how it reports health
and drains, and how it binds (plaintext or mutual TLS) is decided once, here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from concurrent import futures
from typing import Any, NoReturn, TypeVar

import grpc
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from rollup_client.protocol.errors import FailedPrecondition, InvalidArgument, TandemError
from rollup_client.rpc.status import code_of
from rollup_client.rpc.tls import TlsFiles

T = TypeVar("T")


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


def abort(context: grpc.ServicerContext, exc: TandemError) -> NoReturn:
    """End the call with the status the one table in rollup_client.rpc.status gives `exc`."""
    context.abort(code_of(exc), str(exc))
    raise AssertionError("unreachable: context.abort raises")


def call(context: grpc.ServicerContext, fn: Callable[[], T]) -> T:
    """`fn()`, with a Tandem error ending the call with its status instead of INTERNAL."""
    try:
        return fn()
    except TandemError as exc:
        abort(context, exc)


class _Unparseable:
    """Stands in for request bytes that did not parse (grpcio answers INTERNAL to None)."""

    def __init__(self, message: str) -> None:
        self.message = message


# Reads a request's bytes in place of protobuf's parse, raising DecodeError as it does.
Reader = Callable[[bytes], object]


def _lenient(message: type[Message], reader: Reader | None = None) -> Callable[[bytes], object]:
    name = message.DESCRIPTOR.full_name
    read = message.FromString if reader is None else reader

    def parse(data: bytes) -> object:
        try:
            return read(data)
        except DecodeError as exc:
            return _Unparseable(
                f"request bytes are not a valid {name} ({exc}): "
                "serialize the request with the tandem.v1 protobuf definitions"
            )

    return parse


def _serialize(response: Message | bytes) -> bytes:
    """A response's wire bytes; a behaviour on a hot path may return them already built."""
    return response if isinstance(response, bytes) else response.SerializeToString()


def _handler(
    method: MethodDescriptor, behaviour: Callable[..., Any], reader: Reader | None
) -> grpc.RpcMethodHandler[object, Message | bytes]:
    request = GetMessageClass(method.input_type)
    if method.client_streaming:
        raise TypeError(f"{method.full_name}: client streaming is not supported")
    if method.server_streaming:

        def stream(req: object, context: grpc.ServicerContext) -> Iterator[Any]:
            if isinstance(req, _Unparseable):
                abort(context, InvalidArgument(req.message))
            yield from behaviour(req, context)

        return grpc.unary_stream_rpc_method_handler(
            stream,
            request_deserializer=_lenient(request, reader),
            response_serializer=_serialize,
        )

    def unary(req: object, context: grpc.ServicerContext) -> Any:
        if isinstance(req, _Unparseable):
            abort(context, InvalidArgument(req.message))
        return behaviour(req, context)

    return grpc.unary_unary_rpc_method_handler(
        unary,
        request_deserializer=_lenient(request, reader),
        response_serializer=_serialize,
    )


def lenient_handlers(
    service: ServiceDescriptor, servicer: object, readers: Mapping[str, Reader] | None = None
) -> grpc.GenericRpcHandler:
    """`servicer`'s methods for `service`, like the generated registration, except that
    request bytes that do not parse get INVALID_ARGUMENT (bad input) instead of INTERNAL.

    `readers` may name, per method, a reader of the request bytes to use instead of
    protobuf's parse: whatever it returns is passed to the method instead of the message.
    """
    readers = readers or {}
    return grpc.method_handlers_generic_handler(
        service.full_name,
        {
            m.name: _handler(m, getattr(servicer, m.name), readers.get(m.name))
            for m in service.methods
        },
    )


class GrpcServer:
    """One service with health checking and reflection, bound plaintext or with mutual TLS.

    Health says NOT_SERVING from construction until `serving()`, so a prober never sees a
    server that is listening but not yet able to answer; `draining()` says NOT_SERVING again.
    """

    def __init__(
        self,
        service: ServiceDescriptor,
        servicer: object,
        listen: str,
        *,
        workers: int,
        max_message_bytes: int,
        tls: TlsFiles | None = None,
        thread_name: str = "grpc",
        maximum_concurrent_rpcs: int | None = None,
        readers: Mapping[str, Reader] | None = None,
    ) -> None:
        self.service_name = service.full_name
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix=thread_name),
            options=server_options(max_message_bytes),
            maximum_concurrent_rpcs=maximum_concurrent_rpcs,
        )
        self.server.add_generic_rpc_handlers((lenient_handlers(service, servicer, readers),))
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (self.service_name, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
        )
        try:
            if tls is None:
                self.port = self.server.add_insecure_port(listen)
            else:
                self.port = self.server.add_secure_port(listen, tls.server_credentials())
        except RuntimeError as exc:
            raise FailedPrecondition(f"cannot listen on {listen}: {exc}") from exc
        self.listen = f"{listen.rpartition(':')[0]}:{self.port}"
        self._set(health_pb2.HealthCheckResponse.NOT_SERVING)

    def _set(self, status: int) -> None:
        for name in ("", self.service_name):
            self.health.set(name, status)

    def start(self) -> None:
        self.server.start()

    def serving(self) -> None:
        self._set(health_pb2.HealthCheckResponse.SERVING)

    def draining(self) -> None:
        self.health.enter_graceful_shutdown()

    def stop(self, grace: float) -> None:
        self.server.stop(grace).wait()
