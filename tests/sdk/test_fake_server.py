"""Both clients against an in-process fake that misbehaves on purpose.

Only here can a server lie: it sends a tampered block, drops the stream after every few
blocks, or goes silent, and the clients must reject, resume without gap or duplicate,
and time out. (The end-to-end tests use the real sequencer.)
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from concurrent import futures

import grpc
import pytest
import trio

from rollup_client.protocol.block import VerifiedBlock
from rollup_client.protocol.errors import DeadlineExceeded, Unavailable, VerificationError
from rollup_client.protocol.keys import SigningKey
from rollup_client.sdk import SequencerClient, TrioSequencerClient
from rollup_client.wire import sequencer_pb2_grpc as pb_grpc
from tests.sdk.fake import Fake

pytestmark = pytest.mark.processes

NAMESPACES = ["a"]
WANT = [(h, bytes([h]) * 3) for h in range(12)]
KEY = SigningKey.from_seed(b"\x0b" * 32)


@pytest.fixture
def serve() -> Iterator[Serve]:
    servers: list[tuple[grpc.Server, Fake]] = []

    def start(fake: Fake) -> str:
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=4), options=[("grpc.so_reuseport", 0)]
        )
        pb_grpc.add_SequencerServiceServicer_to_server(fake, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append((server, fake))
        return f"127.0.0.1:{port}"

    try:
        yield start
    finally:
        for server, fake in servers:
            fake.stop.set()
            server.stop(None).wait(5)


Serve = Callable[[Fake], str]
# A silent stream is dropped after this long (a loaded machine may add spurious drops,
# which must not show in the data either).
IDLE_S = 0.4


def _resumed_at(fake: Fake, heights: list[int]) -> bool:
    """The stream was (re)opened at least at `heights`, in order, never going back."""
    got = fake.from_heights
    return got == sorted(got) and set(heights) <= set(got) and got[-1] == heights[-1]


def _datas(blocks: list[VerifiedBlock]) -> list[tuple[int, bytes]]:
    return [(b.height, e.data) for b in blocks for e in b.entries]


def test_sync_subscriber_rejects_a_tampered_block(serve: Serve) -> None:
    target = serve(Fake(tamper_at=4))
    seen: list[int] = []
    with SequencerClient(target, timeout=5) as client:
        blocks = client.subscribe(NAMESPACES)
        with pytest.raises(VerificationError, match="block 4"):
            seen.extend(b.height for b in blocks)
    assert seen == [0, 1, 2, 3]


async def test_trio_subscriber_rejects_a_tampered_block(serve: Serve) -> None:
    target = serve(Fake(tamper_at=0))
    async with (
        TrioSequencerClient(target, timeout=5) as client,
        client.subscribe(NAMESPACES) as blocks,
    ):
        with pytest.raises(VerificationError, match="block 0"):
            await blocks.__anext__()


def test_sync_subscriber_resumes_dropped_streams_without_gap_or_duplicate(serve: Serve) -> None:
    fake = Fake(drop_every=5)
    target = serve(fake)
    with SequencerClient(target, timeout=5) as client:
        got = list(itertools.islice(client.subscribe(NAMESPACES, 0), 12))
    assert _datas(got) == WANT
    assert fake.from_heights == [0, 5, 10]


async def test_trio_subscriber_resumes_dropped_streams_without_gap_or_duplicate(
    serve: Serve,
) -> None:
    fake = Fake(drop_every=3)
    target = serve(fake)
    got = []
    async with (
        TrioSequencerClient(target, timeout=5) as client,
        client.subscribe(NAMESPACES, 2) as blocks,
    ):
        async for b in blocks:
            got.append(b)
            if b.height == 11:
                break
    assert _datas(got) == WANT[2:]
    assert fake.from_heights == [2, 5, 8, 11]


def test_sync_subscriber_drops_a_silent_stream_after_its_timeout(serve: Serve) -> None:
    fake = Fake(silent_after=4)
    target = serve(fake)
    with SequencerClient(target, timeout=IDLE_S) as client:
        got = list(itertools.islice(client.subscribe(NAMESPACES), 10))
    assert _datas(got) == WANT[:10]
    assert _resumed_at(fake, [0, 4, 8])


async def test_trio_subscriber_drops_a_silent_stream_and_cancels_cleanly(serve: Serve) -> None:
    fake = Fake(silent_after=4)
    target = serve(fake)
    async with (
        TrioSequencerClient(target, timeout=IDLE_S) as client,
        client.subscribe(NAMESPACES) as blocks,
    ):
        got = [await blocks.__anext__() for _ in range(6)]
        assert 4 in fake.from_heights
        # Cancelled while the stream is silent: the next read resumes at height 8.
        got += [await blocks.__anext__() for _ in range(2)]
        with trio.move_on_after(0.1) as scope:
            await blocks.__anext__()
        assert scope.cancelled_caught
        got.append(await blocks.__anext__())
    assert _datas(got) == WANT[:9]
    assert _resumed_at(fake, [0, 4, 8])


def test_sync_submit_retries_unavailable_until_it_lands(serve: Serve) -> None:
    fake = Fake(fail_submits=3)
    with SequencerClient(serve(fake), KEY, timeout=5) as client:
        assert (client.submit("a", b"x").height, fake.submits) == (5, 4)
    fake = Fake(fail_submits=10**6)
    target = serve(fake)
    with SequencerClient(target, KEY, timeout=0.3) as c, pytest.raises(Unavailable, match="fake"):
        c.submit("a", b"x")
    assert fake.submits >= 2


async def test_trio_submit_retries_unavailable_until_it_lands(serve: Serve) -> None:
    fake = Fake(fail_submits=2)
    async with TrioSequencerClient(serve(fake), KEY, timeout=5) as client:
        assert (await client.submit("a", b"x")).height == 5
    assert fake.submits == 3


def test_sync_timeout_ends_the_call_on_the_server(serve: Serve) -> None:
    fake = Fake(hang_submits=True)
    target = serve(fake)
    with SequencerClient(target, KEY, timeout=0.3) as client, pytest.raises(DeadlineExceeded):
        client.submit("a", b"x")
    assert fake.submit_ended.wait(5)


async def test_trio_cancellation_cancels_the_call_on_the_server(serve: Serve) -> None:
    fake = Fake(hang_submits=True)
    async with TrioSequencerClient(serve(fake), KEY, timeout=30) as client:
        # Cancel once the call is on the server: a fixed delay could cancel it before it
        # got there, and then there is nothing on the server to cancel.
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.submit, "a", b"x")
            assert await trio.to_thread.run_sync(fake.submit_started.wait, 10.0)
            nursery.cancel_scope.cancel()
        assert nursery.cancel_scope.cancelled_caught
        assert await trio.to_thread.run_sync(fake.submit_ended.wait, 5.0)


def test_closing_the_sync_client_ends_its_subscriptions(serve: Serve) -> None:
    client = SequencerClient(serve(Fake(silent_after=2)), timeout=30)
    heights: list[int] = []
    got_two = threading.Event()

    def consume() -> None:
        for b in client.subscribe(NAMESPACES):
            heights.append(b.height)
            if len(heights) == 2:
                got_two.set()

    reader = threading.Thread(target=consume)
    reader.start()
    assert got_two.wait(10)
    client.close()  # the stream is silent now: closing must still end the loop
    reader.join(10)
    assert not reader.is_alive()
    assert heights == [0, 1]


async def test_closing_the_trio_client_ends_its_subscriptions(serve: Serve) -> None:
    client = TrioSequencerClient(serve(Fake(silent_after=2)), timeout=30)
    heights = []

    async def consume(task_status: trio.TaskStatus[None]) -> None:
        async with client.subscribe(NAMESPACES) as blocks:
            async for b in blocks:
                heights.append(b.height)
                if len(heights) == 2:
                    task_status.started()

    with trio.fail_after(10):  # the stream is silent now: closing must still end the loop
        async with trio.open_nursery() as nursery:
            await nursery.start(consume)
            client.close()
    assert heights == [0, 1]
