"""The one table between the library's errors and gRPC status codes, both ways.

Servers end a call with `code_of(exc)`; clients turn a failed call back into the library
exception (`rpc_error`), so a caller catches the same exception whether it used the library
in-process or over the wire. The errors themselves know nothing of gRPC.
"""

from __future__ import annotations

import grpc
from grpc import StatusCode

from rollup_client.protocol.errors import (
    AlreadyExists,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    OutOfRange,
    PermissionDenied,
    ResourceExhausted,
    TandemError,
    Unauthenticated,
    Unavailable,
    VerificationError,
)

CODES: dict[type[TandemError], StatusCode] = {
    InvalidArgument: StatusCode.INVALID_ARGUMENT,
    NotFound: StatusCode.NOT_FOUND,
    AlreadyExists: StatusCode.ALREADY_EXISTS,
    FailedPrecondition: StatusCode.FAILED_PRECONDITION,
    ResourceExhausted: StatusCode.RESOURCE_EXHAUSTED,
    Unauthenticated: StatusCode.UNAUTHENTICATED,
    PermissionDenied: StatusCode.PERMISSION_DENIED,
    OutOfRange: StatusCode.OUT_OF_RANGE,
    Unavailable: StatusCode.UNAVAILABLE,
    DeadlineExceeded: StatusCode.DEADLINE_EXCEEDED,
    VerificationError: StatusCode.DATA_LOSS,
}
_BY_CODE: dict[StatusCode, type[TandemError]] = {code: cls for cls, code in CODES.items()}
_BY_NUMBER: dict[int, StatusCode] = {code.value[0]: code for code in StatusCode}
# Codes that mean a stream broke (server gone, restarted, reset, idle), not that the request
# was wrong: a reader resubscribes after these.
_DROPPED = frozenset(
    {
        StatusCode.UNAVAILABLE,
        StatusCode.CANCELLED,
        StatusCode.DEADLINE_EXCEEDED,
        StatusCode.INTERNAL,
        StatusCode.UNKNOWN,
        StatusCode.ABORTED,
    }
)


def code_of(exc: TandemError) -> StatusCode:
    """The status a server ends a call with when it fails with `exc` (a subclass of an
    error in the table takes its parent's code)."""
    for cls in type(exc).__mro__:
        if cls in CODES:
            return CODES[cls]
    return StatusCode.UNKNOWN


def number_of(exc: TandemError) -> int:
    """`code_of(exc)` as its number, for a per-item result code inside an answer."""
    return int(code_of(exc).value[0])


def from_status(code: StatusCode, message: str) -> TandemError:
    """The library exception for a gRPC status received by a client."""
    return _BY_CODE.get(code, TandemError)(message)


def from_number(number: int, message: str) -> TandemError:
    """The library exception for a per-item result code (`number_of` on the server)."""
    return from_status(_BY_NUMBER.get(number, StatusCode.UNKNOWN), message)


def rpc_error(exc: grpc.RpcError, who: str) -> TandemError:
    """The library exception for a failed call, named after the server that failed it."""
    if isinstance(exc, grpc.Call):
        return from_status(exc.code(), f"{who}: {exc.details()}")
    return TandemError(f"{who}: {exc}")


def stream_error(exc: grpc.RpcError, who: str) -> TandemError:
    """The library exception for a stream that ended with `exc`: Unavailable when the
    stream broke (resubscribe), else what `rpc_error` says (the request was refused)."""
    if isinstance(exc, grpc.Call) and exc.code() in _DROPPED:
        return Unavailable(f"{who}: {exc.details()}")
    return rpc_error(exc, who)
