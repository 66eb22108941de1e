"""Network config parsing: the packaged default, --rollups, and errors that name the field."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from deploy import config
from rollup_client.protocol.errors import InvalidArgument


def _doc(**changes: Any) -> dict[str, Any]:
    doc = tomllib.loads(config.DEFAULT_CONFIG.read_text())
    doc.update(changes)
    return doc


def test_default_config_loads() -> None:
    cfg = config.load()
    assert [r.id for r in cfg.rollups] == ["rollup-a", "rollup-b", "rollup-c"]
    assert {a.name for a in cfg.accounts} >= {"alice", "bob", "carol"}
    assert cfg.host == "127.0.0.1"
    assert cfg.sequencer == config.Placement("127.0.0.1", 0, "")
    assert cfg.sequencer.listen == "127.0.0.1:0"
    assert cfg.heartbeat_ms > 0


def test_round_trip_through_doc() -> None:
    cfg = config.load().with_rollups(2)
    assert config.parse(cfg.to_doc()) == cfg


def test_placements_default_to_the_network_host() -> None:
    cfg = config.parse(
        _doc(
            host="10.0.0.1",
            sequencer={"host": "10.0.0.2", "port": 7000, "netns": "seq"},
            coordinator={"host": "::1"},
        )
    )
    assert cfg.sequencer == config.Placement("10.0.0.2", 7000, "seq")
    assert cfg.coordinator.listen == "[::1]:0"
    assert cfg.rollups[0].place == config.Placement("10.0.0.1", 0, "")
    assert config.parse(cfg.to_doc()) == cfg


def test_with_rollups_trims_and_extends() -> None:
    cfg = config.load()
    assert [r.id for r in cfg.with_rollups(1).rollups] == ["rollup-a"]
    five = cfg.with_rollups(5)
    assert [r.id for r in five.rollups][3:] == ["rollup-d", "rollup-e"]
    alice = next(a for a in five.accounts if a.name == "alice")
    assert alice.balances["rollup-e"] == alice.balances["rollup-a"]
    with pytest.raises(InvalidArgument, match="--rollups"):
        cfg.with_rollups(0)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"chain_id": 5}, "chain_id"),
        ({"heartbeat_ms": 0}, "heartbeat_ms"),
        ({"heartbeat_ms": "fast"}, "heartbeat_ms"),
        ({"snapshot_interval": -1}, "snapshot_interval"),
        ({"colour": "blue"}, "colour"),
        ({"sequencer": {"port": 70000}}, "sequencer.port"),
        ({"sequencer": {"prot": 1}}, "sequencer.prot"),
        ({"sequencer": {"netns": 3}}, "sequencer.netns"),
        ({"coordinator": {"host": ""}}, "coordinator.host"),
        ({"rollups": []}, "rollups"),
        ({"rollups": [{"id": "Bad Name", "assets": ["USD"]}]}, "rollups[0].id"),
        ({"rollups": [{"id": "r", "assets": []}]}, "rollups[0].assets"),
        (
            {"rollups": [{"id": "r", "assets": ["A"]}, {"id": "r", "assets": ["A"]}]},
            "rollups[1].id",
        ),
        ({"accounts": {"alice": {"rollup-z": {"USD": 1}}}}, "accounts.alice.rollup-z"),
        ({"accounts": {"alice": {"rollup-a": {"XYZ": 1}}}}, "accounts.alice.rollup-a.XYZ"),
        ({"accounts": {"alice": {"rollup-a": {"USD": -1}}}}, "accounts.alice.rollup-a.USD"),
        ({"accounts": {"alice": {"rollup-a": {"USD": 1.5}}}}, "accounts.alice.rollup-a.USD"),
        ({"accounts": {"al ice": {}}}, "accounts.al ice"),
    ],
)
def test_errors_name_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        config.parse(_doc(**changes))
    assert str(info.value).startswith(field), str(info.value)


def test_load_reports_file_and_toml_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="cannot read config"):
        config.load(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("chain_id = \n")
    with pytest.raises(InvalidArgument, match="not valid TOML"):
        config.load(bad)
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('chain_id = "x"\nheartbeat_ms = -5\n[[rollups]]\nid = "a"\nassets = ["U"]\n')
    with pytest.raises(InvalidArgument, match=r"wrong.toml: heartbeat_ms"):
        config.load(wrong)
