"""Clear errors from `tandem testnet`: port in use, malformed config, a process that dies.

Each failure must leave nothing running: whatever was started is stopped before the CLI exits.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from deploy import config, genesis_gen
from deploy.layout import Layout
from tests.deploy.cli_helpers import processes_under, tandem

pytestmark = pytest.mark.processes


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "net.toml"
    path.write_text(text)
    return path


MINIMAL = """
chain_id = "errnet"
[sequencer]
port = {port}
[[rollups]]
id = "rollup-a"
assets = ["USD"]
[accounts.alice]
rollup-a = {{ USD = 5 }}
"""


def test_port_in_use_is_named_and_nothing_starts(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cfg = _config(tmp_path, MINIMAL.format(port=port))
        done = tandem(
            "testnet",
            "up",
            "--dir",
            str(tmp_path / "net"),
            "--config",
            str(cfg),
            "--detach",
            check=False,
        )
    assert done.returncode == 1, done.stderr
    assert f"port 127.0.0.1:{port} (sequencer.port) is already in use" in done.stderr, done.stderr
    assert not Layout(tmp_path / "net").state.exists()


def test_malformed_config_names_the_field(tmp_path: Path) -> None:
    cfg = _config(tmp_path, MINIMAL.format(port=0).replace('assets = ["USD"]', "assets = 3"))
    done = tandem(
        "testnet", "up", "--dir", str(tmp_path / "net"), "--config", str(cfg), check=False
    )
    assert done.returncode == 1
    assert "rollups[0].assets" in done.stderr
    assert "Traceback" not in done.stderr

    broken = _config(tmp_path, "chain_id = [\n")
    done = tandem(
        "testnet", "up", "--dir", str(tmp_path / "net"), "--config", str(broken), check=False
    )
    assert done.returncode == 1
    assert "not valid TOML" in done.stderr


def test_process_that_exits_early_shows_its_log_and_stops_the_rest(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "net")
    cfg = _config(tmp_path, MINIMAL.format(port=0))
    # Keys and genesis as `up` makes them, then the rollup node's key is corrupted on disk.
    genesis_gen.materialize(config.load(cfg), layout)
    layout.node_key("rollup-a").write_text("not a key\n")

    done = tandem("testnet", "up", "--dir", str(layout.root), "--detach", check=False)
    assert done.returncode == 1, done.stderr
    assert "rollup-a exited with code" in done.stderr, done.stderr
    assert "not a PKCS8 PEM private key" in done.stderr
    # The sequencer and coordinator started before it are gone again; nothing was recorded.
    assert not layout.state.exists()
    assert processes_under(layout.root) == []
