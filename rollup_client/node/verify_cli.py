"""`tandem verify`: re-execute a rollup from the sequencer's log and check its attestations.

Exit codes: 0 every attestation matched re-execution; 1 at least one diverged (the first
divergent height is reported); 2 bad arguments (unreadable genesis, unknown rollup);
3 the log could not be read or failed verification (signature, proofs, hash links).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Annotated, cast

import typer
from rich.console import Console

from rollup_client.ledger import TokenLedger
from rollup_client.node.verify import Report, Verifier
from rollup_client.protocol.block import VerifiedBlock
from rollup_client.protocol.errors import InvalidArgument, TandemError
from rollup_client.protocol.genesis import Genesis
from rollup_client.sdk import SequencerClient

EXIT_OK, EXIT_DIVERGED, EXIT_USAGE, EXIT_UNVERIFIABLE = 0, 1, 2, 3

app = typer.Typer(help="Re-execute a rollup from the log and check every attestation.")


def read_log(
    target: str, genesis: Genesis, namespaces: list[str], timeout_s: float
) -> Iterator[VerifiedBlock]:
    """Verified, gap-free blocks 0..head (the head as of the start), filtered to `namespaces`.

    The SDK pins the genesis chain id and sequencer key and checks every block and its
    hash link; each call waits at most `timeout_s`, and a dropped stream is resumed
    within the SDK's reconnect window, else Unavailable.
    """
    with SequencerClient(
        target,
        chain_id=genesis.chain_id,
        sequencer_key=genesis.sequencer_key,
        timeout=timeout_s,
    ) as client:
        head = client.status().height
        # The SDK's subscription is a generator: closing it ends the stream and its watchdog.
        stream = cast(Generator[VerifiedBlock, None, None], client.subscribe(namespaces, 0))
        with contextlib.closing(stream) as blocks:
            for b in blocks:
                yield b
                if b.height >= head:
                    return


def _summary(report: Report) -> str:
    lines = [
        f"rollup {report.rollup}: re-executed {report.blocks} blocks (0..{report.head}), "
        f"state root {report.state_root}",
        f"attestations: {report.checked} checked, {report.matched} matched, "
        f"{len(report.divergences)} diverged, {len(report.ignored)} ignored",
    ]
    lines += [f"  ignored {why}" for why in report.ignored]
    for d in report.divergences:
        lines.append(
            f"  DIVERGED at height {d.height} (attested in block {d.at_height} entry "
            f"{d.at_index}): {d.reason}; attested {d.attested}, computed {d.computed or '-'}"
        )
    if report.ok:
        lines.append("OK: every attestation matches re-execution")
    else:
        lines.append(f"FAIL: first divergent height {report.first_divergent_height}")
    return "\n".join(lines)


@app.callback(invoke_without_command=True)
def verify(
    rollup: Annotated[str, typer.Option("--rollup", help="Rollup id (its namespace).")],
    sequencer: Annotated[
        str, typer.Option("--sequencer", envvar="TANDEM_SEQUENCER", help="Sequencer HOST:PORT.")
    ],
    genesis_path: Annotated[
        Path, typer.Option("--genesis", envvar="TANDEM_GENESIS", help="The network's genesis.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for any one answer from the sequencer.")
    ] = 30.0,
) -> None:
    """Re-execute ROLLUP from the log alone and check every attestation it posted."""
    err = Console(stderr=True)
    try:
        genesis = Genesis.load(genesis_path)
        verifier = Verifier(genesis, rollup, TokenLedger)
    except InvalidArgument as exc:
        err.print(f"error: {exc}")
        raise typer.Exit(EXIT_USAGE) from exc
    try:
        with err.status(f"re-executing {rollup}") as status:
            for b in read_log(sequencer, genesis, verifier.namespaces(), timeout):
                verifier.feed(b)
                if b.height % 100 == 0:
                    status.update(f"re-executing {rollup}: block {b.height}")
    except TandemError as exc:
        if as_json:
            print(json.dumps({"ok": False, "error": str(exc), "rollup": rollup}))
        err.print(f"error: cannot verify {rollup}: {exc}")
        raise typer.Exit(EXIT_UNVERIFIABLE) from exc
    report = verifier.report
    if as_json:
        print(json.dumps(report.to_json(), sort_keys=True))
    else:
        print(_summary(report))
    sys.stdout.flush()
    raise typer.Exit(EXIT_OK if report.ok else EXIT_DIVERGED)
