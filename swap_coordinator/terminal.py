"""What a person sees of a swap in `tandem swap ...`: its description on stderr, a spinner
while following it, and the exit code its state gives (documented in `cli`)."""

from __future__ import annotations

import time
from typing import Any

import typer
from rich.console import Console

from rollup_client.protocol.errors import Unavailable
from rollup_client.wire import swap_pb2 as pb
from swap_coordinator import convert
from swap_coordinator.client import SwapClient

EXIT_COMMITTED, EXIT_ERROR, EXIT_ABORTED, EXIT_PENDING, EXIT_AUDIT = 0, 1, 3, 4, 5
_RECONNECT_S = 0.2
_FINAL = (pb.SWAP_STATE_COMMITTED, pb.SWAP_STATE_ABORTED, pb.SWAP_STATE_EXPIRED)

err = Console(stderr=True)


def describe(s: pb.SwapStatus, names: dict[bytes, str]) -> None:
    doc = convert.status_json(s, names)
    left = s.time_left_ms / 1000
    err.print(
        f"swap {doc['swap_id']}\n  state {doc['state']}"
        + (f" ({doc['reason']})" if doc["reason"] else "")
        + f"\n  deadline {s.deadline_ms} (log time {s.log_time_ms}, {left:+.1f} s left)"
        + (f"\n  intent at {_at(doc['intent_position'])}" if s.ordered else "")
        + (f"\n  decided at {_at(doc['decision_position'])}" if s.decided else ""),
        highlight=False,
    )
    for leg in doc["legs"]:
        err.print(
            f"  {leg['rollup']}: {leg['from']} -> {leg['to']} {leg['amount']} {leg['asset']}"
            f"  signed={leg['signed']} vote={leg['vote']} lock={leg['lock']}",
            highlight=False,
        )
    if doc["missing_signers"]:
        err.print(f"  waiting for signatures of {', '.join(doc['missing_signers'])}")
    typer.echo(doc["swap_id"] + " " + doc["state"])


def _at(pos: dict[str, Any]) -> str:
    where = f"height {pos['height']}"
    return where + (" (block start)" if pos.get("block_start") else f" index {pos['index']}")


def _spinner_text(s: pb.SwapStatus) -> str:
    state = convert.STATE_NAMES.get(s.state, "?")
    return (
        f"swap {s.swap_id.hex()[:12]}… {state}: log time {s.log_time_ms} / deadline "
        f"{s.deadline_ms} ({s.time_left_ms / 1000:+.1f} s)"
    )


def follow(client: SwapClient, sid: bytes, timeout: float) -> pb.SwapStatus:
    """The latest status until final or `timeout`; rides out coordinator restarts."""
    end = time.monotonic() + timeout
    last = client.get(sid)
    with err.status(_spinner_text(last)) as spin:
        while last.state not in _FINAL and (left := end - time.monotonic()) > 0:
            try:
                for s in client.watch(sid, left):
                    last = s
                    spin.update(_spinner_text(s))
            except Unavailable:
                time.sleep(min(_RECONNECT_S, max(0.0, end - time.monotonic())))
    return last


def exit_for(s: pb.SwapStatus) -> int:
    if s.state == pb.SWAP_STATE_COMMITTED:
        return EXIT_COMMITTED
    if s.state in (pb.SWAP_STATE_ABORTED, pb.SWAP_STATE_EXPIRED):
        return EXIT_ABORTED
    return EXIT_PENDING
