"""A node whose execution posts a wrong state root is caught at that attestation.

The node runs in-process (`nursery.start(serve, ...)`) with a test-only ledger subclass
that lies about its root from block BAD on; the sequencer is a real process. Verification
(`tandem verify`) re-executes the log alone and names the first lying height.
"""

from __future__ import annotations

import hashlib
import json
from functools import partial

import trio

from rollup_client.ledger import TokenLedger
from rollup_client.node import NodeConfig, serve
from rollup_client.protocol.genesis import Genesis
from rollup_client.protocol.keys import SigningKey
from rollup_client.protocol.statemachine import StateMachine
from rollup_client.sdk import TrioRollupClient
from tests.keys import key
from tests.network import Net
from tests.procs import tandem

from .conftest import GOLD

BAD, EVERY = 5, 2


class LyingLedger(TokenLedger):
    """Executes honestly but reports a wrong root from block BAD on."""

    def state_root(self) -> bytes:
        root = super().state_root()
        return hashlib.sha256(b"lie" + root).digest() if self.height >= BAD else root


def lying(genesis: Genesis, rollup_id: str, k: SigningKey | None) -> StateMachine:
    return LyingLedger(genesis, rollup_id, signer=k)


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
                # Polled: the height grows with blocks from the sequencer process.
                while (await c.status()).height < BAD + 3 * EVERY:  # noqa: ASYNC110
                    await trio.sleep(0.05)
        nursery.cancel_scope.cancel()

    with trio.fail_after(60):
        out = await trio.run_process(
            tandem(
                "verify",
                "--rollup",
                "alpha",
                "--sequencer",
                sequencer,
                "--genesis",
                str(net.genesis_path),
                "--json",
                "--timeout",
                "30",
            ),
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    report = json.loads(out.stdout)
    assert out.returncode == 1, out.stderr
    assert report["ok"] is False
    assert report["first_divergent_height"] == BAD + 1  # the first attested height >= BAD
    assert report["matched"] >= 3  # heights 0, 2, 4 were honest
