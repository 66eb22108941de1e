"""`tandem verify` as a real process against a real sequencer on loopback.

The test writes the rollup's log itself (transfers, then attestations signed with the
rollup key, one honest and then one lying), so the only processes are the sequencer and
the CLI under test.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import grpc
import pytest

from rollup_client.ledger import TokenLedger
from rollup_client.node import Verifier
from rollup_client.node.verify_cli import read_log
from rollup_client.protocol import codec, tx
from rollup_client.protocol.attestation import Attestation
from rollup_client.protocol.genesis import ANY_NAMESPACE, Client, Genesis
from rollup_client.wire import sequencer_pb2 as pb
from rollup_client.wire import sequencer_pb2_grpc as pb_grpc
from tests.procs import tandem

from .helpers import SEQUENCER, key, make_genesis, rollup_key

pytestmark = pytest.mark.processes

RID = "alpha"
WRITER = key(50)
ALICE, BOB = key(1), key(2)
TIMEOUT_S = 30.0


def network_genesis() -> Genesis:
    g = make_genesis({RID: {ALICE.public: {"USD": 100}}, "beta": {}}, ["USD"])
    writer = Client("writer", WRITER.public, frozenset({ANY_NAMESPACE}))
    return Genesis(g.chain_id, g.sequencer_key, (*g.clients, writer), g.rollups, g.time_ms)


@pytest.fixture
def sequencer(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real sequencer process on 127.0.0.1:0; yields its address and the genesis path."""
    genesis = network_genesis()
    genesis.save(tmp_path / "genesis.json")
    SEQUENCER.save(tmp_path / "keys" / "sequencer.pem")
    log_path = tmp_path / "sequencer.log"
    log = log_path.open("wb")
    popen = subprocess.Popen(
        tandem(
            "sequencer",
            "run",
            "--data-dir",
            str(tmp_path),
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "",
            "--heartbeat-ms",
            "50",
        ),
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        address = ready_address(popen)
        assert address, f"sequencer not ready: {log_path.read_text(errors='replace')[-2000:]}"
        yield address, tmp_path / "genesis.json"
    finally:
        popen.kill()
        popen.communicate(timeout=10)
        log.close()


def ready_address(popen: subprocess.Popen[str]) -> str | None:
    """The `listen` address from the ready line; None if it does not come within TIMEOUT_S."""
    assert popen.stdout is not None
    deadline = time.monotonic() + TIMEOUT_S
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([popen.stdout], [], [], left)
        line = popen.stdout.readline() if readable else ""
        if not line:
            break
        with contextlib.suppress(json.JSONDecodeError):
            doc = json.loads(line)
            if isinstance(doc, dict) and "listen" in doc:
                return str(doc["listen"])
    return None


def submit(target: str, items: Sequence[tuple[str, bytes]]) -> int:
    """Submit one batch as the writer; return the height it landed at once durable."""
    ids = [codec.entry_id(ns, d) for ns, d in items]
    req = pb.SubmitBatchRequest(
        client_key=WRITER.public,
        entries=[pb.Entry(namespace=ns, data=d) for ns, d in items],
        signature=WRITER.sign(codec.batch_digest("test-chain", ids, False)),
    )
    with grpc.insecure_channel(target) as channel:
        acks = pb_grpc.SequencerServiceStub(channel).SubmitBatch(req, timeout=TIMEOUT_S).acks
    return max(a.position.height for a in acks)


def roots(target: str, genesis: Genesis) -> list[bytes]:
    """The honest state root after every block so far, by re-execution."""
    ledger, out = TokenLedger(genesis, RID), []
    for b in read_log(target, genesis, Verifier(genesis, RID, TokenLedger).namespaces(), TIMEOUT_S):
        ledger.begin_block(b.height, b.time_ms)
        for e in b.entries:
            if e.namespace in ledger.namespaces():
                ledger.apply(e)
        out.append(ledger.state_root())
    return out


def verify(
    target: str, genesis_path: Path, rollup: str, *flags: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        tandem("verify", "--rollup", rollup, *flags),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
        env={**os.environ, "TANDEM_SEQUENCER": target, "TANDEM_GENESIS": str(genesis_path)},
    )


def verify_json(target: str, genesis_path: Path, rollup: str) -> tuple[int, dict[str, object]]:
    p = verify(target, genesis_path, rollup, "--json")
    return p.returncode, json.loads(p.stdout)


def test_tandem_verify_passes_honest_roots_and_names_the_first_lie(
    sequencer: tuple[str, Path],
) -> None:
    target, genesis_path = sequencer
    genesis = Genesis.load(genesis_path)
    pay = tx.Transfer(ALICE.public, BOB.public, "USD", 7, 0, RID).sign(ALICE).encode()
    h = submit(target, [(RID, pay)])
    honest = Attestation.make(RID, h, roots(target, genesis)[h], rollup_key(RID))
    submit(target, [("settlement", honest.encode())])

    code, report = verify_json(target, genesis_path, RID)
    assert code == 0, report
    assert report["ok"] is True
    assert report["checked"] == report["matched"] == 1

    pay2 = tx.Transfer(ALICE.public, BOB.public, "USD", 1, 1, RID).sign(ALICE).encode()
    h2 = submit(target, [(RID, pay2)])
    computed = roots(target, genesis)  # the ack means block h2 is durable: it is there
    lie = Attestation.make(RID, h2, codec.entry_id("lie", computed[h2]), rollup_key(RID))
    submit(target, [("settlement", lie.encode())])

    code, report = verify_json(target, genesis_path, RID)
    assert code == 1
    assert report["ok"] is False
    assert report["first_divergent_height"] == h2
    assert report["matched"] == 1

    text = verify(target, genesis_path, RID)
    assert text.returncode == 1
    assert f"FAIL: first divergent height {h2}" in text.stdout

    code, report = verify_json(target, genesis_path, "beta")  # posted nothing: nothing diverges
    assert code == 0
    assert report["checked"] == 0


def test_tandem_verify_exit_codes_for_bad_arguments_and_no_sequencer(tmp_path: Path) -> None:
    genesis_path = tmp_path / "genesis.json"
    network_genesis().save(genesis_path)
    with socket.socket() as s:  # a loopback port with nobody listening
        s.bind(("127.0.0.1", 0))
        target = f"127.0.0.1:{s.getsockname()[1]}"
    unknown = verify(target, genesis_path, "nosuch")
    assert unknown.returncode == 2
    assert "not in the genesis" in unknown.stderr
    down = verify(target, genesis_path, RID, "--json", "--timeout", "1")
    assert down.returncode == 3
    assert json.loads(down.stdout)["ok"] is False
