"""A network described by one TOML file: rollups, named accounts, addresses and intervals.

Parsing is strict so a typo fails at `tandem testnet up` with the field named, instead of
surfacing later as a process that will not start.
"""

from __future__ import annotations

import string
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rollup_client.protocol import codec
from rollup_client.protocol.errors import InvalidArgument

DEFAULT_CONFIG = Path(__file__).resolve().parent / "testnet.toml"
MAX_PORT = 65535
PLACEMENT_FIELDS = {"host", "port", "netns"}


@dataclass(frozen=True)
class Placement:
    """Where one process runs: the address it binds and advertises, and the network namespace
    (`ip netns`) to start it in, "" for the current one. Nothing assumes localhost."""

    host: str
    port: int = 0
    netns: str = ""

    @property
    def listen(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"host": self.host, "port": self.port}
        return {**doc, "netns": self.netns} if self.netns else doc


@dataclass(frozen=True)
class RollupConfig:
    """One rollup: its id (= namespace), the assets it holds, where its node runs."""

    id: str
    assets: tuple[str, ...]
    place: Placement


@dataclass(frozen=True)
class Account:
    """A named, funded account: balances[rollup id][asset] = amount at genesis."""

    name: str
    balances: dict[str, dict[str, int]]


@dataclass(frozen=True)
class NetworkConfig:
    """Everything `testnet up` needs to generate keys and genesis and to start the processes."""

    chain_id: str
    host: str
    sequencer: Placement
    coordinator: Placement
    heartbeat_ms: int
    snapshot_interval: int
    attestation_interval: int
    rollups: tuple[RollupConfig, ...]
    accounts: tuple[Account, ...]

    def with_rollups(self, count: int) -> NetworkConfig:
        """The first `count` rollups; more than configured are added like the first one."""
        if count < 1:
            raise InvalidArgument("--rollups must be at least 1")
        rollups = list(self.rollups[:count])
        template = self.rollups[0]
        while len(rollups) < count:
            place = Placement(template.place.host, 0, template.place.netns)
            rollups.append(RollupConfig(_extra_rollup_id(len(rollups)), template.assets, place))
        accounts = tuple(
            Account(
                a.name,
                {
                    r.id: dict(a.balances.get(r.id, a.balances.get(template.id, {})))
                    for r in rollups
                },
            )
            for a in self.accounts
        )
        return replace(self, rollups=tuple(rollups), accounts=accounts)

    def to_doc(self) -> dict[str, Any]:
        """The TOML-shaped document `parse` reads back into this config."""
        return {
            "chain_id": self.chain_id,
            "host": self.host,
            "heartbeat_ms": self.heartbeat_ms,
            "snapshot_interval": self.snapshot_interval,
            "attestation_interval": self.attestation_interval,
            "sequencer": self.sequencer.to_doc(),
            "coordinator": self.coordinator.to_doc(),
            "rollups": [
                {"id": r.id, "assets": list(r.assets), **r.place.to_doc()} for r in self.rollups
            ],
            "accounts": {a.name: a.balances for a in self.accounts},
        }

    def rollup(self, rollup_id: str) -> RollupConfig:
        for r in self.rollups:
            if r.id == rollup_id:
                return r
        raise InvalidArgument(f"rollup {rollup_id!r} is not in this network")


def _extra_rollup_id(index: int) -> str:
    letters = string.ascii_lowercase
    return f"rollup-{letters[index]}" if index < len(letters) else f"rollup-{index}"


def load(path: Path | None = None) -> NetworkConfig:
    """The network in TOML file `path` (the packaged default when None)."""
    path = DEFAULT_CONFIG if path is None else Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise InvalidArgument(f"cannot read config {path}: {exc.strerror or exc}") from exc
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidArgument(f"config {path} is not valid TOML: {exc}") from exc
    try:
        return parse(doc)
    except InvalidArgument as exc:
        raise InvalidArgument(f"config {path}: {exc}") from exc


def parse(doc: dict[str, Any]) -> NetworkConfig:
    """A validated NetworkConfig from a parsed TOML document; errors name the field."""
    _no_unknown(
        doc,
        "",
        {
            "chain_id",
            "host",
            "heartbeat_ms",
            "snapshot_interval",
            "attestation_interval",
            "sequencer",
            "coordinator",
            "rollups",
            "accounts",
        },
    )
    host = _str(doc, "host", "", "127.0.0.1")
    sequencer = _table(doc, "sequencer", "")
    coordinator = _table(doc, "coordinator", "")
    _no_unknown(sequencer, "sequencer.", PLACEMENT_FIELDS)
    _no_unknown(coordinator, "coordinator.", PLACEMENT_FIELDS)
    rollups = _rollups(doc.get("rollups"), host)
    return NetworkConfig(
        chain_id=_str(doc, "chain_id", "", "tandem-testnet"),
        host=host,
        sequencer=_placement(sequencer, "sequencer.", host),
        coordinator=_placement(coordinator, "coordinator.", host),
        heartbeat_ms=_positive(doc, "heartbeat_ms", 200),
        snapshot_interval=_positive(doc, "snapshot_interval", 1000),
        attestation_interval=_positive(doc, "attestation_interval", 100),
        rollups=rollups,
        accounts=_accounts(_table(doc, "accounts", ""), rollups),
    )


def _rollups(raw: Any, host: str) -> tuple[RollupConfig, ...]:
    if not isinstance(raw, list) or not raw:
        raise InvalidArgument("rollups: need at least one [[rollups]] table")
    seen: set[str] = set()
    out = []
    for i, item in enumerate(raw):
        where = f"rollups[{i}]."
        if not isinstance(item, dict):
            raise InvalidArgument(f"{where[:-1]}: must be a table")
        _no_unknown(item, where, {"id", "assets"} | PLACEMENT_FIELDS)
        rid = _str(item, "id", where, None)
        try:
            codec.check_namespace(rid)
        except InvalidArgument as exc:
            raise InvalidArgument(f"{where}id: {exc}") from exc
        if rid in seen:
            raise InvalidArgument(f"{where}id: {rid!r} appears twice")
        seen.add(rid)
        assets = item.get("assets")
        if (
            not isinstance(assets, list)
            or not assets
            or not all(isinstance(a, str) and a for a in assets)
        ):
            raise InvalidArgument(f"{where}assets: must be a non-empty list of asset names")
        out.append(RollupConfig(rid, tuple(assets), _placement(item, where, host)))
    return tuple(out)


def _accounts(raw: dict[str, Any], rollups: tuple[RollupConfig, ...]) -> tuple[Account, ...]:
    by_id = {r.id: r for r in rollups}
    out = []
    for name, per_rollup in raw.items():
        where = f"accounts.{name}"
        if not name.isidentifier():
            raise InvalidArgument(f"{where}: account names are letters, digits and _")
        if not isinstance(per_rollup, dict):
            raise InvalidArgument(f"{where}: must be a table of rollup = {{asset = amount}}")
        balances: dict[str, dict[str, int]] = {}
        for rid, assets in per_rollup.items():
            if rid not in by_id:
                raise InvalidArgument(f"{where}.{rid}: no rollup with that id")
            if not isinstance(assets, dict):
                raise InvalidArgument(f"{where}.{rid}: must be a table of asset = amount")
            for asset, amount in assets.items():
                if asset not in by_id[rid].assets:
                    raise InvalidArgument(f"{where}.{rid}.{asset}: {rid} has no asset {asset!r}")
                if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
                    raise InvalidArgument(f"{where}.{rid}.{asset}: must be an integer >= 0")
            balances[rid] = dict(assets)
        out.append(Account(name, balances))
    return tuple(out)


def _no_unknown(doc: dict[str, Any], where: str, known: set[str]) -> None:
    unknown = sorted(set(doc) - known)
    if unknown:
        raise InvalidArgument(f"{where}{unknown[0]}: unknown field (known: {sorted(known)})")


def _table(doc: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise InvalidArgument(f"{where}{key}: must be a table")
    return value


def _str(doc: dict[str, Any], key: str, where: str, default: str | None) -> str:
    value = doc.get(key, default)
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"{where}{key}: must be a non-empty string")
    return value


def _int(doc: dict[str, Any], key: str, where: str, default: int) -> int:
    value = doc.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidArgument(f"{where}{key}: must be an integer, not {value!r}")
    return value


def _positive(doc: dict[str, Any], key: str, default: int) -> int:
    value = _int(doc, key, "", default)
    if value <= 0:
        raise InvalidArgument(f"{key}: must be positive, not {value}")
    return value


def _placement(doc: dict[str, Any], where: str, host: str) -> Placement:
    netns = doc.get("netns", "")
    if not isinstance(netns, str):
        raise InvalidArgument(f"{where}netns: must be a network namespace name")
    return Placement(_str(doc, "host", where, host), _port(doc, where), netns)


def _port(doc: dict[str, Any], where: str) -> int:
    value = _int(doc, "port", where, 0)
    if not 0 <= value <= MAX_PORT:
        raise InvalidArgument(f"{where}port: must be 0 (any free port) to {MAX_PORT}")
    return value
