"""Shared pieces of the fuzz tests: raw calls, allowed status codes, hypothesis budgets.

Every RPC has a documented set of status codes for bad input; UNKNOWN and INTERNAL are
never in it, since either means a handler raised something the edge did not translate.
Bytes that are not a protobuf message at all must get INVALID_ARGUMENT too; an edge that
lets grpcio parse requests answers them INTERNAL ("Exception deserializing request!")
before any handler runs, and `raw_code` reports that as DESERIALIZE so a failing test
says which of the two went wrong.
"""

from __future__ import annotations

import os
from collections.abc import Set

import grpc
from google.protobuf.message import DecodeError, Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, settings

LONG = os.environ.get("TANDEM_FUZZ_LONG") == "1"
TIMEOUT_S = 10.0
DESERIALIZE = "deserialize"
DESERIALIZE_MESSAGE = "Exception deserializing request!"

C = grpc.StatusCode
NEVER = frozenset({C.UNKNOWN, C.INTERNAL})


def budget(short: int, long: int) -> settings:
    """Hypothesis settings: `short` examples by default, `long` with TANDEM_FUZZ_LONG=1."""
    return settings(
        max_examples=long if LONG else short,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )


def code_of(fn: object, *args: object, **kwargs: object) -> grpc.StatusCode:
    """The status code of one call (OK when it succeeds)."""
    try:
        fn(*args, **kwargs)  # type: ignore[operator]
    except grpc.RpcError as exc:
        assert isinstance(exc, grpc.Call)
        return exc.code()
    return C.OK


def raw_code(
    channel: grpc.Channel, method: str, payload: bytes, timeout: float = TIMEOUT_S
) -> grpc.StatusCode | str:
    """Send `payload` as the serialized request of unary `method`; its status code."""
    call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(method)
    try:
        call(payload, timeout=timeout)
    except grpc.RpcError as exc:
        assert isinstance(exc, grpc.Call)
        if exc.code() == C.INTERNAL and exc.details() == DESERIALIZE_MESSAGE:
            return DESERIALIZE
        return exc.code()
    return C.OK


def raw_stream_code(
    channel: grpc.Channel, method: str, payload: bytes, timeout: float = 0.5
) -> grpc.StatusCode | str:
    """Send `payload` to server-streaming `method`; the code of its first answer.

    OK when a first message arrives; DEADLINE_EXCEEDED when the stream is valid but has
    nothing to say within `timeout` (e.g. it waits for a future height)."""
    call: grpc.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(method)
    stream = call(payload, timeout=timeout)
    try:
        next(stream)
    except StopIteration:
        return C.OK
    except grpc.RpcError as exc:
        assert isinstance(exc, grpc.Call)
        if exc.code() == C.INTERNAL and exc.details() == DESERIALIZE_MESSAGE:
            return DESERIALIZE
        return exc.code()
    finally:
        stream.cancel()
    return C.OK


def parses(cls: type[Message], payload: bytes) -> bool:
    """True when `payload` is a valid serialization of message type `cls`."""
    try:
        cls.FromString(payload)
    except DecodeError:
        return False
    return True


def assert_serving(channel: grpc.Channel) -> None:
    """The server still answers its health check with SERVING."""
    # types-grpcio-health-checking's HealthStub declares no Check (grpcio sets it per stub).
    resp = health_pb2_grpc.HealthStub(channel).Check(  # type: ignore[attr-defined]
        health_pb2.HealthCheckRequest(), timeout=TIMEOUT_S
    )
    assert resp.status == health_pb2.HealthCheckResponse.SERVING


def assert_documented(
    cls: type[Message], payload: bytes, code: object, allowed: Set[object], *why: object
) -> None:
    """Bytes that parse as `cls` get one of the method's documented codes (`allowed`);
    bytes that do not parse get INVALID_ARGUMENT and nothing else."""
    if parses(cls, payload):
        assert code in allowed, (*why, payload, code)
    else:
        assert code == C.INVALID_ARGUMENT, (*why, payload, code)
