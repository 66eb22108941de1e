"""`tandem bench state`: state-root update time per block as the number of accounts grows.

The rollup's state root is a SlotTree (rollup_client.protocol.stateroot) with one slot per key.
For each size N the tree is built with N accounts, then each block changes the same
number of randomly chosen accounts and recomputes the root; the cost per block should
follow log2(N) (the paths of the touched slots), not N. In-process: no server involved.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.report import Cell, Chart, Report, machine, now_utc
from bench.stats import latency_summary
from rollup_client.protocol.stateroot import SlotTree

TARGET = "per-block root update time grows no more than log2(accounts)"
SEED = 6


@dataclass(frozen=True)
class Params:
    sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    touched: int = 100
    blocks: int = 50

    @classmethod
    def quick(cls) -> Params:
        return cls(sizes=(1_000, 10_000, 100_000), blocks=20)


def _leaf(i: int, version: int) -> bytes:
    return hashlib.sha256(i.to_bytes(8, "big") + version.to_bytes(8, "big")).digest()


def measure_size(n: int, touched: int, blocks: int, rng: random.Random) -> dict[str, Any]:
    """Build a tree of `n` accounts, then time `blocks` root updates of `touched` accounts."""
    tree = SlotTree()
    t0 = time.perf_counter()
    tree.extend([_leaf(i, 0) for i in range(n)])
    tree.root()
    build_s = time.perf_counter() - t0
    per_block_ms: list[float] = []
    hashes: list[int] = []
    for block in range(1, blocks + 1):
        for slot in rng.sample(range(n), min(touched, n)):
            tree.set(slot, _leaf(slot, block))
        before = tree.hashes
        t0 = time.perf_counter()
        tree.root()
        per_block_ms.append((time.perf_counter() - t0) * 1000.0)
        hashes.append(tree.hashes - before)
    summary = latency_summary(per_block_ms)
    return {
        "accounts": n,
        "build_s": build_s,
        "per_block_p50_ms": summary["p50_ms"],
        "per_block_p99_ms": summary["p99_ms"],
        "hashes_per_block": sum(hashes) / len(hashes),
    }


def per_doubling(sizes: list[dict[str, Any]], key: str) -> list[float]:
    """Increase of `key` per doubling of accounts between consecutive sizes.

    Logarithmic growth keeps this constant; linear growth multiplies it by the size step.
    """
    out = []
    for a, b in itertools.pairwise(sizes):
        doublings = math.log2(b["accounts"] / a["accounts"])
        out.append((b[key] - a[key]) / doublings)
    return out


def run(params: Params, workdir: Path) -> Report:
    started, host = now_utc(), machine(workdir)
    rng = random.Random(SEED)
    sizes = [measure_size(n, params.touched, params.blocks, rng) for n in params.sizes]
    hashes_slope = per_doubling(sizes, "hashes_per_block")
    time_slope = per_doubling(sizes, "per_block_p50_ms")
    logarithmic = len(hashes_slope) < 2 or hashes_slope[-1] <= 1.25 * hashes_slope[0]
    doc = {
        "benchmark": "state",
        "started_at": started,
        "machine": host,
        "params": asdict(params),
        "sizes": sizes,
        "growth": {
            "hashes_per_doubling": hashes_slope,
            "ms_per_doubling": time_slope,
            "logarithmic": logarithmic,
        },
        "target": TARGET,
    }
    rows: list[dict[str, Cell]] = [
        {
            "accounts": s["accounts"],
            "build s": s["build_s"],
            "root update p50 ms": s["per_block_p50_ms"],
            "root update p99 ms": s["per_block_p99_ms"],
            "hashes per block": s["hashes_per_block"],
        }
        for s in sizes
    ]
    charts = [
        Chart(
            f"Root update per block ({params.touched} accounts touched)",
            "ms",
            {f"{s['accounts']:,}": {"p50": s["per_block_p50_ms"]} for s in sizes},
        )
    ]
    steps = zip(hashes_slope, time_slope, strict=True)
    notes = [
        "per doubling of accounts: "
        + ", ".join(f"+{h:.0f} hashes / +{t:.3f} ms" for h, t in steps)
        + (" (constant: logarithmic)" if logarithmic else " (growing: worse than logarithmic)"),
        f"target: {TARGET}",
    ]
    problems = [] if logarithmic else ["state root update grows faster than log2(accounts)"]
    return Report("state", doc, rows, charts, notes, problems)
