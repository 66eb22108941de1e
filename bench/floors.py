"""How far a target can be reached at all, from figures measured in the same run.

Two of the targets compare Tandem with something that does less than any correct Tandem
can. A signed, durable ack needs, after the echo's round trip, the client's signature on
the batch, the sequencer's check of it, the sequencer's signature on the block header and
one fdatasync, one after the other: their medians, measured here, added to the echo's p50
give the light-load p50 floor of this design on this machine. A sequencer served by grpcio
cannot outrun the bare grpcio echo with the same load shape, so the echo's own ratio over a
peer is the ceiling of Tandem's ratio over that peer. A target beyond its floor or ceiling
in a run is out of reach by design there, not for want of optimisation: the notes say so.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.disk import fsync_latencies_ms
from bench.stats import median, ratio
from rollup_client.protocol.keys import SigningKey, verify

# One SQLite WAL frame: a one-entry block's commit writes about a page.
PAGE_BYTES = 4096
# A light-load run commits about this often (one block per call).
LIGHT_COMMITS_PER_S = 500.0


@dataclass(frozen=True)
class AckCosts:
    """Median cost in ms of each step a signed, durable ack adds to the echo's round trip."""

    client_sign_ms: float
    verify_ms: float
    header_sign_ms: float
    fsync_ms: float

    def total_ms(self) -> float:
        return self.client_sign_ms + self.verify_ms + self.header_sign_ms + self.fsync_ms


def _median_ms(fn: Callable[[], object], rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000.0)
    return median(samples) or 0.0


def measure_ack_costs(workdir: Path, rounds: int, fsync_s: float) -> AckCosts:
    """Each step timed on its own in this process: Ed25519 through the code Tandem uses,
    and a page appended and fdatasynced in `workdir` at a light-load rate."""
    client, sequencer = SigningKey.generate(), SigningKey.generate()
    digest = os.urandom(32)
    signature = client.sign(digest)
    if not verify(client.public, signature, digest):
        raise AssertionError("a fresh Ed25519 signature did not verify")
    fsyncs = fsync_latencies_ms(workdir, fsync_s, LIGHT_COMMITS_PER_S, PAGE_BYTES)
    return AckCosts(
        client_sign_ms=_median_ms(lambda: client.sign(digest), rounds),
        verify_ms=_median_ms(lambda: verify(client.public, signature, digest), rounds),
        header_sign_ms=_median_ms(lambda: sequencer.sign(digest), rounds),
        fsync_ms=median(fsyncs) or 0.0,
    )


def light_floor(echo_p50_ms: float | None, costs: AckCosts) -> dict[str, Any]:
    """The lowest light-load p50 a signed, durable ack can have in this run, and its ratio
    to the echo's p50 (the figure the target bounds)."""
    floor = None if echo_p50_ms is None else echo_p50_ms + costs.total_ms()
    return {
        **asdict(costs),
        "p50_ms": floor,
        "p50_vs_grpc_echo": ratio(floor, echo_p50_ms),
    }


def transport_ceilings(
    rates: Mapping[str, float | None], peers: Mapping[str, str]
) -> dict[str, float | None]:
    """The bare echo's rate over each peer's (`peers` maps system to ratio name): the most a
    grpcio-served sequencer's ratio over that peer can be in this run."""
    echo = rates.get("grpc_echo")
    return {key: ratio(echo, rates.get(name)) for name, key in peers.items() if name != "grpc_echo"}


def beyond_reach(
    targets: Mapping[str, float], bounds: Mapping[str, float | None], at_most: bool
) -> list[str]:
    """A note for each target its bound puts out of reach: a ceiling below an `>=` target
    (at_most=False) or a floor above an `<=` target (at_most=True)."""
    notes = []
    for key, target in targets.items():
        bound = bounds.get(key)
        if bound is None or (bound <= target if at_most else bound >= target):
            continue
        side = "floor" if at_most else "ceiling"
        notes.append(
            f"{key} target {target:g} is out of reach by design in this run: "
            f"its {side} here is {bound:.2f}"
        )
    return notes
