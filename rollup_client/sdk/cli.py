"""`tandem log`: read and write the sequencer's log from a shell, through the verifying SDK.

Everything printed has been checked (signatures, proofs, hash links) by `SequencerClient`.
With `--genesis` the chain id and sequencer key are pinned to it; without, they are
trusted on first use. Exit codes: 0 done; 1 the sequencer refused or could not be reached;
2 bad arguments; 3 what the sequencer sent failed verification.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from rollup_client.protocol.block import LogEntry, VerifiedBlock
from rollup_client.protocol.errors import InvalidArgument, TandemError, VerificationError
from rollup_client.protocol.genesis import Genesis
from rollup_client.protocol.keys import SigningKey
from rollup_client.sdk.client import SequencerClient
from rollup_client.sdk.core import DEFAULT_TIMEOUT_S, Ack, Status

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNVERIFIABLE = 0, 1, 2, 3

app = typer.Typer(help="Read and write the sequencer's log, verified.", no_args_is_help=True)

Target = Annotated[
    str, typer.Option("--sequencer", envvar="TANDEM_SEQUENCER", help="Sequencer HOST:PORT")
]
GenesisPath = Annotated[
    Path | None,
    typer.Option(
        "--genesis", envvar="TANDEM_GENESIS", help="Pin chain id and key (else trust on first use)"
    ),
]
Timeout = Annotated[
    float, typer.Option(envvar="TANDEM_TIMEOUT", help="Seconds allowed for each call")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON on stdout")]


@contextmanager
def _client(
    target: str, genesis: Path | None, timeout: float, key: Path | None = None
) -> Iterator[SequencerClient]:
    """A client, with every library error turned into a message and an exit code."""
    try:
        pinned = Genesis.load(genesis) if genesis is not None else None
        signer = SigningKey.load(key) if key is not None else None
        with SequencerClient(
            target,
            signer,
            chain_id=pinned.chain_id if pinned else None,
            sequencer_key=pinned.sequencer_key if pinned else None,
            timeout=timeout,
        ) as client:
            yield client
    except VerificationError as exc:
        typer.echo(f"error: the sequencer's answer failed verification: {exc}", err=True)
        raise typer.Exit(EXIT_UNVERIFIABLE) from exc
    except InvalidArgument as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from exc
    except TandemError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_FAILED) from exc


def _entry_doc(e: LogEntry) -> dict[str, Any]:
    return {
        "namespace": e.namespace,
        "height": e.height,
        "index": e.index,
        "id": e.id.hex(),
        "data_hex": e.data.hex(),
    }


def _block_doc(b: VerifiedBlock) -> dict[str, Any]:
    return {
        "height": b.height,
        "hash": b.hash.hex(),
        "prev_hash": b.header.prev_hash.hex(),
        "time_ms": b.time_ms,
        "entry_count": b.header.entry_count,
        "entries": [_entry_doc(e) for e in b.entries],
    }


def _ack_doc(a: Ack) -> dict[str, Any]:
    return {"id": a.entry_id.hex(), "height": a.height, "index": a.index, "duplicate": a.duplicate}


def _status_doc(s: Status) -> dict[str, Any]:
    return {
        "chain_id": s.chain_id,
        "height": s.height,
        "head_hash": s.head_hash.hex(),
        "head_time_ms": s.head_time_ms,
        "sequencer_key": s.sequencer_key.hex(),
    }


def _block_line(b: VerifiedBlock) -> str:
    head = f"block {b.height} {b.hash.hex()[:16]} t={b.time_ms} entries={b.header.entry_count}"
    rows = [f"  {e.index:>5} {e.namespace} {e.id.hex()[:16]} {e.data[:48]!r}" for e in b.entries]
    return "\n".join([head, *rows])


def _print(doc: dict[str, Any]) -> None:
    print(json.dumps(doc, sort_keys=True), flush=True)


@app.command()
def status(
    sequencer: Target,
    genesis: GenesisPath = None,
    timeout: Timeout = DEFAULT_TIMEOUT_S,
    as_json: AsJson = False,
) -> None:
    """The chain id, head height and time, and the sequencer key."""
    with _client(sequencer, genesis, timeout) as client:
        doc = _status_doc(client.status())
    if as_json:
        _print(doc)
    else:
        print(f"chain {doc['chain_id']}: head {doc['height']} at t={doc['head_time_ms']}")


@app.command()
def submit(
    namespace: Annotated[str, typer.Argument(help="Namespace to write")],
    data: Annotated[str, typer.Argument(help="The entry (UTF-8 text, or hex with --hex)")],
    sequencer: Target,
    key: Annotated[Path, typer.Option(envvar="TANDEM_KEY", help="Client key (PKCS8 PEM)")],
    genesis: GenesisPath = None,
    hex_data: Annotated[bool, typer.Option("--hex", help="DATA is hex")] = False,
    timeout: Timeout = DEFAULT_TIMEOUT_S,
    as_json: AsJson = False,
) -> None:
    """Log one entry and print where it landed once it is durable."""
    try:
        payload = bytes.fromhex(data) if hex_data else data.encode()
    except ValueError as exc:
        typer.echo(f"error: DATA is not hex: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from exc
    with _client(sequencer, genesis, timeout, key) as client:
        doc = _ack_doc(client.submit(namespace, payload))
    if as_json:
        _print(doc)
    else:
        again = " (already logged)" if doc["duplicate"] else ""
        print(f"entry {doc['id']} at block {doc['height']} index {doc['index']}{again}")


@app.command()
def block(
    height: Annotated[int, typer.Argument(help="Block height", min=0)],
    sequencer: Target,
    namespace: Annotated[
        list[str] | None, typer.Option("--namespace", "-n", help="Only these (repeat)")
    ] = None,
    genesis: GenesisPath = None,
    timeout: Timeout = DEFAULT_TIMEOUT_S,
    as_json: AsJson = False,
) -> None:
    """One block, verified, with all its entries or those of the given namespaces."""
    with _client(sequencer, genesis, timeout) as client:
        b = client.get_block(height, namespace or None)
    if as_json:
        _print(_block_doc(b))
    else:
        print(_block_line(b))


@app.command()
def entry(
    entry_id: Annotated[str, typer.Argument(help="Entry id (64 hex digits)")],
    sequencer: Target,
    genesis: GenesisPath = None,
    timeout: Timeout = DEFAULT_TIMEOUT_S,
    as_json: AsJson = False,
) -> None:
    """One entry by id, with its inclusion proof verified."""
    try:
        eid = bytes.fromhex(entry_id)
    except ValueError as exc:
        typer.echo(f"error: ENTRY_ID is not hex: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from exc
    with _client(sequencer, genesis, timeout) as client:
        doc = _entry_doc(client.get_entry(eid))
    if as_json:
        _print(doc)
    else:
        data = bytes.fromhex(doc["data_hex"])
        print(f"{doc['namespace']} at block {doc['height']} index {doc['index']}: {data!r}")


@app.command()
def tail(
    sequencer: Target,
    namespace: Annotated[
        list[str] | None,
        typer.Option("--namespace", "-n", help="Entries of these (repeat; none: headers only)"),
    ] = None,
    from_height: Annotated[int, typer.Option(help="First block", min=0)] = 0,
    count: Annotated[int, typer.Option(help="Stop after this many blocks (0: never)")] = 0,
    genesis: GenesisPath = None,
    timeout: Timeout = DEFAULT_TIMEOUT_S,
    as_json: AsJson = False,
) -> None:
    """Follow the log from a height: every block, verified, gap-free (JSON: one per line)."""
    with _client(sequencer, genesis, timeout) as client:
        for n, b in enumerate(client.subscribe(namespace or [], from_height), start=1):
            if as_json:
                _print(_block_doc(b))
            else:
                print(_block_line(b), flush=True)
            if n == count:
                break
    sys.stdout.flush()
