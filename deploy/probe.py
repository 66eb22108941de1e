"""Read-only gRPC looks at a running testnet: health, heights, state roots, throughput.

Every call carries a timeout; a process that does not answer shows up as unreachable in the
status instead of hanging the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from deploy.state import TestnetState
from rollup_client.protocol.block import Header
from rollup_client.protocol.errors import TandemError
from rollup_client.protocol.genesis import Genesis
from rollup_client.sdk import RollupClient, SequencerClient

TIMEOUT_S = 2.0
# Throughput is measured over at most this much log time, and this many blocks back.
RATE_WINDOW_MS = 10_000
RATE_MAX_BLOCKS = 100

CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", 16 * 1024 * 1024),
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
]


Credentials: TypeAlias = grpc.ChannelCredentials | None


def channel(addr: str, credentials: Credentials = None) -> grpc.Channel:
    """Plaintext, or mutual TLS with `credentials` (a testnet up with --tls)."""
    if credentials is None:
        return grpc.insecure_channel(addr, options=CHANNEL_OPTIONS)
    return grpc.secure_channel(addr, credentials, options=CHANNEL_OPTIONS)


def serving(addr: str, timeout: float = TIMEOUT_S, credentials: Credentials = None) -> bool:
    """True when the server at `addr` reports SERVING on gRPC health."""
    with channel(addr, credentials) as ch:
        try:
            # types-grpcio-health-checking declares no HealthStub.Check (the generated stub
            # sets it in __init__): the stub is wrong, the call is grpcio's.
            resp = health_pb2_grpc.HealthStub(ch).Check(  # type: ignore[attr-defined]
                health_pb2.HealthCheckRequest(service=""), timeout=timeout
            )
        except grpc.RpcError:
            return False
    return bool(resp.status == health_pb2.HealthCheckResponse.SERVING)


@dataclass(frozen=True)
class SequencerView:
    height: int
    head_hash: bytes
    time_ms: int
    entries_per_s: float


@dataclass(frozen=True)
class RollupView:
    height: int
    state_root: bytes
    lag: int


@dataclass(frozen=True)
class NetworkView:
    """One status sample; None where a process did not answer."""

    sequencer: SequencerView | None
    rollups: dict[str, RollupView | None]
    coordinator_serving: bool


def sequencer_view(
    addr: str, genesis: Genesis, timeout: float = TIMEOUT_S, credentials: Credentials = None
) -> SequencerView:
    """Head and throughput, from headers whose signatures check against the genesis key."""
    with SequencerClient(
        addr,
        chain_id=genesis.chain_id,
        sequencer_key=genesis.sequencer_key,
        timeout=timeout,
        credentials=credentials,
    ) as client:
        status = client.status()
        # Headers from the head back, until the window of log time is covered.
        headers: list[Header] = []
        height = status.height
        while height >= 0 and len(headers) < RATE_MAX_BLOCKS:
            headers.append(client.get_block(height, namespaces=[]).header)
            if status.head_time_ms - headers[-1].time_ms >= RATE_WINDOW_MS:
                break
            height -= 1
    # Entries of every block after the oldest one seen, over the log time since it.
    entries = sum(h.entry_count for h in headers[:-1])
    span_ms = headers[0].time_ms - headers[-1].time_ms if headers else 0
    rate = entries * 1000.0 / span_ms if span_ms > 0 else 0.0
    return SequencerView(status.height, status.head_hash, status.head_time_ms, rate)


def rollup_view(
    addr: str, timeout: float = TIMEOUT_S, credentials: Credentials = None
) -> RollupView:
    with RollupClient(addr, timeout=timeout, credentials=credentials) as client:
        status = client.status()
    return RollupView(status.height, status.state_root, status.lag)


def network_view(state: TestnetState, credentials: Credentials = None) -> NetworkView:
    """A status sample of every process in `state` (`credentials` when it runs mutual TLS)."""
    try:
        seq: SequencerView | None = sequencer_view(
            state.sequencer, Genesis.load(Path(state.genesis)), credentials=credentials
        )
    except TandemError:
        seq = None
    rollups: dict[str, RollupView | None] = {}
    for rid, addr in state.rollups().items():
        try:
            rollups[rid] = rollup_view(addr, credentials=credentials)
        except TandemError:
            rollups[rid] = None
    coordinators = state.by_role("coordinator")
    coordinator_up = bool(coordinators) and serving(coordinators[0].listen, credentials=credentials)
    return NetworkView(seq, rollups, coordinator_up)
