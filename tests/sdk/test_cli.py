"""`tandem log` (in-process through typer's runner) against a real sequencer process."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from rollup_client.protocol import codec
from rollup_client.protocol.genesis import Genesis
from rollup_client.protocol.keys import SigningKey
from rollup_client.sdk.cli import EXIT_FAILED, EXIT_UNVERIFIABLE, EXIT_USAGE, app
from tests.procs import Sequencer

runner = CliRunner()


def _run(seq: Sequencer, *args: str) -> tuple[int, str]:
    genesis = str(seq.data_dir / "genesis.json")
    result = runner.invoke(
        app, list(args), env={"TANDEM_SEQUENCER": seq.target, "TANDEM_GENESIS": genesis}
    )
    return result.exit_code, result.stdout


def test_submit_then_read_it_back(shared_sequencer: Sequencer) -> None:
    key = str(shared_sequencer.data_dir / "keys" / "client.pem")
    code, out = _run(shared_sequencer, "submit", "cli", "hello", "--key", key, "--json")
    assert code == 0, out
    ack = json.loads(out)
    assert ack["id"] == codec.entry_id("cli", b"hello").hex()
    assert not ack["duplicate"]
    code, out = _run(shared_sequencer, "submit", "cli", "68656c6c6f", "--hex", "--key", key)
    assert code == 0
    assert "(already logged)" in out

    code, out = _run(shared_sequencer, "entry", ack["id"], "--json")
    assert code == 0
    assert json.loads(out)["data_hex"] == b"hello".hex()
    code, out = _run(shared_sequencer, "block", str(ack["height"]), "-n", "cli", "--json")
    block = json.loads(out)
    assert code == 0
    assert [e["id"] for e in block["entries"]] == [ack["id"]]

    code, out = _run(shared_sequencer, "tail", "-n", "cli", "--count", "3", "--json")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert [b["height"] for b in lines] == [0, 1, 2]
    code, out = _run(shared_sequencer, "status", "--json")
    assert code == 0
    assert json.loads(out)["height"] >= ack["height"]


def test_exit_codes(shared_sequencer: Sequencer, tmp_path: Path) -> None:
    assert _run(shared_sequencer, "entry", "zz")[0] == EXIT_USAGE
    assert _run(shared_sequencer, "entry", "00" * 32)[0] == EXIT_FAILED  # not found
    assert _run(shared_sequencer, "block", "1000000000")[0] == EXIT_FAILED  # out of range
    # A genesis naming another sequencer key: every answer fails verification.
    real = Genesis.load(shared_sequencer.data_dir / "genesis.json")
    other = Genesis(real.chain_id, SigningKey.from_seed(b"\x08" * 32).public, real.clients)
    other.save(tmp_path / "other.json")
    code, _ = _run(shared_sequencer, "block", "0", "--genesis", str(tmp_path / "other.json"))
    assert code == EXIT_UNVERIFIABLE
