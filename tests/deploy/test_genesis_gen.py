"""Keys and genesis for a testnet directory: the right clients, balances, and idempotence."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy import config, genesis_gen
from deploy.layout import Layout
from rollup_client.protocol.errors import FailedPrecondition
from rollup_client.protocol.genesis import Genesis
from rollup_client.protocol.keys import SigningKey


def test_genesis_has_every_key_and_balance(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    cfg = config.load()
    genesis = genesis_gen.materialize(cfg, layout)
    assert Genesis.load(layout.genesis) == genesis
    assert genesis.chain_id == cfg.chain_id
    assert genesis.sequencer_key == SigningKey.load(layout.key("sequencer")).public
    clients = {c.name: c for c in genesis.clients}
    for r in cfg.rollups:
        node = clients[f"node-{r.id}"]
        assert node.key == SigningKey.load(layout.node_key(r.id)).public
        assert node.namespaces == {r.id, "swap", "settlement"}
        assert genesis.rollup(r.id).key == node.key
        assert genesis.rollup(r.id).assets == r.assets
    assert clients["coordinator"].namespaces == {"swap"}
    alice = SigningKey.load(layout.key("alice")).public
    assert genesis.rollup("rollup-a").balances[alice] == {"USD": 1000, "EUR": 100}
    assert oct(layout.key("alice").stat().st_mode & 0o777) == "0o600"


def test_materialize_again_reuses_keys_and_genesis(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    cfg = config.load()
    first = genesis_gen.materialize(cfg, layout)
    pem = layout.key("bob").read_bytes()
    assert genesis_gen.materialize(cfg, layout) == first
    assert layout.key("bob").read_bytes() == pem


def test_resolve_prefers_the_directory_network(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    cfg = genesis_gen.resolve(layout, None, 2)
    genesis_gen.materialize(cfg, layout)
    assert genesis_gen.resolve(layout, None, None) == cfg


def test_other_network_in_same_dir_is_refused(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    genesis_gen.materialize(config.load().with_rollups(2), layout)
    with pytest.raises(FailedPrecondition, match="use another --dir"):
        genesis_gen.materialize(config.load(), layout)
