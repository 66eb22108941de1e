"""A real sequencer process on loopback for the SDK tests, initialised by its own CLI."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from rollup_client.client import SequencerClient
from rollup_client.client_trio import TrioSequencerClient
from rollup_client.genesis import Genesis
from rollup_client.keys import SigningKey
from tests import procs

HEARTBEAT_MS = 50
CHAIN_ID = "sdk-test"


class Sequencer:
    """`tandem sequencer run` on a tmp data dir; `crash_restart` kills -9 and restarts it."""

    def __init__(self, data_dir: Path, stack: ExitStack) -> None:
        self.data_dir = data_dir
        self.genesis = Genesis.load(data_dir / "genesis.json")
        self.key = SigningKey.load(data_dir / "keys" / "client.pem")
        self._stack = stack
        self.proc = self._start("127.0.0.1:0")
        self.target = self.proc.ready["listen"]

    def _start(self, listen: str) -> procs.Running:
        argv = procs.tandem(
            "sequencer",
            "run",
            "--data-dir",
            str(self.data_dir),
            "--listen",
            listen,
            "--heartbeat-ms",
            str(HEARTBEAT_MS),
            "--metrics-listen",
            "",
        )
        return self._stack.enter_context(procs.started(argv))

    def crash_restart(self) -> None:
        """kill -9, then serve the same data dir on the same address."""
        self.proc.kill()
        self.proc = self._start(self.target)
        assert self.proc.ready["listen"] == self.target

    def client(self, **kw: float) -> SequencerClient:
        """A sync client pinned to the genesis (chain id and sequencer key)."""
        return SequencerClient(
            self.target,
            self.key,
            chain_id=self.genesis.chain_id,
            sequencer_key=self.genesis.sequencer_key,
            **kw,
        )

    def trio_client(self, **kw: float) -> TrioSequencerClient:
        return TrioSequencerClient(
            self.target,
            self.key,
            chain_id=self.genesis.chain_id,
            sequencer_key=self.genesis.sequencer_key,
            **kw,
        )


def init_data_dir(data_dir: Path) -> None:
    subprocess.run(
        procs.tandem("sequencer", "init", "--data-dir", str(data_dir), "--chain-id", CHAIN_ID),
        check=True,
        capture_output=True,
        timeout=30,
    )


@contextmanager
def running_sequencer(data_dir: Path) -> Iterator[Sequencer]:
    init_data_dir(data_dir)
    with ExitStack() as stack:
        yield Sequencer(data_dir, stack)


@pytest.fixture
def sequencer(tmp_path: Path) -> Iterator[Sequencer]:
    """A sequencer of the test's own (for tests that crash or load it)."""
    with running_sequencer(tmp_path / "seq") as seq:
        yield seq


@pytest.fixture(scope="module")
def shared_sequencer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sequencer]:
    """One sequencer for a module's tests; each test writes its own namespaces."""
    with running_sequencer(tmp_path_factory.mktemp("seq")) as seq:
        yield seq
