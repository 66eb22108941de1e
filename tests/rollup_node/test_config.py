"""The node's typed config: a TOML file, flags on top, every mistake a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollup_client.node.config import load
from rollup_client.protocol.errors import InvalidArgument
from rollup_client.rpc import TlsFiles

BASE = """
rollup_id = "alpha"
sequencer = "127.0.0.1:7000"
data_dir = "/var/alpha"
genesis = "/etc/genesis.json"
key = "/etc/alpha.pem"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(text)
    return path


def test_a_file_gives_every_setting_and_flags_override_it(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "snapshot_every = 7\nvote_linger_ms = 0\nlisten = '0.0.0.0:9'\n")
    cfg = load(path, listen="127.0.0.1:0", attest_every=None)
    assert (cfg.rollup_id, cfg.sequencer, cfg.data_dir) == (
        "alpha",
        "127.0.0.1:7000",
        Path("/var/alpha"),
    )
    assert (cfg.genesis, cfg.key) == (Path("/etc/genesis.json"), Path("/etc/alpha.pem"))
    assert (cfg.snapshot_every, cfg.vote_linger_ms, cfg.listen) == (7, 0, "127.0.0.1:0")
    assert cfg.attest_every == 10
    assert cfg.tls is None


def test_flags_alone_need_no_file(tmp_path: Path) -> None:
    cfg = load(
        None, rollup_id="beta", sequencer="s:1", data_dir=tmp_path, genesis=tmp_path, key=tmp_path
    )
    assert cfg.rollup_id == "beta"
    assert cfg.db_path == tmp_path / "rollup.sqlite"


def test_a_rollup_table_and_tls_files_serve_both_ends(tmp_path: Path) -> None:
    tls = 'tls_ca = "ca.pem"\ntls_cert = "n.pem"\ntls_key = "n.key"\n'
    cfg = load(write(tmp_path, "[rollup]\n" + BASE + tls))
    assert cfg.tls == cfg.sequencer_tls == TlsFiles(Path("ca.pem"), Path("n.pem"), Path("n.key"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BASE + "colour = 'red'\n", r"unknown config keys \['colour'\]"),
        (BASE.replace('rollup_id = "alpha"', ""), r"missing rollup_id \(--id\)"),
        (BASE + "snapshot_every = 0\n", "snapshot_every must be positive"),
        (BASE + "snapshot_every = 'often'\n", "bad value in config"),
        (BASE + "tls_ca = 'ca.pem'\n", "TLS needs all three"),
        ("rollup_id = ", "cannot read config"),
    ],
)
def test_mistakes_are_invalid_argument(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        load(write(tmp_path, text))
