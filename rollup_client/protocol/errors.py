"""Every failure Tandem can report, one flat class each.

The gRPC edge of each server translates these to status codes with one table
(`GRPC_CODES`), and the SDK translates status codes back, so a caller catches the same
exception whether it used the library in-process or over the wire.
"""

from __future__ import annotations

import grpc


class TandemError(Exception):
    """Base of every error Tandem raises on purpose."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN


class InvalidArgument(TandemError):
    """The request is malformed: fix the named field and resend."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(TandemError):
    """The named block, entry, swap or account does not exist (yet)."""

    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(TandemError):
    """The thing being created exists already."""

    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(TandemError):
    """The request is well-formed but the current state does not allow it."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class ResourceExhausted(TandemError):
    """A limit was hit (size, rate, in-flight work): shrink the request or retry later."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unauthenticated(TandemError):
    """The signature does not verify or the key is not registered."""

    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(TandemError):
    """The key is known but may not do this (e.g. write that namespace)."""

    code = grpc.StatusCode.PERMISSION_DENIED


class OutOfRange(TandemError):
    """A height or index beyond what exists."""

    code = grpc.StatusCode.OUT_OF_RANGE


class Unavailable(TandemError):
    """The server could not be reached or is shutting down: retry."""

    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(TandemError):
    """The call's timeout ran out before an answer."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class VerificationError(TandemError):
    """Data from a server failed a signature, hash-link or Merkle check: do not trust it."""

    code = grpc.StatusCode.DATA_LOSS


_ALL: tuple[type[TandemError], ...] = (
    InvalidArgument,
    NotFound,
    AlreadyExists,
    FailedPrecondition,
    ResourceExhausted,
    Unauthenticated,
    PermissionDenied,
    OutOfRange,
    Unavailable,
    DeadlineExceeded,
    VerificationError,
)
GRPC_CODES: dict[type[TandemError], grpc.StatusCode] = {cls: cls.code for cls in _ALL}
_BY_CODE: dict[grpc.StatusCode, type[TandemError]] = {cls.code: cls for cls in _ALL}


def from_status(code: grpc.StatusCode, message: str) -> TandemError:
    """The library exception for a gRPC status received by a client."""
    return _BY_CODE.get(code, TandemError)(message)
