"""A node whose execution posts a wrong state root is caught at that attestation.

The node runs in-process (`nursery.start(serve, ...)`) with a test-only ledger subclass
that lies about its root from block BAD on; the sequencer is a real process. Verification
re-executes the log alone, as `tandem verify` does, and names the first lying height.
"""

from __future__ import annotations

import hashlib
from functools import partial

import grpc
import trio

from rollup_client import block
from rollup_client.genesis import Genesis
from rollup_client.keys import SigningKey
from rollup_client.ledger import TokenLedger
from rollup_client.node import serve
from rollup_client.node_config import NodeConfig
from rollup_client.rollup_api import TrioRollupClient
from rollup_client.statemachine import StateMachine
from rollup_client.verify import Verifier, verify_blocks
from rollup_client.wire import sequencer_pb2 as pb
from rollup_client.wire import sequencer_pb2_grpc as pb_grpc

from .conftest import GOLD, Net, key

BAD, EVERY = 5, 2


class LyingLedger(TokenLedger):
    """Executes honestly but reports a wrong root from block BAD on."""

    def state_root(self) -> bytes:
        root = super().state_root()
        return hashlib.sha256(b"lie" + root).digest() if self.height >= BAD else root


def lying(genesis: Genesis, rollup_id: str, k: SigningKey) -> StateMachine:
    return LyingLedger(genesis, rollup_id, signer=k)


def _blocks(sequencer: str, genesis: Genesis, namespaces: list[str]) -> list[block.VerifiedBlock]:
    with grpc.insecure_channel(sequencer) as channel:
        stub = pb_grpc.SequencerServiceStub(channel)
        head = stub.Status(pb.StatusRequest(), timeout=10).height
        requests = [pb.GetBlockRequest(height=h, namespaces=namespaces) for h in range(head + 1)]
        return [
            block.verify_block(
                stub.GetBlock(r, timeout=10).block, genesis.sequencer_key, namespaces
            )
            for r in requests
        ]


async def test_lying_node_is_caught_at_its_first_wrong_attestation(
    net: Net, sequencer: str
) -> None:
    cfg = NodeConfig(
        rollup_id="alpha",
        sequencer=sequencer,
        data_dir=net.dir / "liar",
        genesis=net.genesis_path,
        key=net.key_paths["alpha"],
        attest_every=EVERY,
        call_timeout_s=5,
    )
    async with trio.open_nursery() as nursery:
        ends = await nursery.start(partial(serve, cfg, machine_factory=lying))
        async with TrioRollupClient(ends.listen) as c:
            r = await c.transfer(key("alice"), key("bob").public, GOLD, 3)
            assert r.ok
            with trio.fail_after(20):
                while (await c.status()).height < BAD + 3 * EVERY:
                    await trio.sleep(0.05)
        nursery.cancel_scope.cancel()

    namespaces = Verifier(net.genesis, "alpha").namespaces()
    blocks = await trio.to_thread.run_sync(_blocks, sequencer, net.genesis, namespaces)
    report = verify_blocks(net.genesis, "alpha", blocks)
    assert not report.ok
    assert report.first_divergent_height == BAD + 1  # the first attested height >= BAD
    assert report.matched >= 3  # heights 0, 2, 4 were honest
