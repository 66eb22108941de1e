"""`tandem rollup`: run a rollup node, and talk to one (status, balance, transfer).

`run` prints exactly one line to stdout once it is serving and caught up with the
sequencer head it saw at start:
`{"event": "ready", "listen": "HOST:PORT", "metrics": "HOST:PORT"}` (metrics "" when off).
Logs go to DIR/rollup.log as JSON lines. SIGTERM or SIGINT drains it (transactions
already accepted are still forwarded and answered) and it exits 0.
"""

from __future__ import annotations

import json
import signal
from functools import partial
from pathlib import Path
from typing import Annotated

import trio
import typer

from rollup_client.ledger import TokenLedger
from rollup_client.node import config as configuration
from rollup_client.node import shell as node
from rollup_client.node.config import NodeConfig
from rollup_client.protocol.errors import TandemError
from rollup_client.protocol.keys import SigningKey
from rollup_client.rpc import tls_files
from rollup_client.rpc.cli import TlsCa, TlsCert, TlsKey, cli_errors
from rollup_client.sdk import RollupClient

app = typer.Typer(help="Run a rollup node and use it.", no_args_is_help=True)

Target = Annotated[
    str, typer.Option("--rollup", envvar="TANDEM_ROLLUP", help="Rollup node HOST:PORT")
]
Timeout = Annotated[float, typer.Option(help="Seconds before giving up on the node")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print one JSON document")]


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


async def _main(cfg: NodeConfig) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:

        async def stop_requested() -> None:
            async for _ in signals:
                return

        async with trio.open_nursery() as nursery:
            serve = partial(
                node.serve, cfg, machine_factory=TokenLedger, shutdown_trigger=stop_requested
            )
            (await nursery.start(serve)).print_ready()


@app.command()
def run(
    config: Annotated[Path | None, typer.Option(help="TOML config file")] = None,
    rollup_id: Annotated[
        str | None, typer.Option("--id", envvar="TANDEM_ROLLUP_ID", help="Rollup id")
    ] = None,
    sequencer: Annotated[
        str | None, typer.Option(envvar="TANDEM_SEQUENCER", help="Sequencer HOST:PORT")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", envvar="TANDEM_DATA_DIR", help="Node data directory"),
    ] = None,
    genesis: Annotated[
        Path | None, typer.Option(envvar="TANDEM_GENESIS", help="Genesis file")
    ] = None,
    key: Annotated[
        Path | None, typer.Option(envvar="TANDEM_KEY", help="The rollup's key (PEM)")
    ] = None,
    listen: Annotated[
        str | None,
        typer.Option(envvar="TANDEM_ROLLUP_LISTEN", help="gRPC HOST:PORT (default 127.0.0.1:0)"),
    ] = None,
    metrics_listen: Annotated[
        str | None,
        typer.Option(envvar="TANDEM_METRICS_LISTEN", help="Prometheus HOST:PORT ('' = off)"),
    ] = None,
    snapshot_every: Annotated[
        int | None, typer.Option(help="Snapshot every K blocks (default 100)")
    ] = None,
    attest_every: Annotated[
        int | None, typer.Option(help="Attest the state root every K blocks (default 10)")
    ] = None,
    vote_linger_ms: Annotated[
        int | None,
        typer.Option(
            help="Ask the sequencer to hold vote batches this long for company (default 10)"
        ),
    ] = None,
    replica: Annotated[
        bool, typer.Option(help="Read-only replica: follow the log, submit nothing")
    ] = False,
    tls_ca: TlsCa = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
) -> None:
    """Serve a rollup node until SIGTERM.

    Settings come from --config (a TOML file of NodeConfig's fields, at its top level or
    in its rollup table), then from the flags, which override it.
    """
    with cli_errors():
        tls = tls_files(tls_ca, tls_cert, tls_key)
        cfg = configuration.load(
            config,
            rollup_id=rollup_id,
            sequencer=sequencer,
            data_dir=data_dir,
            genesis=genesis,
            key=key,
            listen=listen,
            metrics_listen=metrics_listen,
            snapshot_every=snapshot_every,
            attest_every=0 if replica else attest_every,
            submit=False if replica else None,
            vote_linger_ms=vote_linger_ms,
            tls=tls,
            sequencer_tls=tls,
        )
        trio.run(_main, cfg)


def _client(
    target: str, timeout: float, ca: Path | None, cert: Path | None, key: Path | None
) -> RollupClient:
    tls = tls_files(ca, cert, key)
    creds = tls.channel_credentials() if tls else None
    return RollupClient(target, timeout=timeout, credentials=creds)


def _account(hexkey: str) -> bytes:
    try:
        raw = bytes.fromhex(hexkey)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise _fail(f"{hexkey!r} is not an account: give its 32-byte public key in hex")
    return raw


@app.command()
def status(
    target: Target,
    timeout: Timeout = 10.0,
    json_out: JsonOut = False,
    tls_ca: TlsCa = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
) -> None:
    """The node's applied height, log time, state root and lag."""
    try:
        with _client(target, timeout, tls_ca, tls_cert, tls_key) as c:
            s = c.status()
    except TandemError as exc:
        raise _fail(str(exc)) from None
    doc = {
        "rollup": s.rollup_id,
        "height": s.height,
        "time_ms": s.time_ms,
        "state_root": s.state_root.hex(),
        "sequencer_height": s.sequencer_height,
        "lag": s.lag,
    }
    typer.echo(json.dumps(doc) if json_out else "\n".join(f"{k}: {v}" for k, v in doc.items()))


@app.command()
def balance(
    account: Annotated[str, typer.Argument(help="Account public key, hex")],
    target: Target,
    timeout: Timeout = 10.0,
    json_out: JsonOut = False,
    tls_ca: TlsCa = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
) -> None:
    """Every balance of an account."""
    try:
        with _client(target, timeout, tls_ca, tls_cert, tls_key) as c:
            balances = c.balances(_account(account))
    except TandemError as exc:
        raise _fail(str(exc)) from None
    out = json.dumps(balances) if json_out else "\n".join(f"{a}: {n}" for a, n in balances.items())
    typer.echo(out)


@app.command()
def receipt(
    tx_id: Annotated[str, typer.Argument(help="Transaction id, hex")],
    target: Target,
    wait: Annotated[float, typer.Option(help="Seconds to wait for execution (0: don't)")] = 0,
    timeout: Timeout = 10.0,
    json_out: JsonOut = False,
    tls_ca: TlsCa = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
) -> None:
    """A transaction's receipt: pending, sequenced, or executed (exit 3 if it failed)."""
    try:
        raw = bytes.fromhex(tx_id)
    except ValueError:
        raise _fail(f"{tx_id!r} is not hex") from None
    try:
        with _client(target, max(timeout, wait), tls_ca, tls_cert, tls_key) as c:
            r = c.wait_receipt(raw, wait) if wait > 0 else c.receipt(raw)
    except TandemError as exc:
        raise _fail(str(exc)) from None
    doc = {
        "tx_id": r.tx_id.hex(),
        "state": r.state,
        "height": r.height,
        "index": r.index,
        "ok": r.ok,
        "reason": r.reason,
        "kind": r.kind,
    }
    typer.echo(json.dumps(doc) if json_out else "\n".join(f"{k}: {v}" for k, v in doc.items()))
    if r.executed and not r.ok:
        raise typer.Exit(3)


@app.command()
def transfer(
    to: Annotated[str, typer.Argument(help="Recipient public key, hex")],
    amount: Annotated[int, typer.Argument(help="Integer amount")],
    asset: Annotated[str, typer.Argument(help="Asset name")],
    key: Annotated[Path, typer.Option(envvar="TANDEM_KEY", help="Sender's key (PEM)")],
    target: Target,
    timeout: Timeout = 30.0,
    json_out: JsonOut = False,
    tls_ca: TlsCa = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
) -> None:
    """Transfer and wait for the receipt; exit 0 if it executed ok, 3 if it failed."""
    try:
        with _client(target, timeout, tls_ca, tls_cert, tls_key) as c:
            r = c.transfer(SigningKey.load(key), _account(to), asset, amount, wait_s=timeout)
    except TandemError as exc:
        raise _fail(str(exc)) from None
    doc = {
        "tx_id": r.tx_id.hex(),
        "height": r.height,
        "index": r.index,
        "ok": r.ok,
        "reason": r.reason,
    }
    msg = f"executed at {r.height}:{r.index}: " + ("ok" if r.ok else f"failed: {r.reason}")
    typer.echo(json.dumps(doc) if json_out else msg)
    if not r.ok:
        raise typer.Exit(3)
