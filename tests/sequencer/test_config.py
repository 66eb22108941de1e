"""Config: TOML with flag overrides, and clear errors for what cannot work."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollup_client.protocol.errors import InvalidArgument
from sequencer.config import Config, Limits, load, split_hostport


def test_toml_then_flags(tmp_path: Path) -> None:
    f = tmp_path / "seq.toml"
    f.write_text(
        'listen = "127.0.0.1:7000"\nheartbeat_ms = 250\ngenesis = "/g.json"\n'
        "[limits]\nmax_batch_entries = 10\n"
    )
    cfg = load(f, tmp_path, heartbeat_ms=None, listen="127.0.0.1:0")
    assert cfg.listen == "127.0.0.1:0"
    assert cfg.heartbeat_ms == 250
    assert cfg.limits == Limits(max_batch_entries=10)
    assert cfg.genesis_path == Path("/g.json")
    assert cfg.key_path == tmp_path / "keys" / "sequencer.pem"


def test_a_sequencer_table_is_accepted(tmp_path: Path) -> None:
    f = tmp_path / "net.toml"
    f.write_text("[sequencer]\nheartbeat_ms = 40\n")
    assert load(f, tmp_path).heartbeat_ms == 40


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("heartbeat_ms = 0", "heartbeat_ms"),
        ("bogus = 1", "unknown config keys"),
        ("[limits]\nnope = 1", "unknown"),
        ("max_block_entries = 5", "max_block_entries"),
        ("heartbeat_ms = ", "cannot read config"),
    ],
)
def test_bad_config_is_refused_clearly(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(InvalidArgument, match=message):
        load(f, tmp_path)


def test_missing_config_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="cannot read config"):
        load(tmp_path / "absent.toml", tmp_path)


def test_host_port() -> None:
    assert split_hostport("127.0.0.1:0") == ("127.0.0.1", 0)
    assert split_hostport("[::1]:9") == ("::1", 9)
    with pytest.raises(InvalidArgument):
        split_hostport("localhost")
    with pytest.raises(InvalidArgument):
        Config(data_dir=Path("."), limits=Limits(max_batch_bytes=10, max_message_bytes=10))
