"""The network's genesis: chain id, sequencer key, client keys with their namespaces, rollups.

One JSON file, written once by `tandem sequencer init` or the testnet deployer and read by
every process. Everything a replay needs besides the log itself is here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rollup_client.protocol import codec
from rollup_client.protocol.errors import InvalidArgument

SWAP_NAMESPACE = "swap"
SETTLEMENT_NAMESPACE = "settlement"
ANY_NAMESPACE = "*"


@dataclass(frozen=True)
class Client:
    """A key allowed to submit, and the namespaces it may write."""

    name: str
    key: bytes
    namespaces: frozenset[str]

    def may_write(self, namespace: str) -> bool:
        """True when this client may write `namespace` ("*" in genesis allows any)."""
        return namespace in self.namespaces or ANY_NAMESPACE in self.namespaces


@dataclass(frozen=True)
class Rollup:
    """A rollup: its namespace (= id), its node key, its assets and genesis balances.

    `balances` maps account (raw public key) to asset to amount.
    """

    id: str
    key: bytes
    assets: tuple[str, ...] = ()
    balances: dict[bytes, dict[str, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class Genesis:
    chain_id: str
    sequencer_key: bytes
    clients: tuple[Client, ...]
    rollups: tuple[Rollup, ...] = ()
    time_ms: int = 0

    def client(self, key: bytes) -> Client | None:
        """The registered client with raw public key `key`, if any."""
        return self._by_key().get(key)

    def _by_key(self) -> dict[bytes, Client]:
        cache: dict[bytes, Client] | None = self.__dict__.get("_clients_by_key")
        if cache is None:
            cache = {c.key: c for c in self.clients}
            object.__setattr__(self, "_clients_by_key", cache)
        return cache

    def rollup(self, rollup_id: str) -> Rollup:
        for r in self.rollups:
            if r.id == rollup_id:
                return r
        raise InvalidArgument(f"rollup {rollup_id!r} is not in the genesis")

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "time_ms": self.time_ms,
            "sequencer_key": self.sequencer_key.hex(),
            "clients": [
                {"name": c.name, "key": c.key.hex(), "namespaces": sorted(c.namespaces)}
                for c in self.clients
            ],
            "rollups": [
                {
                    "id": r.id,
                    "key": r.key.hex(),
                    "assets": list(r.assets),
                    "balances": {a.hex(): dict(b) for a, b in r.balances.items()},
                }
                for r in self.rollups
            ],
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Genesis:
        try:
            clients = tuple(
                Client(
                    c["name"],
                    _key(c["key"]),
                    frozenset(_namespace_rule(n) for n in c["namespaces"]),
                )
                for c in doc["clients"]
            )
            rollups = tuple(
                Rollup(
                    codec.check_namespace(r["id"]),
                    _key(r["key"]),
                    tuple(r.get("assets", ())),
                    {
                        _key(a): {k: int(v) for k, v in b.items()}
                        for a, b in r.get("balances", {}).items()
                    },
                )
                for r in doc.get("rollups", ())
            )
            return cls(
                str(doc["chain_id"]),
                _key(doc["sequencer_key"]),
                clients,
                rollups,
                int(doc.get("time_ms", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgument(f"malformed genesis: {exc!r}") from exc

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> Genesis:
        try:
            doc = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InvalidArgument(f"cannot read genesis {path}: {exc}") from exc
        return cls.from_json(doc)


def _key(hexkey: str) -> bytes:
    raw = bytes.fromhex(hexkey)
    if len(raw) != 32:
        raise ValueError(f"key {hexkey!r} is not 32 bytes of hex")
    return raw


def _namespace_rule(ns: str) -> str:
    return ns if ns == ANY_NAMESPACE else codec.check_namespace(ns)
