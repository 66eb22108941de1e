"""Typed configuration of a rollup node, loaded from one TOML file; CLI flags override it."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from rollup_client.protocol import codec
from rollup_client.protocol.errors import InvalidArgument
from rollup_client.rpc import TlsFiles, tls_files


@dataclass(frozen=True)
class NodeConfig:
    """Everything `node.serve` needs. Files default to names inside `data_dir`."""

    rollup_id: str
    sequencer: str
    data_dir: Path
    genesis: Path
    key: Path
    listen: str = "127.0.0.1:0"
    # "" disables the metrics endpoint; port 0 picks a free one.
    metrics_listen: str = ""
    snapshot_every: int = 100
    # 0 disables attestations (a read-only replica must not attest).
    attest_every: int = 10
    # False: a read-only replica that follows the log but forwards nothing.
    submit: bool = True
    # A batch holding votes asks the sequencer to hold it this long for company
    # (SubmitBatchRequest.linger_ms): the other rollups' votes on the same intents are
    # on their way, and one block for all of them decides the swap one write sooner.
    vote_linger_ms: int = 10
    # Handler threads; WaitReceipt holds one while it waits. Calls beyond 4x this many
    # in flight are refused with RESOURCE_EXHAUSTED rather than queued without bound.
    grpc_workers: int = 64
    max_message_bytes: int = 4 * 1024 * 1024
    # Longest a WaitReceipt may block, and the timeout of every call to the sequencer.
    max_wait_ms: int = 60_000
    call_timeout_s: float = 10.0
    # Transactions waiting to be forwarded; beyond this SubmitTransaction is
    # RESOURCE_EXHAUSTED (overload is refused, not queued into ever longer latency).
    max_queued: int = 10_000
    # While catching up, persist this many blocks per transaction.
    catchup_group: int = 256
    # Mutual TLS on the node's server; the link to the sequencer uses `sequencer_tls`
    # (the CLI sets both from the same files).
    tls: TlsFiles | None = None
    sequencer_tls: TlsFiles | None = None

    def __post_init__(self) -> None:
        codec.check_namespace(self.rollup_id)
        if self.snapshot_every <= 0:
            raise InvalidArgument("snapshot_every must be positive")
        if self.vote_linger_ms < 0:
            raise InvalidArgument("vote_linger_ms must be 0 (off) or positive")
        if self.attest_every < 0:
            raise InvalidArgument("attest_every must be 0 (off) or positive")
        if min(self.catchup_group, self.grpc_workers, self.max_queued) <= 0:
            raise InvalidArgument("catchup_group, grpc_workers and max_queued must be positive")

    @property
    def db_path(self) -> Path:
        return self.data_dir / "rollup.sqlite"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "rollup.log"


# Fields without a default, which the file or the flags must give, and those flags.
REQUIRED = {
    "rollup_id": "--id",
    "sequencer": "--sequencer",
    "data_dir": "--data-dir",
    "genesis": "--genesis",
    "key": "--key",
}
# TOML keys naming the TLS files, as the --tls-* flags do; they serve both the node's
# server and its link to the sequencer.
TLS_KEYS = ("tls_ca", "tls_cert", "tls_key")
_PATHS = ("data_dir", "genesis", "key")


def load(path: Path | None, **overrides: Any) -> NodeConfig:
    """Config from TOML `path` (optional; its `[rollup]` table, or the top level) with
    `overrides` (None values ignored) on top."""
    doc: dict[str, Any] = {}
    if path is not None:
        try:
            doc = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise InvalidArgument(f"cannot read config {path}: {exc}") from exc
    doc = doc.get("rollup", doc)
    known = {f.name for f in fields(NodeConfig)} - {"tls", "sequencer_tls"}
    unknown = set(doc) - known - set(TLS_KEYS)
    if unknown:
        raise InvalidArgument(f"unknown config keys {sorted(unknown)} in {path}")
    tls = tls_files(*(Path(doc.pop(k)) if k in doc else None for k in TLS_KEYS))
    kwargs: dict[str, Any] = {k: Path(v) if k in _PATHS else v for k, v in doc.items()}
    kwargs |= {"tls": tls, "sequencer_tls": tls}
    kwargs |= {k: v for k, v in overrides.items() if v is not None}
    missing = [f"{k} ({flag})" for k, flag in REQUIRED.items() if k not in kwargs]
    if missing:
        raise InvalidArgument(f"missing {', '.join(missing)}: set it in the config or by flag")
    try:
        return NodeConfig(**kwargs)
    except TypeError as exc:
        raise InvalidArgument(f"bad value in config {path}: {exc}") from exc
