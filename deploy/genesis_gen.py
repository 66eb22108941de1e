"""Keys and genesis for a network config, generated once per testnet directory.

Idempotent on purpose: `testnet up` on an existing directory reuses every key and the
genesis, so the processes resume the same chain from their data directories.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from deploy import config
from deploy.config import NetworkConfig
from deploy.layout import COORDINATOR, SEQUENCER, Layout
from rollup_client.protocol.errors import FailedPrecondition
from rollup_client.protocol.genesis import (
    SETTLEMENT_NAMESPACE,
    SWAP_NAMESPACE,
    Client,
    Genesis,
    Rollup,
)
from rollup_client.protocol.keys import SigningKey


def _key(path: Path) -> SigningKey:
    """The key at `path`, created on first use."""
    if path.exists():
        return SigningKey.load(path)
    key = SigningKey.generate()
    key.save(path)
    return key


def build_genesis(cfg: NetworkConfig, layout: Layout) -> Genesis:
    """The genesis for `cfg`, generating any key missing from the layout's keystore."""
    sequencer = _key(layout.key(SEQUENCER))
    coordinator = _key(layout.key(COORDINATOR))
    nodes = {r.id: _key(layout.node_key(r.id)) for r in cfg.rollups}
    accounts = {a.name: _key(layout.key(a.name)).public for a in cfg.accounts}
    clients = [
        Client(f"node-{rid}", key.public, frozenset({rid, SWAP_NAMESPACE, SETTLEMENT_NAMESPACE}))
        for rid, key in nodes.items()
    ]
    clients.append(Client(COORDINATOR, coordinator.public, frozenset({SWAP_NAMESPACE})))
    rollups = tuple(
        Rollup(
            r.id,
            nodes[r.id].public,
            r.assets,
            {
                accounts[a.name]: dict(a.balances[r.id])
                for a in cfg.accounts
                if a.balances.get(r.id)
            },
        )
        for r in cfg.rollups
    )
    return Genesis(cfg.chain_id, sequencer.public, tuple(clients), rollups)


def resolve(layout: Layout, config_path: Path | None, rollups: int | None) -> NetworkConfig:
    """The network to run: --config if given, else the one this directory was created with,
    else the packaged default; --rollups trims or extends its rollup list."""
    if config_path is None and layout.network.exists():
        cfg = config.parse(json.loads(layout.network.read_text()))
    else:
        cfg = config.load(config_path)
    return cfg if rollups is None else cfg.with_rollups(rollups)


def materialize(cfg: NetworkConfig, layout: Layout) -> Genesis:
    """Keys and genesis.json in `layout`: created the first time, reused (and checked) after."""
    layout.keys_dir.mkdir(parents=True, exist_ok=True)
    if layout.genesis.exists():
        existing = Genesis.load(layout.genesis)
        want = [r.id for r in cfg.rollups]
        have = [r.id for r in existing.rollups]
        if existing.chain_id != cfg.chain_id or want != have:
            raise FailedPrecondition(
                f"{layout.root} holds network {existing.chain_id!r} with rollups {have}, "
                f"not {cfg.chain_id!r} with {want}: use another --dir, or delete this one"
            )
        return existing
    genesis = build_genesis(cfg, layout)
    layout.network.write_text(json.dumps(cfg.to_doc(), indent=2) + "\n")
    tmp = layout.genesis.with_suffix(".tmp")
    genesis.save(tmp)
    os.replace(tmp, layout.genesis)
    return genesis
