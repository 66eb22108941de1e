"""A process's TOML config file: its table, checked key by key, and the TLS files it names.

Every process reads its own table (`[sequencer]`, `[coordinator]`) of one file, or the whole
file when it has no such table, so one file can configure several processes.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rollup_client.protocol.errors import InvalidArgument
from rollup_client.rpc.tls import TlsFiles, tls_files

TLS_KEYS = ("tls_ca", "tls_cert", "tls_key")
"""The keys naming the TLS files, as the --tls-* flags do."""


def read_table(path: Path | None, table: str, known: Iterable[str]) -> dict[str, Any]:
    """Table `table` of TOML file `path` ({} without a path); any key not in `known` or
    `TLS_KEYS` is refused, so a misspelt key is not silently ignored."""
    if path is None:
        return {}
    try:
        doc: dict[str, Any] = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidArgument(f"cannot read config {path}: {exc}") from exc
    doc = doc.get(table, doc)
    unknown = set(doc) - set(known) - set(TLS_KEYS)
    if unknown:
        raise InvalidArgument(f"unknown config keys {sorted(unknown)} in {path}")
    return doc


def tls_from(doc: dict[str, Any]) -> TlsFiles | None:
    """The TLS files a table names (all three or none)."""
    return tls_files(*(Path(doc[k]) if k in doc else None for k in TLS_KEYS))
