"""Nodes ask the sequencer to hold their votes for company only when other rollups vote too.

The sequencer here never cuts an empty block (a one-minute heartbeat), lets a batch
linger up to 10 s, and the nodes ask for that much on shared votes and attest nothing: a
vote cut alone would therefore be visible as its own block, and a vote that lingered in
vain as 10 s of log time.
"""

from __future__ import annotations

import time

import pytest

from rollup_client.protocol import swap
from rollup_client.protocol.genesis import SWAP_NAMESPACE
from rollup_client.sdk import SequencerClient
from tests.keys import key
from tests.network import Net, start_sequencer
from tests.procs import Proc

from .conftest import CHAIN_ID, GOLD, StartNode
from .test_swaps import _propose

LINGER_MS = 10_000
NODE_FLAGS = ("--vote-linger-ms", str(LINGER_MS), "--attest-every", "0")


@pytest.fixture
def sequencer(net: Net, procs: list[Proc]) -> str:
    """Overrides conftest's: no heartbeat blocks and a long linger allowed."""
    config = net.dir / "sequencer.toml"
    config.write_text(f"[limits]\nmax_linger_ms = {LINGER_MS}\n")
    return start_sequencer(net, procs, "--config", str(config), heartbeat_ms=60_000)


def _votes(sequencer: str, swap_id: bytes, count: int) -> list[tuple[int, int]]:
    """(height, log time) of the block holding each vote on `swap_id`, once `count` are in."""
    deadline = time.monotonic() + 30
    with SequencerClient(sequencer, chain_id=CHAIN_ID) as client:
        while True:
            found = []
            for h in range(client.status().height + 1):
                blk = client.get_block(h, [SWAP_NAMESPACE])
                for e in blk.entries:
                    vote = swap.decode_swap_entry(e.data)
                    if isinstance(vote, swap.Vote) and vote.swap_id == swap_id:
                        found.append((h, blk.header.time_ms))
            if len(found) >= count:
                return found
            assert time.monotonic() < deadline, f"{len(found)} of {count} votes after 30 s"
            time.sleep(0.05)


def _ordered_at(sequencer: str, swap_id: bytes) -> int:
    """Log time of the block holding the intent."""
    with SequencerClient(sequencer, chain_id=CHAIN_ID) as client:
        for h in range(client.status().height + 1):
            blk = client.get_block(h, [SWAP_NAMESPACE])
            for e in blk.entries:
                item = swap.decode_swap_entry(e.data)
                if isinstance(item, swap.SignedIntent) and item.swap_id == swap_id:
                    return blk.header.time_ms
    raise AssertionError("the intent is not in the log")


def test_votes_on_a_two_rollup_swap_share_one_block(sequencer: str, start_node: StartNode) -> None:
    start_node("alpha", None, *NODE_FLAGS)
    start_node("beta", None, *NODE_FLAGS)
    alice, carol = key("alice"), key("carol")
    legs = (
        swap.Leg("alpha", alice.public, carol.public, GOLD, 100),
        swap.Leg("beta", carol.public, alice.public, GOLD, 30),
    )
    sid = _propose(sequencer, legs, [alice, carol])
    votes = _votes(sequencer, sid, 2)
    assert votes[0] == votes[1], votes


def test_a_vote_no_other_rollup_answers_does_not_linger(
    sequencer: str, start_node: StartNode
) -> None:
    start_node("alpha", None, *NODE_FLAGS)
    start_node("beta", None, *NODE_FLAGS)
    alice, bob = key("alice"), key("bob")
    sid = _propose(sequencer, (swap.Leg("alpha", alice.public, bob.public, GOLD, 1),), [alice])
    [(_, voted_at)] = _votes(sequencer, sid, 1)
    assert voted_at - _ordered_at(sequencer, sid) < LINGER_MS
