"""How a testnet's status looks: a rich table for people, a JSON document for scripts."""

from __future__ import annotations

import time
from typing import Any

from rich import box
from rich.table import Table

from deploy.probe import NetworkView
from deploy.state import TestnetState


def _short(raw: bytes) -> str:
    return raw.hex()[:12] if raw else "-"


def _clock(time_ms: int) -> str:
    """Log time as a UTC wall-clock time (the sequencer stamps it from its clock)."""
    return time.strftime("%H:%M:%S", time.gmtime(time_ms / 1000)) + f".{time_ms % 1000:03d}"


def to_json(testnet: TestnetState, view: NetworkView) -> dict[str, Any]:
    seq = view.sequencer
    return {
        "chain_id": testnet.chain_id,
        "sequencer": None
        if seq is None
        else {
            "endpoint": testnet.sequencer,
            "height": seq.height,
            "head_hash": seq.head_hash.hex(),
            "time_ms": seq.time_ms,
            "entries_per_s": round(seq.entries_per_s, 1),
        },
        "rollups": {
            rid: None
            if r is None
            else {"height": r.height, "state_root": r.state_root.hex(), "lag": r.lag}
            for rid, r in view.rollups.items()
        },
        "coordinator_serving": view.coordinator_serving,
        "processes": [
            {
                "name": p.name,
                "role": p.role,
                "pid": p.pid,
                "listen": p.listen,
                "running": p in testnet.running(),
                "log": p.log,
            }
            for p in testnet.processes
        ],
    }


def table(testnet: TestnetState, view: NetworkView) -> Table:
    seq = view.sequencer
    title = f"tandem testnet {testnet.chain_id}"
    if seq is not None:
        title += (
            f" - height {seq.height}, head {_short(seq.head_hash)}, "
            f"log time {_clock(seq.time_ms)} UTC, {seq.entries_per_s:.1f} entries/s"
        )
    t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("process", "endpoint", "pid", "state", "height", "state root", "lag"):
        t.add_column(col, no_wrap=True)
    running = {p.name for p in testnet.running()}
    for p in testnet.processes:
        state = "running" if p.name in running else "exited"
        height, root, lag = "-", "-", "-"
        if p.role == "sequencer" and seq is not None:
            height = str(seq.height)
        elif p.role == "rollup" and (r := view.rollups.get(p.name)) is not None:
            height, root, lag = str(r.height), _short(r.state_root), str(r.lag)
        elif p.role == "coordinator" and p.name in running:
            state = "serving" if view.coordinator_serving else "not serving"
        if p.name in running and state == "running" and height == "-":
            state = "unreachable"
        t.add_row(p.name, p.listen, str(p.pid), state, height, root, lag)
    return t
