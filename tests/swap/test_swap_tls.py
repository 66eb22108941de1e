"""The coordinator behind mutual TLS, on the shared swap network."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
import trio

from rollup_client.protocol import swap
from rollup_client.protocol.errors import Unavailable
from swap_coordinator.client import SwapClient
from swap_coordinator.config import Config
from swap_coordinator.service import serve
from tests.network import Net
from tests.swap.e2e import ALICE, BOB
from tests.tls import issue, write

pytestmark = pytest.mark.processes


async def test_mutual_tls_on_the_coordinator(net: Net, tmp_path: Path) -> None:
    """The hypercorn-shaped serve() in this process: only CA-signed clients are served."""
    ca = issue("swap-ca", None)
    server = write(tmp_path, "coordinator", issue("coordinator", ca), ca)
    user = write(tmp_path, "user", issue("user", ca), ca)
    cfg = Config(
        net.sequencer,
        "127.0.0.1:0",
        tmp_path / "tls-coordinator",
        net.genesis_path,
        net.key_paths["coordinator"],
        tls=server,
    )

    def calls(target: str) -> None:
        with SwapClient(target, credentials=user.channel_credentials(), timeout=5) as c:
            assert c.propose([swap.Leg("delta", ALICE.public, BOB.public, "lead", 1)], timeout_ms=9)
        with SwapClient(target, timeout=5) as c, pytest.raises(Unavailable):
            c.list()

    async with trio.open_nursery() as nursery:
        ends = await nursery.start(partial(serve, cfg))
        await trio.to_thread.run_sync(calls, ends.listen)
        nursery.cancel_scope.cancel()
