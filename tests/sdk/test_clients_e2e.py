"""Both clients against a real `tandem sequencer run` process on loopback."""

from __future__ import annotations

import itertools
import socket

import pytest
import trio

from rollup_client.protocol import codec
from rollup_client.protocol.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    OutOfRange,
    Unauthenticated,
    Unavailable,
    VerificationError,
)
from rollup_client.protocol.keys import SigningKey
from rollup_client.sdk import SequencerClient
from tests.procs import Sequencer
from tests.sdk.conftest import CHAIN_ID

pytestmark = pytest.mark.processes


def test_sync_client_submits_reads_and_subscribes(shared_sequencer: Sequencer) -> None:
    with shared_sequencer.client() as client:
        st = client.status()
        assert (st.chain_id, st.sequencer_key) == (CHAIN_ID, shared_sequencer.genesis.sequencer_key)
        assert st.limits.max_batch_entries > 0

        ack = client.submit("s-alpha", b"one")
        assert ack.entry_id == codec.entry_id("s-alpha", b"one")
        assert not ack.duplicate
        again = client.submit("s-alpha", b"one")
        assert again.duplicate
        assert (again.height, again.index) == (ack.height, ack.index)

        bundle = client.submit_batch(
            [("s-beta", b"b1"), ("s-alpha", b"a2"), ("s-beta", b"b2")], bundle=True
        )
        assert len({a.height for a in bundle}) == 1
        assert [a.index - bundle[0].index for a in bundle] == [0, 1, 2]

        whole = client.get_block(bundle[0].height)
        assert [(e.namespace, e.data) for e in whole.entries][bundle[0].index :][:3] == [
            ("s-beta", b"b1"),
            ("s-alpha", b"a2"),
            ("s-beta", b"b2"),
        ]
        only_beta = client.get_block(bundle[0].height, ["s-beta", "s-gamma"])
        assert [e.data for e in only_beta.entries] == [b"b1", b"b2"]
        assert only_beta.hash == whole.hash

        entry = client.get_entry(bundle[1].entry_id)
        assert (entry.namespace, entry.data, entry.height, entry.index) == (
            "s-alpha",
            b"a2",
            bundle[1].height,
            bundle[1].index,
        )

        blocks = list(itertools.islice(client.subscribe(["s-alpha"]), bundle[0].height + 1))
        assert [b.height for b in blocks] == list(range(bundle[0].height + 1))
        assert [(e.height, e.data) for b in blocks for e in b.entries] == [
            (ack.height, b"one"),
            (bundle[1].height, b"a2"),
        ]


async def test_trio_client_submits_reads_and_subscribes(shared_sequencer: Sequencer) -> None:
    async with shared_sequencer.trio_client() as client:
        st = await client.status()
        assert st.chain_id == CHAIN_ID
        acks = await client.submit_batch([("t-alpha", b"t1"), ("t-beta", b"t2")])
        dup = await client.submit("t-beta", b"t2")
        assert dup.duplicate
        assert (dup.height, dup.index) == (acks[1].height, acks[1].index)
        blk = await client.get_block(acks[0].height, ["t-alpha"])
        assert [(e.data, e.index) for e in blk.entries] == [(b"t1", acks[0].index)]
        entry = await client.get_entry(acks[1].entry_id)
        assert (entry.data, entry.height, entry.index) == (b"t2", acks[1].height, acks[1].index)
        seen = []
        async with client.subscribe(["t-beta"], from_height=acks[1].height) as blocks:
            async for b in blocks:
                seen.append(b)
                if len(seen) == 3:
                    break
        assert [b.height for b in seen] == [acks[1].height + i for i in range(3)]
        assert [e.data for e in seen[0].entries] == [b"t2"]


async def test_trio_calls_cancel_cleanly(shared_sequencer: Sequencer) -> None:
    async with shared_sequencer.trio_client() as client:
        with trio.move_on_after(0.01):
            async with client.subscribe([], from_height=10**9) as blocks:
                await blocks.__anext__()  # a height far ahead: waits until cancelled
        assert (await client.status()).height >= 0


def test_unpinned_client_trusts_on_first_use_and_pinned_mismatches_fail(
    shared_sequencer: Sequencer,
) -> None:
    with SequencerClient(shared_sequencer.target, shared_sequencer.key) as tofu:
        assert tofu.submit("tofu", b"tofu").height >= 0
        assert tofu.get_block(0).height == 0
    liar_key = SigningKey.from_seed(b"\x05" * 32).public
    target = shared_sequencer.target
    with (
        SequencerClient(target, sequencer_key=liar_key) as pinned,
        pytest.raises(VerificationError, match="pinned"),
    ):
        pinned.get_block(0)
    with (
        SequencerClient(target, chain_id="other") as pinned,
        pytest.raises(VerificationError, match="chain"),
    ):
        pinned.status()


def test_errors_come_back_as_library_exceptions(shared_sequencer: Sequencer) -> None:
    with shared_sequencer.client() as client:
        with pytest.raises(OutOfRange):
            client.get_block(10**9)
        with pytest.raises(NotFound):
            client.get_entry(bytes(32))
        with pytest.raises(InvalidArgument):
            client.submit("Not A Namespace", b"x")
    stranger = SigningKey.from_seed(b"\x06" * 32)
    target = shared_sequencer.target
    with SequencerClient(target, stranger) as client, pytest.raises(Unauthenticated):
        client.submit("alpha", b"x")
    with SequencerClient(target) as keyless, pytest.raises(FailedPrecondition, match="key"):
        keyless.submit("alpha", b"x")


def test_an_unreachable_sequencer_is_unavailable_within_the_timeout() -> None:
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    key = SigningKey.from_seed(b"\x04" * 32).public
    with SequencerClient(
        f"127.0.0.1:{port}",
        SigningKey.from_seed(b"\x03" * 32),
        chain_id="c",
        sequencer_key=key,
        timeout=0.5,
    ) as client:
        with pytest.raises(Unavailable):
            client.submit("alpha", b"x")
        with pytest.raises(Unavailable):
            client.status()


async def test_trio_subscription_resumes_after_a_cancelled_next_without_gap_or_repeat(
    shared_sequencer: Sequencer,
) -> None:
    # Blocks the reader thread fetched ahead of a cancelled `__anext__` are dropped; the
    # next call resubscribes after the last block handed out.
    async with (
        shared_sequencer.trio_client() as client,
        client.subscribe(["t-resume"], from_height=0) as blocks,
    ):
        heights = [(await blocks.__anext__()).height]
        for _ in range(3):
            with trio.move_on_after(0):
                await blocks.__anext__()
            heights.append((await blocks.__anext__()).height)
            heights.append((await blocks.__anext__()).height)
    assert heights == list(range(7))
