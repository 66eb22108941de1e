"""What a chaos run reads back once the faults are over: when the network has settled, the
verified log, and what the live servers report (state roots, balances, outcomes, escrow)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import grpc
import trio

from deploy import chaos_core
from deploy.chaos_core import Violation
from deploy.chaos_net import ROLLUPS, Net
from deploy.layout import COORDINATOR, SEQUENCER
from rollup_client.protocol import block, swap
from rollup_client.protocol.errors import FailedPrecondition, TandemError, VerificationError
from rollup_client.protocol.genesis import Genesis
from rollup_client.rpc.channels import open_channel
from rollup_client.sdk import RollupClient
from rollup_client.wire import sequencer_pb2 as pb
from rollup_client.wire import sequencer_pb2_grpc as pb_grpc
from rollup_client.wire import swap_pb2 as spb
from swap_coordinator.client import SwapClient

CALL_TIMEOUT_S = 5.0
SETTLE_TIMEOUT_S = 90.0
POLL_S = 0.1
FINAL = {spb.SWAP_STATE_COMMITTED: "committed", spb.SWAP_STATE_ABORTED: "aborted"}


@contextmanager
def _stub(addr: str) -> Iterator[pb_grpc.SequencerServiceStub]:
    with open_channel(addr) as ch:
        yield pb_grpc.SequencerServiceStub(ch)


def _settled(net: Net, after_ms: int) -> int | None:
    """The sequencer height once log time passed `after_ms` and every node reached it."""
    try:
        with _stub(net.addr(SEQUENCER)) as seq:
            head = seq.Status(pb.StatusRequest(), timeout=CALL_TIMEOUT_S)
        if head.head_time_ms <= after_ms:
            return None
        for r in ROLLUPS:
            with RollupClient(net.addr(r), timeout=CALL_TIMEOUT_S) as c:
                if c.status().height < head.height:
                    return None
    except (grpc.RpcError, TandemError):
        return None
    return int(head.height)


async def settle(net: Net, swaps: dict[bytes, int]) -> int:
    """Wait (bounded) until every deadline passed and every node caught up; that height."""
    after = max(swaps.values(), default=0) + 1_000
    with trio.move_on_after(SETTLE_TIMEOUT_S):
        # Polled: log time and the nodes' heights live in other processes.
        while (height := await trio.to_thread.run_sync(_settled, net, after)) is None:  # noqa: ASYNC110
            await trio.sleep(POLL_S)
        return height
    raise FailedPrecondition("the network did not settle: log time or a node stopped advancing")


def read_log(
    addr: str, genesis: Genesis, height: int
) -> tuple[list[block.VerifiedBlock], list[Violation]]:
    """Blocks 0..height, each verified (signature, proofs, completeness)."""
    blocks: list[block.VerifiedBlock] = []
    bad: list[Violation] = []
    with _stub(addr) as seq:
        for h in range(height + 1):
            fb = seq.GetBlock(
                pb.GetBlockRequest(height=h, all_namespaces=True), timeout=CALL_TIMEOUT_S
            )
            try:
                blocks.append(block.verify_block(fb.block, genesis.sequencer_key, None))
            except VerificationError as exc:
                bad.append(Violation("log-verifies", str(exc)))
                break
    return blocks, bad


def _placed(st: spb.SwapStatus) -> chaos_core.Placed:
    intent = (st.intent_position.height, st.intent_position.index) if st.ordered else None
    at = st.decision_position
    index = swap.BLOCK_START if st.decision_at_block_start else at.index
    return chaos_core.Placed(st.swap_id, intent, (at.height, index) if st.decided else None)


def live_views(
    net: Net, genesis: Genesis, height: int, swaps: dict[bytes, int]
) -> tuple[
    dict[str, tuple[int, bytes]],
    dict[tuple[str, bytes, str], int],
    list[tuple[bytes, str]],
    list[chaos_core.Placed],
    list[Violation],
]:
    """What the live servers report: roots at `height`, balances, outcomes, escrow left."""
    roots: dict[str, tuple[int, bytes]] = {}
    balances: dict[tuple[str, bytes, str], int] = {}
    left: list[Violation] = []
    keys = [k for r in genesis.rollups for k in r.balances]
    for r in ROLLUPS:
        with RollupClient(net.addr(r), timeout=CALL_TIMEOUT_S) as c:
            roots[r] = (height, c.state_root(height).state_root)
            for account in set(keys):
                for asset, amount in c.balances(account).items():
                    balances[(r, account, asset)] = amount
            for sid in swaps:
                if c.escrow(sid):
                    left.append(
                        Violation(
                            "escrow-past-deadline", f"{r} still holds escrow for {sid.hex()[:16]}"
                        )
                    )
    reported: list[tuple[bytes, str]] = []
    placed: list[chaos_core.Placed] = []
    with SwapClient(net.addr(COORDINATOR), timeout=CALL_TIMEOUT_S) as coord:
        for sid in swaps:
            try:
                st = coord.get(sid)
            except TandemError:
                continue  # proposed while the coordinator was being killed: never stored
            if st.state in FINAL:
                reported.append((sid, FINAL[st.state]))
            placed.append(_placed(st))
    return roots, balances, reported, placed, left
