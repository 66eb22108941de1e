"""`tandem swap audit`: recompute a swap's outcome from the raw log, trusting no coordinator.

Reads the `swap` namespace from height 0 straight from the sequencer, checks every block
(signature, proofs, hash link) against the genesis, runs `decide()` over it, and compares
what each involved rollup node holds in escrow with what the decision implies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc

from rollup_client.protocol import block, swap
from rollup_client.protocol.errors import NotFound
from rollup_client.protocol.genesis import SWAP_NAMESPACE, Genesis
from rollup_client.rpc.channels import open_channel
from rollup_client.rpc.status import rpc_error
from rollup_client.sdk import RollupClient, SequencerClient
from rollup_client.wire import rollup_pb2 as rpb
from rollup_client.wire import rollup_pb2_grpc as rpb_grpc


def read_swap_log(
    target: str,
    genesis: Genesis,
    timeout: float,
    credentials: grpc.ChannelCredentials | None = None,
) -> list[block.VerifiedBlock]:
    """Every block from 0 to the current head, `swap` entries only, verified by the SDK."""
    with SequencerClient(
        target,
        chain_id=genesis.chain_id,
        sequencer_key=genesis.sequencer_key,
        timeout=timeout,
        credentials=credentials,
    ) as client:
        head = client.status().height
        out: list[block.VerifiedBlock] = []
        stream = client.subscribe([SWAP_NAMESPACE], 0, reconnect_for=timeout)
        try:
            for blk in stream:
                out.append(blk)
                if blk.height >= head:
                    break
        finally:
            stream.close()  # type: ignore[attr-defined]
        return out


@dataclass
class Audit:
    swap_id: bytes
    decision: swap.Decision
    intent: swap.Intent | None
    log_height: int
    log_time_ms: int
    rollups: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        d = self.decision
        return {
            "swap_id": self.swap_id.hex(),
            "outcome": d.outcome.value,
            "decision_position": (
                None
                if d.outcome is swap.Outcome.PENDING
                else {"height": d.height, "index": d.index, "block_start": d.index < 0}
            ),
            "reason": d.reason,
            "deadline_ms": self.intent.deadline_ms if self.intent else None,
            "log_height": self.log_height,
            "log_time_ms": self.log_time_ms,
            "rollups": self.rollups,
            "ok": not self.problems,
            "problems": self.problems,
        }


@dataclass(frozen=True)
class Held:
    """What one rollup node holds in escrow for the swap, at the ledger height it read."""

    rollup: str
    height: int
    legs: tuple[tuple[bytes, bytes, str, int], ...]


def read_escrow(
    target: str,
    swap_id: bytes,
    timeout: float,
    credentials: grpc.ChannelCredentials | None = None,
) -> Held:
    """One consistent read: escrow and the height of the ledger it came from."""
    with RollupClient(target, timeout=timeout, credentials=credentials) as node:
        rollup = node.status().rollup_id
    with open_channel(target, credentials) as channel:
        try:
            resp = rpb_grpc.RollupServiceStub(channel).GetEscrow(
                rpb.GetEscrowRequest(swap_id=swap_id), timeout=timeout
            )
        except grpc.RpcError as exc:
            raise rpc_error(exc, f"rollup node {target}") from None
    legs = tuple(sorted((g.sender, g.to, g.asset, g.amount) for g in resp.legs))
    return Held(rollup, resp.height, legs)


def audit(
    swap_id: bytes,
    genesis: Genesis,
    sequencer: str,
    rollup_nodes: Mapping[str, str],
    timeout: float,
    credentials: grpc.ChannelCredentials | None = None,
) -> Audit:
    """Decide from the log, then check escrow on every involved rollup with a node given.

    Nodes are read first and the log after, so the log read reaches every height a node
    had applied: the comparison never runs ahead of the log.
    """
    held = {r: read_escrow(t, swap_id, timeout, credentials) for r, t in rollup_nodes.items()}
    blocks = read_swap_log(sequencer, genesis, timeout, credentials)
    tracker = swap.SwapTracker(genesis)
    for blk in blocks:
        tracker.begin_block(blk.height, blk.time_ms)
        for e in blk.entries:
            tracker.apply(e)
    decision = swap.decide(blocks, swap_id, genesis)
    if decision != tracker.decision(swap_id):
        raise AssertionError(
            "decide() and the tracker disagree: a bug in rollup_client.protocol.swap"
        )
    rec = tracker.get(swap_id)
    if rec is None and decision.outcome is swap.Outcome.PENDING:
        raise NotFound(f"swap {swap_id.hex()} is not in the log (up to height {tracker.height})")
    out = Audit(swap_id, decision, rec.intent if rec else None, tracker.height, tracker.time_ms)
    if rec is None:
        return out
    for rollup in rec.intent.rollups():
        seen = rec.votes.get(rollup)
        row: dict[str, Any] = {
            "vote": None if seen is None else ("yes" if seen.yes else "no"),
            "legs": len(rec.intent.legs_on(rollup)),
        }
        out.rollups[rollup] = row
        if rollup not in held:
            row["escrow"] = "not checked (no node address given)"
            continue
        _check_escrow(out, rollup, row, held[rollup], rec)
    return out


def _check_escrow(
    out: Audit, rollup: str, row: dict[str, Any], held: Held, rec: swap.SwapRecord
) -> None:
    if held.rollup != rollup:
        out.problems.append(f"the node given for {rollup!r} serves {held.rollup!r}")
        return
    row["node_height"] = held.height
    row["escrow"] = [
        {"from": p.hex(), "to": q.hex(), "asset": a, "amount": n} for p, q, a, n in held.legs
    ]
    d = out.decision
    seen = rec.votes.get(rollup)
    if held.height < rec.height:
        row["check"] = "node has not reached the intent yet"
        return
    if d.outcome is not swap.Outcome.PENDING and held.height >= d.height:
        expected: list[swap.Leg] = []
    elif seen is not None:
        # its vote records what it did at the intent's position: escrowed (YES) or refused
        expected = list(rec.intent.legs_on(rollup)) if seen.yes else []
    else:
        row["check"] = "no vote in the log yet: escrow may be in flight"
        return
    want = tuple(sorted((lg.payer, lg.payee, lg.asset, lg.amount) for lg in expected))
    row["check"] = "ok" if want == held.legs else "MISMATCH"
    if want != held.legs:
        out.problems.append(
            f"{rollup}: escrow holds {len(held.legs)} legs at height {held.height}, "
            f"the log implies {len(want)}"
        )
