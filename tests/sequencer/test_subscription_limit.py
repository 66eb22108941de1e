"""Subscriptions are capped below the worker pool: each holds a grpc worker thread for as
long as it lives, so past half the threads more are refused at once, and submits keep
finding a thread."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import trio

from rollup_client.protocol import block
from rollup_client.wire import sequencer_pb2 as pb
from rollup_client.wire import sequencer_pb2_grpc as pb_grpc
from sequencer.config import Config
from sequencer.handlers import SUBSCRIBE_POLL_S
from sequencer.service import serve
from tests.sequencer.helpers import make_net, signed_batch
from tests.sequencer.test_service import TIMEOUT, call
from tests.sequencer.test_validate import LIMITS

pytestmark = pytest.mark.processes


async def test_subscriptions_past_half_the_workers_are_refused_and_submits_still_served(
    tmp_path: Path,
) -> None:
    net = make_net(tmp_path)
    key = net.genesis.sequencer_key
    cfg = Config(data_dir=tmp_path, heartbeat_ms=600_000, limits=LIMITS, grpc_workers=4)
    async with trio.open_nursery() as nursery:
        ends = await nursery.start(serve, cfg)
        channel = grpc.insecure_channel(ends.listen)
        stub = pb_grpc.SequencerServiceStub(channel)

        def subscribe() -> Iterator[pb.SubscribeResponse]:
            req = pb.SubscribeRequest(namespaces=["alpha"], from_height=0)
            return stub.Subscribe(req, timeout=TIMEOUT)

        async def first_height(stream: Iterator[pb.SubscribeResponse]) -> int:
            resp = await call(lambda: next(stream))
            return block.verify_block(resp.block, key, ["alpha"]).height

        streams = [subscribe(), subscribe()]
        try:
            assert [await first_height(s) for s in streams] == [0, 0]
            with pytest.raises(grpc.RpcError) as refused:
                await first_height(subscribe())
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "at most 2 subscriptions at once" in (refused.value.details() or "")

            req = signed_batch(net.client, [("alpha", b"still served")])
            acks = await call(lambda: stub.SubmitBatch(req, timeout=TIMEOUT).acks)
            assert acks[0].position.height == 1
            assert not acks[0].duplicate

            # A cancelled stream gives its place back once its thread notices (it checks
            # its client every SUBSCRIBE_POLL_S while idle).
            streams.pop(0).cancel()  # type: ignore[attr-defined]
            with trio.fail_after(SUBSCRIBE_POLL_S + TIMEOUT):
                while True:
                    again = subscribe()
                    try:
                        assert await first_height(again) == 0
                    except grpc.RpcError as exc:
                        assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                        await trio.sleep(SUBSCRIBE_POLL_S / 10)
                        continue
                    streams.append(again)
                    break
        finally:
            for s in streams:
                s.cancel()  # type: ignore[attr-defined]
            channel.close()
            nursery.cancel_scope.cancel()
