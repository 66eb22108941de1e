"""The SDK's pure parts without a server: the subscription Follower and ClientCore."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rollup_client.protocol import codec, keys
from rollup_client.protocol.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    TandemError,
    Unavailable,
    VerificationError,
)
from rollup_client.protocol.keys import SigningKey
from rollup_client.rpc import wire_bytes
from rollup_client.sdk.core import MAX_DELAY_S, Ack, ClientCore, backoff, retry_delay
from rollup_client.sdk.subscription import Follower
from rollup_client.wire import sequencer_pb2 as pb
from tests.sdk.chain import SEQUENCER, chain, seal

KEY = SEQUENCER.public
CLIENT = SigningKey.from_seed(b"\x09" * 32)

blocks_st = st.lists(
    st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.binary(max_size=4)), max_size=4),
    min_size=1,
    max_size=8,
)


def follower(from_height: int = 0, reconnect_for: float | None = 5.0) -> Follower:
    return Follower(KEY, ["a"], from_height, now=0.0, reconnect_for=reconnect_for)


@given(blocks_st, st.data())
def test_follower_hands_out_the_chain_in_order_across_any_resume(
    blocks: list[list[tuple[str, bytes]]], data: st.DataObject
) -> None:
    sealed = chain(blocks)
    f = follower()
    got = []
    for i, s in enumerate(sealed):
        if data.draw(st.booleans()):  # a dropped stream: resume where it left off
            f.dropped(Unavailable("sequencer: gone"), float(i))
            assert f.request().from_height == i
        got.append(f.accept(s.filtered(["a"]), float(i)))
    assert [b.height for b in got] == list(range(len(sealed)))
    want = [(ns, d) for blk in blocks for ns, d in blk if ns == "a"]
    assert [(e.namespace, e.data) for b in got for e in b.entries] == want


def test_follower_rejects_gaps_duplicates_forks_and_time_going_back() -> None:
    sealed = chain([[("a", b"0")], [("a", b"1")], [("b", b"2")]])
    f = follower()
    f.accept(sealed[0].filtered(["a"]), 0)
    with pytest.raises(VerificationError, match="expected block 1, got block 2"):
        f.accept(sealed[2].filtered(["a"]), 0)
    with pytest.raises(VerificationError, match="expected block 1, got block 0"):
        f.accept(sealed[0].filtered(["a"]), 0)
    fork = seal(1, b"\x01" * 32, 2_000, [("a", b"1")])
    with pytest.raises(VerificationError, match="does not link"):
        f.accept(fork.filtered(["a"]), 0)
    earlier = seal(1, sealed[0].header.hash, 999, [("a", b"1")])
    with pytest.raises(VerificationError, match="backwards"):
        f.accept(earlier.filtered(["a"]), 0)
    assert f.accept(sealed[1].filtered(["a"]), 0).height == 1  # rejections changed nothing


def test_follower_checks_block_zero_against_the_zero_hash_and_trusts_a_later_start() -> None:
    bad_zero = seal(0, b"\x02" * 32, 1, [])
    with pytest.raises(VerificationError, match="does not link"):
        follower().accept(bad_zero.filtered(["a"]), 0)
    sealed = chain([[], [], []])
    f = follower(from_height=2)
    assert f.request().from_height == 2
    assert f.accept(sealed[2].filtered(["a"]), 0).height == 2


def test_follower_rejects_a_block_without_the_asked_namespace_proof() -> None:
    sealed = chain([[("a", b"x")]])
    with pytest.raises(VerificationError, match="no proof"):
        follower().accept(sealed[0].filtered(["b"]), 0)


def test_dropped_backs_off_resets_on_progress_and_gives_up() -> None:
    sealed = chain([[], []])
    f = follower(reconnect_for=5.0)
    unavailable = Unavailable("sequencer: gone")
    delays = [f.dropped(unavailable, 0.1 * i) for i in range(8)]
    assert delays == sorted(delays)
    assert delays[0] < delays[-1] == MAX_DELAY_S
    f.accept(sealed[0].filtered(["a"]), 4.0)
    assert f.dropped(None, 8.9) == delays[0]
    with pytest.raises(Unavailable, match="gave up after 5s"):
        f.dropped(unavailable, 9.0)
    forever = follower(reconnect_for=None)
    assert forever.dropped(unavailable, 1e9) > 0


@pytest.mark.parametrize("exc", [InvalidArgument, NotFound, TandemError])
def test_dropped_raises_when_the_server_refused_the_request(exc: type[TandemError]) -> None:
    with pytest.raises(exc, match="refused"):
        follower().dropped(exc("sequencer: refused"), 0)


@given(st.integers(0, 100), st.floats(0, 20))
def test_retry_delays_stay_inside_the_deadline(attempt: int, remaining: float) -> None:
    d = retry_delay(attempt, remaining)
    assert d is None or 0 < d == backoff(attempt) < remaining
    assert backoff(attempt) <= MAX_DELAY_S


def status(chain_id: str = "c", key: bytes = KEY) -> pb.StatusResponse:
    return pb.StatusResponse(chain_id=chain_id, height=3, sequencer_key=key)


def test_trust_on_first_use_then_pinned() -> None:
    core = ClientCore(CLIENT, None, None)
    assert not core.trusted
    assert core.parse_status(status()).height == 3
    assert core.trusted
    assert (core.chain_id, core.sequencer_key) == ("c", KEY)
    with pytest.raises(VerificationError, match="chain"):
        core.parse_status(status(chain_id="other"))
    with pytest.raises(VerificationError, match="key"):
        core.parse_status(status(key=bytes(32)))


def test_requests_need_a_key_and_anchors_and_valid_namespaces() -> None:
    with pytest.raises(FailedPrecondition, match="signing key"):
        ClientCore(None, "c", KEY).submit_request("a", b"x")
    with pytest.raises(FailedPrecondition, match="not learnt"):
        ClientCore(CLIENT, None, None).submit_request("a", b"x")
    with pytest.raises(InvalidArgument, match="namespace"):
        ClientCore(CLIENT, "c", KEY).batch_request([("Bad NS", b"x")], False)


def test_batch_request_is_signed_over_the_batch_digest() -> None:
    core = ClientCore(CLIENT, "c", KEY)
    raw, ids = core.batch_request([("a", b"1"), ("b", b"2")], True)
    req = pb.SubmitBatchRequest.FromString(raw)
    assert ids == [codec.entry_id("a", b"1"), codec.entry_id("b", b"2")]
    assert [(e.namespace, e.data) for e in req.entries] == [("a", b"1"), ("b", b"2")]
    assert req.bundle
    assert req.client_key == CLIENT.public
    digest = codec.batch_digest("c", ids, True)
    assert keys.verify(CLIENT.public, req.signature, digest)


def _acks(*rows: tuple[bytes, int, int]) -> bytes:
    return pb.SubmitBatchResponse(
        acks=[pb.EntryAck(entry_id=e, position=pb.Position(height=h, index=i)) for e, h, i in rows]
    ).SerializeToString()


def test_acks_must_match_what_was_sent() -> None:
    core = ClientCore(CLIENT, "c", KEY)
    _, ids = core.batch_request([("a", b"1"), ("a", b"2")], True)
    ok = core.batch_acks(_acks((ids[0], 4, 2), (ids[1], 4, 3)), ids, True)
    assert [(a.height, a.index) for a in ok] == [(4, 2), (4, 3)]
    with pytest.raises(VerificationError, match="other entries"):
        core.batch_acks(_acks((ids[1], 4, 2), (ids[0], 4, 3)), ids, False)
    with pytest.raises(VerificationError, match="other entries"):
        core.batch_acks(_acks((ids[0], 4, 2)), ids, False)
    with pytest.raises(VerificationError, match="non-consecutive"):
        core.batch_acks(_acks((ids[0], 4, 2), (ids[1], 5, 0)), ids, True)
    assert len(core.batch_acks(_acks((ids[0], 4, 2), (ids[1], 5, 0)), ids, False)) == 2
    with pytest.raises(VerificationError, match="does not decode"):
        core.batch_acks(b"\x0a\xff", ids, False)


def test_the_sequencers_answer_for_a_fresh_run_is_recognised_whole() -> None:
    core = ClientCore(CLIENT, "c", KEY)
    _, ids = core.batch_request([("a", b"%d" % i) for i in range(300)], False)
    fast = core.batch_acks(wire_bytes.ack_run(ids, 1 << 40, 200), ids, False)
    slow = core.batch_acks(_acks(*[(e, 1 << 40, 200 + k) for k, e in enumerate(ids)]), ids, False)
    assert fast == slow == [Ack(e, 1 << 40, 200 + k, False) for k, e in enumerate(ids)]
    lying = wire_bytes.ack_run([*ids[:-1], bytes(32)], 1 << 40, 200)
    with pytest.raises(VerificationError, match="other entries"):
        core.batch_acks(lying, ids, False)
    dup = wire_bytes.ack(ids[0], 3, 1, True) + wire_bytes.ack_run(ids[1:], 9, 0)
    assert core.batch_acks(dup, ids, False)[:2] == [
        Ack(ids[0], 3, 1, True),
        Ack(ids[1], 9, 0, False),
    ]


def test_block_and_entry_answers_must_be_the_ones_asked_for() -> None:
    core = ClientCore(CLIENT, "c", KEY)
    sealed = seal(7, bytes(32), 1, [("a", b"x"), ("b", b"y")])
    resp = pb.GetBlockResponse(block=sealed.filtered(None))
    assert core.parse_block(resp, 7, None).height == 7
    with pytest.raises(VerificationError, match="asked for block 8"):
        core.parse_block(resp, 8, None)
    entry = sealed.entry(1)
    assert core.parse_entry(entry, codec.entry_id("b", b"y")).index == 1
    with pytest.raises(VerificationError, match="asked for entry"):
        core.parse_entry(entry, codec.entry_id("a", b"x"))
