"""What the end-to-end swap tests share: the users' keys and balance bookkeeping."""

from __future__ import annotations

import json
from typing import Any

from rollup_client.sdk import RollupClient, SequencerClient
from rollup_client.wire import swap_pb2 as pb
from swap_coordinator.client import SwapClient
from tests.keys import key
from tests.network import Net, until

from .conftest import ASSETS, USERS

ALICE, BOB, CAROL = key("alice"), key("bob"), key("carol")
Balances = dict[str, dict[str, int]]


def balances(
    net: Net, height: int | None = None, rollups: tuple[str, ...] = ("alpha", "beta")
) -> Balances:
    """Every user's balance per rollup once each node has applied `height` (default: head)."""
    if height is None:
        with SequencerClient(net.sequencer) as seq:
            height = seq.status().height
    return {r: _balances(net.nodes[r], r, height) for r in rollups}


def _balances(target: str, rollup: str, height: int) -> dict[str, int]:
    with RollupClient(target) as node:
        until(f"{rollup} at {height}", lambda: node.status().height >= height or None)
        return {u: node.balance(key(u).public, ASSETS[rollup]) for u in USERS}


def changed(before: Balances, after: Balances) -> dict[str, dict[str, int]]:
    """Non-zero balance changes per rollup."""
    return {
        r: {u: after[r][u] - v for u, v in users.items() if after[r][u] != v}
        for r, users in before.items()
    }


def doc(result: Any) -> dict[str, Any]:
    assert result.stdout, result.stderr
    out: dict[str, Any] = json.loads(result.stdout)
    return out


def decided(client: SwapClient, sid: bytes) -> pb.SwapStatus:
    def probe() -> pb.SwapStatus | None:
        s = client.get(sid)
        return s if s.decided else None

    return until("the decision", probe)
