"""Admission checks: each bad batch gets its documented error before reaching the core."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollup_client.protocol import codec
from rollup_client.protocol.errors import (
    InvalidArgument,
    PermissionDenied,
    TandemError,
    Unauthenticated,
)
from rollup_client.rpc import submit_reader
from rollup_client.wire import sequencer_pb2 as pb
from sequencer.config import Limits
from sequencer.validate import Validator
from tests.sequencer.helpers import Net, make_net, signed_batch

LIMITS = Limits(max_entry_bytes=100, max_batch_entries=4, max_batch_bytes=250)


@pytest.fixture
def net(tmp_path: Path) -> Net:
    return make_net(tmp_path)


def check(net: Net, req: pb.SubmitBatchRequest) -> None:
    Validator(net.genesis, LIMITS).batch(submit_reader.read_batch(req.SerializeToString()))


def test_a_good_batch_becomes_a_core_batch(net: Net) -> None:
    req = signed_batch(net.client, [("alpha", b"x"), ("beta", b"y")], bundle=True)
    client, batch = Validator(net.genesis, LIMITS).batch(
        submit_reader.read_batch(req.SerializeToString())
    )
    assert client.name == "default"
    assert batch.bundle
    assert [it.id for it in batch.items] == [
        codec.entry_id("alpha", b"x"),
        codec.entry_id("beta", b"y"),
    ]


CASES: dict[str, tuple[type[TandemError], str]] = {
    "unsigned": (Unauthenticated, "unsigned"),
    "wrong_signature": (Unauthenticated, "does not verify"),
    "signed_other_bundle_flag": (Unauthenticated, "does not verify"),
    "unregistered_key": (Unauthenticated, "not registered"),
    "short_key": (InvalidArgument, "32 raw bytes"),
    "namespace_not_allowed": (PermissionDenied, "may not write"),
    "invalid_namespace": (InvalidArgument, "invalid"),
    "empty": (InvalidArgument, "no entries"),
    "oversized_entry": (InvalidArgument, "limit is 100"),
    "too_many_entries": (InvalidArgument, "limit is 4"),
    "oversized_batch": (InvalidArgument, "limit is 250"),
    "bundle_repeats": (InvalidArgument, "repeats"),
}


def bad_request(net: Net, case: str) -> pb.SubmitBatchRequest:
    good = [("alpha", b"x")]
    if case == "unsigned":
        req = signed_batch(net.client, good)
        req.signature = b""
    elif case == "wrong_signature":
        req = signed_batch(net.client, good)
        req.signature = net.client.sign(b"something else")
    elif case == "signed_other_bundle_flag":
        req = signed_batch(net.client, good)
        req.bundle = True
    elif case == "unregistered_key":
        req = signed_batch(net.outsider, good)
    elif case == "short_key":
        req = signed_batch(net.client, good)
        req.client_key = req.client_key[:5]
    elif case == "namespace_not_allowed":
        req = signed_batch(net.limited, [("alpha", b"x"), ("beta", b"y")])
    elif case == "invalid_namespace":
        req = signed_batch(net.client, [("Not Valid", b"x")])
    elif case == "empty":
        req = signed_batch(net.client, [])
    elif case == "oversized_entry":
        req = signed_batch(net.client, [("alpha", b"x" * 101)])
    elif case == "too_many_entries":
        req = signed_batch(net.client, [("alpha", bytes([i])) for i in range(5)])
    elif case == "oversized_batch":
        req = signed_batch(net.client, [("alpha", bytes([i]) * 90) for i in range(3)])
    else:
        req = signed_batch(net.client, [("alpha", b"x"), ("alpha", b"x")], bundle=True)
    return req


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_batches_get_their_documented_error(net: Net, case: str) -> None:
    exc, message = CASES[case]
    with pytest.raises(exc, match=message):
        check(net, bad_request(net, case))


def test_limited_client_may_write_its_own_namespace(net: Net) -> None:
    check(net, signed_batch(net.limited, [("alpha", b"x")]))
