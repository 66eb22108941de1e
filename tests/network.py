"""A network of real processes on loopback: sequencer, rollup nodes and coordinators.

    net = write_net(tmp_path, genesis, users=("alice",), servers=("sequencer", "alpha"))
    start_sequencer(net, procs)                       # sets net.sequencer
    listen = spawn_node(net, procs, "alpha").ready()["listen"]

Each folder's conftest chooses the genesis; this module writes it with the key files and
starts `tandem ... run` processes as `tests.procs.Proc`s appended to a list that the
`procs` fixture (or `tests.procs.ended`) ends at teardown. Servers bind port 0, and every
wait is on a real condition (a ready line, a height) with a bounded deadline.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from rollup_client.protocol.genesis import Genesis
from rollup_client.sdk import RollupClient
from tests.keys import key
from tests.procs import Proc, tandem

HEARTBEAT_MS = 50
T = TypeVar("T")


@dataclass
class Net:
    """Genesis and key files of a network, and the endpoints of what runs it."""

    dir: Path
    genesis: Genesis
    genesis_path: Path
    keystore: Path
    """The users' keys, where the CLI finds them by name (TANDEM_KEYS)."""
    key_paths: dict[str, Path]
    """The PEM file of every user's and server's key, by name."""
    sequencer: str = ""
    coordinator: str = ""
    nodes: dict[str, str] = field(default_factory=dict)
    node_procs: dict[str, Proc] = field(default_factory=dict)
    metrics: dict[str, str] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)
    """Processes that live as long as the network (a module-scoped one); others go in `procs`."""

    def env(self) -> dict[str, str]:
        return {**os.environ, "TANDEM_KEYS": str(self.keystore), "NO_COLOR": "1"}


def write_net(root: Path, genesis: Genesis, *, users: Iterable[str], servers: Iterable[str]) -> Net:
    """Save `genesis` and `key(name)` of every user (in the keystore) and server (beside it)."""
    keystore, server_keys = root / "keystore", root / "nodekeys"
    paths: dict[str, Path] = {}
    for folder, names in ((keystore, users), (server_keys, servers)):
        for name in names:
            paths[name] = folder / f"{name}.pem"
            key(name).save(paths[name])
    genesis_path = root / "genesis.json"
    genesis.save(genesis_path)
    return Net(root, genesis, genesis_path, keystore, paths)


def _start(net: Net, procs: list[Proc], name: str, *args: str) -> Proc:
    p = Proc(tandem(*args), net.dir / f"{name}.err")
    procs.append(p)
    return p


def start_sequencer(
    net: Net, procs: list[Proc], *extra: str, heartbeat_ms: int = HEARTBEAT_MS
) -> str:
    """Run `tandem sequencer run` with `extra` flags until ready; its HOST:PORT, also kept
    in `net.sequencer`."""
    p = _start(
        net,
        procs,
        "sequencer",
        "sequencer",
        "run",
        "--data-dir",
        str(net.dir / "sequencer"),
        "--genesis",
        str(net.genesis_path),
        "--key",
        str(net.key_paths["sequencer"]),
        "--heartbeat-ms",
        str(heartbeat_ms),
        *extra,
    )
    net.sequencer = p.ready()["listen"]
    return net.sequencer


def node_argv(net: Net, rollup: str, *extra: str, name: str = "") -> list[str]:
    """argv of `tandem rollup run` for `rollup` on `net.sequencer`, its data dir `name`
    (default the rollup's) under the network's."""
    return tandem(
        "rollup",
        "run",
        "--id",
        rollup,
        "--sequencer",
        net.sequencer,
        "--data-dir",
        str(net.dir / (name or rollup)),
        "--genesis",
        str(net.genesis_path),
        "--key",
        str(net.key_paths[rollup]),
        *extra,
    )


def spawn_node(net: Net, procs: list[Proc], rollup: str, *extra: str, name: str = "") -> Proc:
    """Start `node_argv(...)`; returns at once, so several nodes start side by side (then
    `.ready()`)."""
    p = Proc(node_argv(net, rollup, *extra, name=name), net.dir / f"{name or rollup}.err")
    procs.append(p)
    return p


def start_coordinator(
    net: Net, procs: list[Proc], name: str = "coord", *extra: str, signer: str = "coordinator"
) -> tuple[Proc, str]:
    """Run `tandem coordinator run` (data dir `name`, the key of `signer`) until ready; the
    process and its HOST:PORT."""
    p = _start(
        net,
        procs,
        name,
        "coordinator",
        "run",
        "--sequencer",
        net.sequencer,
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        str(net.dir / name),
        "--genesis",
        str(net.genesis_path),
        "--key",
        str(net.key_paths[signer]),
        *extra,
    )
    ready = p.ready()
    if ready.get("metrics"):
        net.metrics[name] = ready["metrics"]
    return p, ready["listen"]


def until(what: str, probe: Callable[[], T | None], timeout: float = 20.0) -> T:
    """Poll `probe` every heartbeat until it returns a value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        if got is not None:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(HEARTBEAT_MS / 1000)


def wait_height(client: RollupClient, height: int, timeout: float = 20.0) -> int:
    """Wait until the node has applied `height`; the height it reports then."""

    def reached() -> int | None:
        h = client.status().height
        return h if h >= height else None

    return until(f"the node to apply height {height}", reached, timeout)


def cli(
    net: Net, *args: str, timeout: float = 60.0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `tandem ARGS` with the network's keystore (TANDEM_KEYS) and `env`; once it is done."""
    return subprocess.run(
        tandem(*args),
        env={**net.env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
