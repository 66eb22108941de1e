"""testnet.json: what is running where, written by `up`, read by every other command.

It is the only link between a detached testnet and later CLI calls, so it records enough to
reach every process (endpoints, key files) and to stop it safely (pid and start time).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from typing import Any

from deploy.layout import Layout
from deploy.procs import Handle, alive
from rollup_client.protocol.errors import FailedPrecondition, InvalidArgument


@dataclass(frozen=True)
class ProcessRecord:
    name: str
    role: str  # sequencer | rollup | coordinator
    pid: int
    start_time: int
    listen: str
    log: str
    data_dir: str
    key: str
    argv: list[str]

    @property
    def handle(self) -> Handle:
        return Handle(self.pid, self.start_time)


@dataclass(frozen=True)
class TestnetState:
    chain_id: str
    genesis: str
    keys_dir: str
    processes: list[ProcessRecord]
    # account name -> key file
    accounts: dict[str, str]
    # Directory of the testnet's certificates when it serves mutual TLS only; "" when not.
    tls_dir: str = ""

    def process(self, name: str) -> ProcessRecord:
        for p in self.processes:
            if p.name == name:
                return p
        known = ", ".join(p.name for p in self.processes)
        raise InvalidArgument(f"no process named {name!r} in this testnet (have: {known})")

    def by_role(self, role: str) -> list[ProcessRecord]:
        return [p for p in self.processes if p.role == role]

    @property
    def sequencer(self) -> str:
        return self.by_role("sequencer")[0].listen

    @property
    def coordinator(self) -> str:
        return self.by_role("coordinator")[0].listen

    def rollups(self) -> dict[str, str]:
        """rollup id -> node endpoint."""
        return {p.name: p.listen for p in self.by_role("rollup")}

    def running(self) -> list[ProcessRecord]:
        return [p for p in self.processes if alive(p.handle)]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> TestnetState:
        procs = [ProcessRecord(**p) for p in doc["processes"]]
        # Files written before supervisor_pid was retired still carry it: a testnet started
        # by the older release must stay one that `down` and `status` can find.
        kept = {k: v for k, v in doc.items() if k != "supervisor_pid"}
        return cls(**{**kept, "processes": procs})


def save(layout: Layout, state: TestnetState) -> None:
    tmp = layout.state.with_suffix(".tmp")
    tmp.write_text(json.dumps(state.to_json(), indent=2) + "\n")
    os.replace(tmp, layout.state)


def load(layout: Layout) -> TestnetState | None:
    """The recorded testnet in `layout`, or None when none was ever started there."""
    try:
        doc = json.loads(layout.state.read_text())
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as exc:
        raise FailedPrecondition(f"cannot read {layout.state}: {exc}") from exc
    try:
        return TestnetState.from_json(doc)
    except (KeyError, TypeError) as exc:
        raise FailedPrecondition(f"{layout.state} is not a testnet state file: {exc!r}") from exc


def load_running(layout: Layout) -> TestnetState:
    """The testnet running in `layout`; a clear error when nothing is."""
    state = load(layout)
    if state is None or not state.running():
        raise FailedPrecondition(
            f"no testnet is running in {layout.root}: start one with "
            f"`tandem testnet up --dir {layout.root}` (or set TANDEM_HOME)"
        )
    return state
