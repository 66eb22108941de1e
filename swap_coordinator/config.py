"""Typed coordinator configuration, loaded from one TOML file; CLI flags override it."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from rollup_client.protocol.errors import InvalidArgument
from rollup_client.rpc import TlsFiles
from rollup_client.rpc.config_file import read_table, tls_from

DEFAULT_LISTEN = "127.0.0.1:7300"
_PATHS = ("data_dir", "genesis", "key")
# What the flags of `tandem coordinator run` call the fields that have no default.
_FLAGS = {"sequencer": "--sequencer", "data_dir": "--data-dir"} | {
    k: f"--{k}" for k in ("genesis", "key")
}


@dataclass(frozen=True)
class Config:
    """Everything `serve` needs."""

    sequencer: str
    listen: str
    data_dir: Path
    genesis: Path
    key: Path
    call_timeout_s: float = 10.0
    metrics_listen: str = ""
    max_message_bytes: int = 4 * 1024 * 1024
    tls: TlsFiles | None = None
    """Mutual TLS for this server (clients must present a certificate signed by the CA)."""
    sequencer_tls: TlsFiles | None = None
    """Mutual TLS towards the sequencer."""
    workers: int = 32
    """gRPC worker threads; each open Watch stream holds one."""

    @property
    def db_path(self) -> Path:
        return self.data_dir / "coordinator.db"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "coordinator.log"


def load(path: Path | None, **overrides: Any) -> Config:
    """Config from TOML `path` (optional; its `[coordinator]` table if it has one) with
    `overrides` (None values ignored) on top. TLS files, from the file's tls_* keys or the
    `tls` override, secure both the server and the link to the sequencer."""
    known = {f.name for f in fields(Config)} - {"tls", "sequencer_tls"}
    doc = read_table(path, "coordinator", known)
    kwargs: dict[str, Any] = {"listen": DEFAULT_LISTEN}
    kwargs |= {k: Path(v) if k in _PATHS else v for k, v in doc.items() if k in known}
    kwargs["tls"] = tls_from(doc)
    kwargs |= {k: v for k, v in overrides.items() if v is not None}
    missing = [flag for name, flag in _FLAGS.items() if name not in kwargs]
    if missing:
        where = f" or in {path}" if path is not None else ""
        raise InvalidArgument(f"missing {', '.join(missing)} (as flags{where})")
    return Config(**kwargs, sequencer_tls=kwargs["tls"])
