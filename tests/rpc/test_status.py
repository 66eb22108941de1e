"""The one table between library errors and gRPC status codes, both ways."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import grpc
import pytest

from rollup_client.protocol import errors
from rollup_client.protocol.errors import InvalidArgument, NotFound, TandemError, Unavailable
from rollup_client.rpc.status import (
    CODES,
    code_of,
    from_number,
    from_status,
    number_of,
    rpc_error,
    stream_error,
)

LIBRARY_ERRORS = [
    cls
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, TandemError) and cls is not TandemError
]
DROPPED = [
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.ABORTED,
]


class FakeRpcError(grpc.RpcError, grpc.Call):
    """What a failed grpcio call raises: an RpcError that is also a Call."""

    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return f"fake {self._code.name}"

    # The rest of a Call, as a call that has ended has it.
    def add_callback(self, callback: Callable[[], None]) -> bool:
        return False

    def cancel(self) -> bool:
        return False

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> float:
        return 0.0

    def initial_metadata(self) -> tuple[()]:
        return ()

    def trailing_metadata(self) -> tuple[()]:
        return ()


def test_every_library_error_has_its_own_code() -> None:
    assert set(CODES) == set(LIBRARY_ERRORS)
    assert len(set(CODES.values())) == len(CODES)
    assert code_of(TandemError("x")) == grpc.StatusCode.UNKNOWN


@pytest.mark.parametrize("cls", LIBRARY_ERRORS)
def test_an_error_comes_back_as_itself_by_status_and_by_number(cls: type[TandemError]) -> None:
    by_status = from_status(code_of(cls("m")), "m")
    by_number = from_number(number_of(cls("m")), "m")
    assert type(by_status) is type(by_number) is cls
    assert str(by_status) == "m"


def test_unknown_codes_become_the_base_error() -> None:
    assert type(from_status(grpc.StatusCode.UNIMPLEMENTED, "m")) is TandemError
    assert type(from_number(999, "m")) is TandemError


def test_a_failed_call_names_its_server() -> None:
    got = rpc_error(FakeRpcError(grpc.StatusCode.NOT_FOUND), "sequencer")
    assert type(got) is NotFound
    assert str(got) == "sequencer: fake NOT_FOUND"
    assert type(rpc_error(grpc.RpcError("odd"), "sequencer")) is TandemError


@pytest.mark.parametrize("code", DROPPED)
def test_a_broken_stream_is_unavailable(code: grpc.StatusCode) -> None:
    got = stream_error(FakeRpcError(code), "sequencer")
    assert type(got) is Unavailable
    assert str(got) == f"sequencer: fake {code.name}"


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, InvalidArgument),
        (grpc.StatusCode.NOT_FOUND, NotFound),
        (grpc.StatusCode.UNIMPLEMENTED, TandemError),
    ],
)
def test_a_refused_stream_is_the_refusal(code: grpc.StatusCode, cls: type[TandemError]) -> None:
    assert type(stream_error(FakeRpcError(code), "sequencer")) is cls
    assert type(stream_error(grpc.RpcError("odd"), "sequencer")) is TandemError


def test_a_subclass_takes_its_parents_code() -> None:
    class NotLeader(Unavailable):
        pass

    assert code_of(NotLeader("m")) is grpc.StatusCode.UNAVAILABLE
    assert code_of(TandemError("m")) is grpc.StatusCode.UNKNOWN
