"""Where a testnet keeps its files: one directory holds keys, genesis, data, logs and state.

Every `tandem testnet` command finds this directory from --dir or TANDEM_HOME, so the
paths are computed in one place.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SEQUENCER = "sequencer"
COORDINATOR = "coordinator"


def default_home() -> Path:
    """TANDEM_HOME, or ~/.tandem/testnet."""
    env = os.environ.get("TANDEM_HOME")
    return Path(env) if env else Path.home() / ".tandem" / "testnet"


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def keys_dir(self) -> Path:
        """The keystore: every process key and every named account's key, NAME.pem."""
        return self.root / "keys"

    @property
    def genesis(self) -> Path:
        return self.root / "genesis.json"

    @property
    def network(self) -> Path:
        """The effective network config this directory was created with, so `up` can resume."""
        return self.root / "network.json"

    @property
    def state(self) -> Path:
        return self.root / "testnet.json"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    def key(self, name: str) -> Path:
        return self.keys_dir / f"{name}.pem"

    def node_key(self, rollup_id: str) -> Path:
        """A rollup node's key; prefixed so it never collides with an account name."""
        return self.key(f"node-{rollup_id}")

    def data_dir(self, process: str) -> Path:
        return self.root / "data" / process

    def log(self, process: str) -> Path:
        return self.logs_dir / f"{process}.log"
