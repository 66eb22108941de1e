"""Overload is refused, not queued: past its limit of waiters a node answers
RESOURCE_EXHAUSTED at once, and its other calls keep being served meanwhile."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
import trio

from rollup_client.ledger import TokenLedger
from rollup_client.node import NodeConfig, serve
from rollup_client.protocol.errors import InvalidArgument, NotFound, ResourceExhausted
from rollup_client.sdk import TrioRollupClient
from tests.keys import key
from tests.network import Net

from .conftest import FUNDS, GOLD


async def test_waiters_beyond_the_limit_are_refused(net: Net, sequencer: str) -> None:
    cfg = NodeConfig(
        rollup_id="alpha",
        sequencer=sequencer,
        data_dir=net.dir / "alpha",
        genesis=net.genesis_path,
        key=net.key_paths["alpha"],
        grpc_workers=4,  # so at most 2 WaitReceipt calls may wait at once
    )
    outcomes: list[type[Exception]] = []
    first = trio.Event()

    async def wait_unknown(c: TrioRollupClient, i: int) -> None:
        try:
            await c.wait_receipt(bytes([i]) * 32, 3)
        except (NotFound, ResourceExhausted) as exc:
            outcomes.append(type(exc))
            first.set()

    async with trio.open_nursery() as nursery:
        ends = await nursery.start(partial(serve, cfg, machine_factory=TokenLedger))
        async with TrioRollupClient(ends.listen) as c, trio.open_nursery() as waits:
            for i in range(3):
                waits.start_soon(wait_unknown, c, i)
            with trio.fail_after(2):
                await first.wait()
                assert outcomes == [ResourceExhausted]
                assert await c.balance(key("alice").public, GOLD) == FUNDS
        assert sorted(o.__name__ for o in outcomes) == [
            "NotFound",
            "NotFound",
            "ResourceExhausted",
        ]
        nursery.cancel_scope.cancel()


def test_config_refuses_nonsense(net: Net) -> None:
    base: dict[str, Any] = {
        "sequencer": "127.0.0.1:1",
        "data_dir": net.dir,
        "genesis": net.genesis_path,
        "key": net.key_paths["alpha"],
    }
    with pytest.raises(InvalidArgument, match="max_queued"):
        NodeConfig("alpha", max_queued=0, **base)
    with pytest.raises(InvalidArgument, match="snapshot_every"):
        NodeConfig("alpha", snapshot_every=0, **base)
    with pytest.raises(InvalidArgument, match="namespace"):
        NodeConfig("Not A Namespace", **base)
