"""`tandem swap audit`: recompute a swap's outcome from the raw log, trusting no coordinator.

Reads the `swap` namespace from height 0 straight from the sequencer, checks every block
(signature, proofs, hash link) against the genesis, runs `decide()` over it, and compares
what each involved rollup node holds in escrow with what the decision implies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rollup_client import block, swap
from rollup_client.client import SequencerClient
from rollup_client.errors import NotFound
from rollup_client.genesis import SWAP_NAMESPACE, Genesis
from rollup_client.rollup_api import RollupClient

_CONSISTENT_READS = 20


def read_swap_log(target: str, genesis: Genesis, timeout: float) -> list[block.VerifiedBlock]:
    """Every block from 0 to the current head, `swap` entries only, verified by the SDK."""
    with SequencerClient(
        target, chain_id=genesis.chain_id, sequencer_key=genesis.sequencer_key, timeout=timeout
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


def audit(
    swap_id: bytes,
    genesis: Genesis,
    sequencer: str,
    rollup_nodes: Mapping[str, str],
    timeout: float,
) -> Audit:
    """Decide from the log, then check escrow on every involved rollup with a node given."""
    tracker = swap.SwapTracker(genesis)
    blocks = read_swap_log(sequencer, genesis, timeout)
    for blk in blocks:
        tracker.begin_block(blk.height, blk.time_ms)
        for e in blk.entries:
            tracker.apply(e)
    decision = swap.decide(blocks, swap_id, genesis)
    if decision != tracker.decision(swap_id):
        raise AssertionError("decide() and the tracker disagree: a bug in rollup_client.swap")
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
        target = rollup_nodes.get(rollup)
        if target is None:
            row["escrow"] = "not checked (no node address given)"
            continue
        _check_escrow(out, rollup, row, target, rec, timeout)
    return out


def _check_escrow(
    out: Audit,
    rollup: str,
    row: dict[str, Any],
    target: str,
    rec: swap.SwapRecord,
    timeout: float,
) -> None:
    with RollupClient(target, timeout=timeout) as node:
        for _ in range(_CONSISTENT_READS):
            # escrow and height from one moment: retry while the node moves under us
            status = node.status()
            held = node.escrow(out.swap_id)
            if node.status().height == status.height:
                break
        if status.rollup_id != rollup:
            out.problems.append(f"{target} serves rollup {status.rollup_id!r}, not {rollup!r}")
            return
    row["node_height"] = status.height
    row["escrow"] = [
        {"from": e.sender.hex(), "to": e.to.hex(), "asset": e.asset, "amount": e.amount}
        for e in held
    ]
    d = out.decision
    decided = d.outcome is not swap.Outcome.PENDING
    if status.height < rec.height:
        row["check"] = "node has not reached the intent yet"
        return
    if decided and status.height >= d.height:
        expected: list[swap.Leg] = []
    elif rec.votes.get(rollup) is not None and not rec.votes[rollup].yes:
        expected = []
    elif rec.votes.get(rollup) is not None:
        expected = list(rec.intent.legs_on(rollup))
    else:
        row["check"] = "not yet voted: escrow may be in flight"
        return
    want = sorted((lg.payer, lg.payee, lg.asset, lg.amount) for lg in expected)
    got = sorted((e.sender, e.to, e.asset, e.amount) for e in held)
    row["check"] = "ok" if want == got else "MISMATCH"
    if want != got:
        out.problems.append(
            f"{rollup}: escrow holds {len(got)} legs, the log implies {len(want)} "
            f"(node at height {status.height})"
        )
