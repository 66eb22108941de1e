"""Several hosts: every process in its own network namespace with its own address.

The testnet is driven from a client namespace of its own, so every connection (rollup to
sequencer, coordinator to sequencer, CLI to each) crosses a link between "hosts": nothing
may assume localhost. Skipped, with the reason, where namespaces cannot be created.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deploy import state
from deploy.layout import Layout
from tests.deploy import netns_lab
from tests.deploy.cli_helpers import CLI_TIMEOUT_S, processes_under

REASON = netns_lab.unavailable_reason()
pytestmark = [pytest.mark.processes, pytest.mark.skipif(REASON is not None, reason=str(REASON))]

NAMES = ["client", "sequencer", "rollup-a", "rollup-b", "coordinator"]


def _config(hosts: dict[str, netns_lab.Host]) -> str:
    def place(name: str) -> str:
        return f'host = "{hosts[name].address}"\nnetns = "{hosts[name].netns}"\n'

    rollups = "".join(
        f'[[rollups]]\nid = "{r}"\nassets = ["USD", "EUR"]\n{place(r)}'
        for r in ("rollup-a", "rollup-b")
    )
    return (
        'chain_id = "netns"\n'
        f"[sequencer]\n{place('sequencer')}[coordinator]\n{place('coordinator')}{rollups}"
        "[accounts.alice]\nrollup-a = { USD = 100 }\n"
        "[accounts.bob]\nrollup-b = { EUR = 100 }\n"
    )


def _in(host: netns_lab.Host, *args: str) -> subprocess.CompletedProcess[str]:
    """`tandem ARGS` run inside `host`'s namespace; fails the test unless it exits 0."""
    argv = ["ip", "netns", "exec", host.netns, sys.executable, "-m", "deploy", *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
    assert done.returncode == 0, f"tandem {' '.join(args)} -> {done.returncode}\n{done.stderr}"
    return done


def test_swap_across_namespaces(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "net")
    with netns_lab.lab(NAMES) as hosts:
        cfg = tmp_path / "netns.toml"
        cfg.write_text(_config(hosts))
        client = hosts["client"]
        try:
            up = _in(
                client,
                "testnet",
                "up",
                "--dir",
                str(layout.root),
                "--config",
                str(cfg),
                "--detach",
                "--json",
            )
            testnet = state.TestnetState.from_json(json.loads(up.stdout))
            for p in testnet.processes:
                assert p.listen.startswith(hosts[p.name].address + ":"), p
            swapped = _in(
                client,
                "swap",
                "run",
                "--leg",
                "rollup-a:alice:bob:10:USD",
                "--leg",
                "rollup-b:bob:alice:5:EUR",
                "--timeout",
                "10",
                "--coordinator",
                testnet.coordinator,
                "--keys",
                testnet.keys_dir,
                "--json",
            )
            swap_id = json.loads(swapped.stdout)["swap_id"]
            assert json.loads(swapped.stdout)["state"] == "committed"
            rollups = [f"--rollup={r}={addr}" for r, addr in testnet.rollups().items()]
            audit = _in(
                client,
                "swap",
                "audit",
                swap_id,
                "--sequencer",
                testnet.sequencer,
                "--genesis",
                testnet.genesis,
                *rollups,
                "--json",
            )
            assert json.loads(audit.stdout)["outcome"] == "committed"
            _in(client, "testnet", "down", "--dir", str(layout.root))
        finally:
            leftover = state.load(layout)
            if leftover is not None and leftover.running():
                subprocess.run(
                    [sys.executable, "-m", "deploy", "testnet", "down", "--dir", str(layout.root)],
                    capture_output=True,
                    timeout=CLI_TIMEOUT_S,
                )
    assert processes_under(layout.root) == []
