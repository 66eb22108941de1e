"""The edge reads a SubmitBatch laid out as the SDK writes it from its bytes, and any other
layout with protobuf: both readings must end in the same answer, good or bad."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from rollup_client.rpc import submit_reader, wire_bytes
from rollup_client.rpc.status import CODES
from rollup_client.wire import sequencer_pb2 as pb
from tests.sequencer.helpers import signed_batch
from tests.sequencer.test_service import TIMEOUT, Running, call, serving
from tests.sequencer.test_validate import CASES, bad_request

pytestmark = pytest.mark.processes


@pytest.fixture
async def quiet(tmp_path: Path) -> AsyncIterator[Running]:
    async with serving(tmp_path, heartbeat_ms=600_000) as r:
        yield r


def layouts(req: pb.SubmitBatchRequest) -> tuple[bytes, bytes]:
    """`req` as the SDK joins it, and the same fields with the signature first (valid
    protobuf that `read_sdk_layout` leaves to protobuf)."""
    items = [(e.namespace, e.data) for e in req.entries]
    sdk = wire_bytes.batch_request(req.client_key, items, req.bundle, req.signature)
    rest = pb.SubmitBatchRequest(client_key=req.client_key, entries=req.entries, bundle=req.bundle)
    moved = wire_bytes.field(4, req.signature) + rest.SerializeToString()
    assert submit_reader.read_sdk_layout(moved) is None
    return sdk, moved


async def send(
    r: Running, raw: bytes
) -> tuple[grpc.StatusCode, str | None] | pb.SubmitBatchResponse:
    method: grpc.UnaryUnaryMultiCallable[bytes, bytes] = r.channel.unary_unary(
        "/tandem.v1.SequencerService/SubmitBatch"
    )
    try:
        return pb.SubmitBatchResponse.FromString(await call(lambda: method(raw, timeout=TIMEOUT)))
    except grpc.RpcError as exc:
        return exc.code(), exc.details()


@pytest.mark.parametrize("case", sorted(CASES))
async def test_a_bad_batch_gets_the_same_status_and_message_either_way(
    quiet: Running, case: str
) -> None:
    sdk, moved = layouts(bad_request(quiet.net, case))
    got = await send(quiet, sdk)
    assert got == await send(quiet, moved)
    assert isinstance(got, tuple)
    assert got[0] == CODES[CASES[case][0]]


async def test_a_good_batch_is_acknowledged_the_same_either_way(quiet: Running) -> None:
    req = signed_batch(quiet.net.client, [("alpha", b"one"), ("alpha", b"two")], bundle=True)
    sdk, moved = layouts(req)
    assert submit_reader.read_sdk_layout(sdk) is not None
    first = await send(quiet, sdk)
    again = await send(quiet, moved)
    assert isinstance(first, pb.SubmitBatchResponse)
    assert isinstance(again, pb.SubmitBatchResponse)
    assert [a.position for a in again.acks] == [a.position for a in first.acks]
    assert [a.duplicate for a in first.acks] == [False, False]
    assert [a.duplicate for a in again.acks] == [True, True]
