"""The systems a benchmark can drive, by name, and how to run a session against one.

A peer that cannot run here (binary or client missing, server failing to start, workers
failing) becomes a row that says why, with no figures, instead of ending the benchmark.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from bench.loadgen import LoadFailed
from bench.peers import grpc_echo, nats_jetstream, redis_streams, tandem, testnet
from bench.procs import PeerUnavailable, ServerFailed

SYSTEMS: dict[str, ModuleType] = {
    "tandem": tandem,
    "grpc_echo": grpc_echo,
    "redis_streams": redis_streams,
    "nats_jetstream": nats_jetstream,
    "testnet": testnet,
}
NOT_MEASURED = (PeerUnavailable, ServerFailed, LoadFailed)
T = TypeVar("T")


@dataclass(frozen=True)
class Unavailable:
    """Why a system has no figures in this run."""

    reason: str

    def row(self) -> dict[str, Any]:
        return {"available": False, "reason": self.reason}


def durability(name: str) -> str:
    """What an acknowledgement from system `name` promises about the disk."""
    text: str = SYSTEMS[name].DURABILITY
    return text


def measure(
    name: str, workdir: Path, session: Callable[[dict[str, Any], Path], T]
) -> T | Unavailable:
    """Start system `name`, run `session(target, log_dir)` against it, stop it."""
    try:
        with SYSTEMS[name].start(workdir / name) as target:
            return session(target, workdir / name / "workers")
    except NOT_MEASURED as exc:
        text = str(exc).strip()
        return Unavailable(text.splitlines()[0] if text else type(exc).__name__)
