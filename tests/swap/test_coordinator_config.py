"""The coordinator's typed config: TOML file, flags on top, every mistake named."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollup_client.protocol.errors import InvalidArgument
from swap_coordinator import config


def test_the_file_gives_settings_and_flags_override_them(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text(
        '[coordinator]\nsequencer = "127.0.0.1:1"\ndata_dir = "d"\ngenesis = "g.json"\n'
        'key = "k.pem"\nworkers = 8\nmetrics_listen = "127.0.0.1:0"\n'
    )
    cfg = config.load(toml, sequencer="127.0.0.1:2", metrics_listen=None)
    assert (cfg.sequencer, cfg.data_dir, cfg.genesis, cfg.key) == (
        "127.0.0.1:2",
        Path("d"),
        Path("g.json"),
        Path("k.pem"),
    )
    assert (cfg.workers, cfg.metrics_listen, cfg.listen) == (8, "127.0.0.1:0", "127.0.0.1:7300")
    assert cfg.tls is None
    assert cfg.sequencer_tls is None


def test_tls_files_secure_both_directions(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('tls_ca = "ca.pem"\ntls_cert = "c.crt"\ntls_key = "c.key"\n')
    cfg = config.load(toml, sequencer="s:1", data_dir=tmp_path, genesis=tmp_path, key=tmp_path)
    assert cfg.tls is not None
    assert cfg.sequencer_tls == cfg.tls
    assert cfg.tls.ca == Path("ca.pem")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bogus = 1", "unknown config keys"),
        ("sequencer = ", "cannot read config"),
        ('sequencer = "s:1"', "missing --data-dir, --genesis, --key"),
    ],
)
def test_mistakes_are_named(tmp_path: Path, text: str, message: str) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text(text)
    with pytest.raises(InvalidArgument, match=message):
        config.load(toml)


def test_without_a_file_the_flags_are_required() -> None:
    with pytest.raises(InvalidArgument, match="missing --sequencer"):
        config.load(None, data_dir=Path("d"), genesis=Path("g"), key=Path("k"))
