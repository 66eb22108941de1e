"""`tandem sequencer`: create a single-node network and serve it.

`run` prints exactly one line to stdout once the server is SERVING:
`{"event": "ready", "listen": "HOST:PORT", "metrics": "HOST:PORT"}` (metrics "" when off),
and writes DIR/endpoint with HOST:PORT. Logs go to DIR/sequencer.log as JSON lines.
SIGTERM or SIGINT drains (queued batches are still acknowledged) and exits 0.
"""

from __future__ import annotations

import gc
import json
import os
import signal
from pathlib import Path
from typing import Annotated

import trio
import typer

from rollup_client.protocol.genesis import ANY_NAMESPACE, Client, Genesis
from rollup_client.protocol.keys import SigningKey
from rollup_client.rpc import Endpoints, tls_files
from rollup_client.rpc.cli import TlsCa, TlsCert, TlsKey, cli_errors
from sequencer import config as configuration
from sequencer.service import serve

app = typer.Typer(help="Run the shared sequencer.", no_args_is_help=True)

DataDir = Annotated[
    Path, typer.Option("--data-dir", envvar="TANDEM_DATA_DIR", help="Sequencer data directory")
]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


@app.command()
def init(
    data_dir: DataDir,
    chain_id: Annotated[str, typer.Option(help="Chain id signed into every batch")] = "tandem-dev",
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
) -> None:
    """Create a single-node genesis, the sequencer key and a dev client key (any namespace)."""
    genesis_path = data_dir / "genesis.json"
    if genesis_path.exists():
        raise _fail(f"{genesis_path} exists already: this data dir is initialised")
    seq_path, client_path = data_dir / "keys" / "sequencer.pem", data_dir / "keys" / "client.pem"
    for p in (seq_path, client_path):
        if p.exists():
            raise _fail(f"{p} exists already: refusing to overwrite a key")
    seq, client = SigningKey.generate(), SigningKey.generate()
    seq.save(seq_path)
    client.save(client_path)
    genesis = Genesis(
        chain_id,
        seq.public,
        (Client("default", client.public, frozenset({ANY_NAMESPACE})),),
    )
    genesis.save(genesis_path)
    doc = {
        "genesis": str(genesis_path),
        "sequencer_key": str(seq_path),
        "client_key": str(client_path),
        "chain_id": chain_id,
    }
    typer.echo(json.dumps(doc) if json_out else f"initialised {data_dir} (chain {chain_id})")


@app.command()
def run(
    data_dir: DataDir,
    listen: Annotated[
        str | None,
        typer.Option(envvar="TANDEM_SEQUENCER_LISTEN", help="gRPC HOST:PORT (default 127.0.0.1:0)"),
    ] = None,
    config: Annotated[Path | None, typer.Option(help="TOML config file")] = None,
    heartbeat_ms: Annotated[int | None, typer.Option(help="Empty block interval when idle")] = None,
    metrics_listen: Annotated[
        str | None,
        typer.Option(envvar="TANDEM_METRICS_LISTEN", help="Prometheus HOST:PORT ('' = off)"),
    ] = None,
    genesis: Annotated[
        Path | None, typer.Option(help="Genesis file (default DIR/genesis.json)")
    ] = None,
    key: Annotated[
        Path | None, typer.Option(help="Sequencer key PEM (default DIR/keys/sequencer.pem)")
    ] = None,
    tls_ca: TlsCa = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
) -> None:
    """Serve the sequencer until SIGTERM.

    With --tls-*, it serves mutual TLS only: clients need a certificate signed by the CA.
    """
    with cli_errors():
        cfg = configuration.load(
            config,
            data_dir,
            listen=listen,
            heartbeat_ms=heartbeat_ms,
            metrics_listen=metrics_listen,
            genesis=genesis,
            key=key,
            tls=tls_files(tls_ca, tls_cert, tls_key),
        )
        trio.run(_main, cfg)


def _ready(data_dir: Path, ends: Endpoints) -> None:
    # What is alive now (modules, the server, the store) lives as long as the process:
    # frozen, the collector's full passes skip it. Under load each such pass over it
    # stalled every thread at once, and those stalls were the tail of the submit latency.
    gc.collect()
    gc.freeze()
    tmp = data_dir / "endpoint.tmp"
    tmp.write_text(ends.listen + "\n")
    os.replace(tmp, data_dir / "endpoint")
    ends.print_ready()


async def _main(cfg: configuration.Config) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            _ready(cfg.data_dir, await nursery.start(serve, cfg))
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break
