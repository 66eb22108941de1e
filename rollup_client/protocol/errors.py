"""Every failure Tandem can report, one flat class each.

Plain exceptions, no transport: the gRPC edge of each server translates them to status
codes with the one table in `rollup_client.rpc.status`, and the SDK translates status codes
back, so a caller catches the same exception whether it used the library in-process or over
the wire.
"""

from __future__ import annotations


class TandemError(Exception):
    """Base of every error Tandem raises on purpose."""


class InvalidArgument(TandemError):
    """The request is malformed: fix the named field and resend."""


class NotFound(TandemError):
    """The named block, entry, swap or account does not exist (yet)."""


class AlreadyExists(TandemError):
    """The thing being created exists already."""


class FailedPrecondition(TandemError):
    """The request is well-formed but the current state does not allow it."""


class ResourceExhausted(TandemError):
    """A limit was hit (size, rate, in-flight work): shrink the request or retry later."""


class Unauthenticated(TandemError):
    """The signature does not verify or the key is not registered."""


class PermissionDenied(TandemError):
    """The key is known but may not do this (e.g. write that namespace)."""


class OutOfRange(TandemError):
    """A height or index beyond what exists."""


class Unavailable(TandemError):
    """The server could not be reached or is shutting down: retry."""


class DeadlineExceeded(TandemError):
    """The call's timeout ran out before an answer."""


class VerificationError(TandemError):
    """Data from a server failed a signature, hash-link or Merkle check: do not trust it."""
