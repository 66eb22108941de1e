"""Typed sequencer configuration, loaded from one TOML file; CLI flags override it."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from rollup_client.protocol.errors import InvalidArgument
from rollup_client.rpc import TlsFiles
from rollup_client.rpc.config_file import read_table, tls_from
from rollup_client.wire import sequencer_pb2 as pb


@dataclass(frozen=True)
class Limits:
    """Request limits, published in Status so clients can size their batches."""

    max_entry_bytes: int = 64 * 1024
    max_batch_entries: int = 1000
    max_batch_bytes: int = 1024 * 1024
    # Below Config.grpc_workers, so the intake refuses before grpcio queues calls unbounded.
    max_inflight_batches_per_client: int = 16
    max_message_bytes: int = 4 * 1024 * 1024
    # A batch's linger_ms beyond this is cut short: a client cannot park its batch (and
    # the worker thread its call holds) for long.
    max_linger_ms: int = 20

    def to_pb(self) -> pb.Limits:
        return pb.Limits(
            max_entry_bytes=self.max_entry_bytes,
            max_batch_entries=self.max_batch_entries,
            max_batch_bytes=self.max_batch_bytes,
            max_inflight_batches_per_client=self.max_inflight_batches_per_client,
            max_message_bytes=self.max_message_bytes,
            max_linger_ms=self.max_linger_ms,
        )


@dataclass(frozen=True)
class Config:
    """Everything `serve` needs. Paths default to files inside `data_dir`."""

    data_dir: Path
    listen: str = "127.0.0.1:0"
    # "" disables the metrics endpoint; port 0 picks a free one.
    metrics_listen: str = ""
    heartbeat_ms: int = 500
    max_block_entries: int = 10_000
    # Entries waiting for a block across all clients; beyond this submits get RESOURCE_EXHAUSTED.
    max_queue_entries: int = 200_000
    # Each Subscribe stream and each waiting submit holds a worker thread.
    grpc_workers: int = 64
    genesis: Path | None = None
    key: Path | None = None
    # Mutual TLS: serve with this certificate, accept only clients certified by the CA.
    tls: TlsFiles | None = None
    limits: Limits = field(default_factory=Limits)

    @property
    def genesis_path(self) -> Path:
        return self.genesis or self.data_dir / "genesis.json"

    @property
    def key_path(self) -> Path:
        return self.key or self.data_dir / "keys" / "sequencer.pem"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "blocks.sqlite"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "sequencer.log"

    def __post_init__(self) -> None:
        if self.heartbeat_ms <= 0:
            raise InvalidArgument("heartbeat_ms must be positive")
        if self.max_block_entries < self.limits.max_batch_entries:
            raise InvalidArgument("max_block_entries must be >= limits.max_batch_entries")
        if self.limits.max_batch_bytes >= self.limits.max_message_bytes:
            raise InvalidArgument("limits.max_batch_bytes must be < limits.max_message_bytes")
        if self.limits.max_linger_ms < 0:
            raise InvalidArgument("limits.max_linger_ms must be >= 0")


def load(path: Path | None, data_dir: Path, **overrides: Any) -> Config:
    """Config from TOML `path` (optional) with `overrides` (None values ignored) on top."""
    known = {f.name for f in fields(Config)} - {"data_dir", "tls"}
    doc = read_table(path, "sequencer", known)
    limit_names = {f.name for f in fields(Limits)}
    bad_limits = set(doc.get("limits", {})) - limit_names
    if bad_limits:
        raise InvalidArgument(f"unknown [limits] keys {sorted(bad_limits)} in {path}")
    kwargs: dict[str, Any] = {k: v for k, v in doc.items() if k in known - {"limits"}}
    for k in ("genesis", "key"):
        if k in kwargs:
            kwargs[k] = Path(kwargs[k])
    limits = Limits(**doc.get("limits", {}))
    cfg = Config(data_dir=data_dir, limits=limits, tls=tls_from(doc), **kwargs)
    return replace(cfg, **{k: v for k, v in overrides.items() if v is not None})


def split_hostport(addr: str) -> tuple[str, int]:
    """("host", port) from "host:port"; IPv6 hosts may be bracketed."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise InvalidArgument(f"address {addr!r} is not HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)
