"""SubmitBatchRequest.linger_ms end to end: real grpc on loopback, the sequencer in-process.

The commit stages' handling of a lingering batch is tested directly in test_commit.py;
these check that the hint arrives through both ways a request is read, that the
sequencer caps it, and that the SDK sends it.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
import trio

from rollup_client.protocol.errors import InvalidArgument
from rollup_client.rpc import submit_reader, wire_bytes
from rollup_client.sdk import SequencerClient
from tests.sequencer.helpers import CHAIN_ID, signed_batch
from tests.sequencer.test_service import TIMEOUT, call, serving
from tests.sequencer.test_validate import LIMITS

pytestmark = pytest.mark.processes

# Held for longer than any test runs: only company (or the cap) can end the wait.
FOREVER_MS = 600_000
LAYOUTS = {
    # One namespace and one size: read from its bytes (`submit_reader.read_sdk_layout`).
    "sdk": [("alpha", b"one"), ("alpha", b"two")],
    # Anything else: parsed by protobuf.
    "protobuf": [("alpha", b"one"), ("beta", b"three")],
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
async def test_a_lone_lingering_batch_is_held_until_another_batch_comes(
    tmp_path: Path, layout: str
) -> None:
    limits = replace(LIMITS, max_linger_ms=FOREVER_MS)
    async with serving(tmp_path, heartbeat_ms=600_000, limits=limits) as r:
        held = signed_batch(r.net.client, LAYOUTS[layout])
        held.linger_ms = FOREVER_MS
        fast = submit_reader.read_sdk_layout(held.SerializeToString())
        assert (fast is not None and fast.linger_ms == FOREVER_MS) == (layout == "sdk")
        with pytest.raises(grpc.RpcError) as waited:
            await call(lambda: r.stub.SubmitBatch(held, timeout=1.0))
        assert waited.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert (await r.status()).height == 0
        company = await r.submit(signed_batch(r.net.client, [("gamma", b"company")]))
        held.linger_ms = 0
        again = await r.submit(held)
        assert all(a.duplicate for a in again)
        assert {a.position.height for a in again} == {company[0].position.height}


async def test_the_sequencer_caps_how_long_a_batch_may_linger(tmp_path: Path) -> None:
    limits = replace(LIMITS, max_linger_ms=50)
    async with serving(tmp_path, heartbeat_ms=600_000, limits=limits) as r:
        assert (await r.status()).limits.max_linger_ms == 50
        req = signed_batch(r.net.client, [("alpha", b"alone")])
        req.linger_ms = wire_bytes.MAX_UINT32
        acks = await r.submit(req)
        assert acks[0].position.height == 1
        assert not acks[0].duplicate


async def test_lingering_sdk_batches_of_two_clients_share_one_block(tmp_path: Path) -> None:
    limits = replace(LIMITS, max_linger_ms=FOREVER_MS)
    async with serving(tmp_path, heartbeat_ms=600_000, limits=limits) as r:
        target = r.target
        heights: list[int] = []
        keys = [r.net.client, r.net.limited]

        def vote(k: int) -> None:
            with SequencerClient(target, keys[k], chain_id=CHAIN_ID, timeout=TIMEOUT) as c:
                acks = c.submit_batch([("alpha", b"vote %d" % k)], linger_ms=FOREVER_MS)
                heights.append(acks[0].height)

        async with trio.open_nursery() as nursery:
            for k in range(2):
                nursery.start_soon(call, functools.partial(vote, k))
        assert heights == [heights[0]] * 2

        def refused() -> None:
            with SequencerClient(target, keys[0], chain_id=CHAIN_ID) as c:
                c.submit_batch([("alpha", b"x")], linger_ms=-1)

        with pytest.raises(InvalidArgument, match="linger_ms"):
            await call(refused)
