"""`tandem coordinator run`: serve a swap coordinator.

It prints exactly one line to stdout once it serves:
`{"event": "ready", "listen": "HOST:PORT", "metrics": "HOST:PORT"}` (metrics "" when off).
Logs go to DIR/coordinator.log as JSON lines. Settings come from --config FILE (TOML, its
`[coordinator]` table if it has one), flags override them. SIGTERM or SIGINT stops it, exit 0.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import trio
import typer

from rollup_client.rpc import tls_files
from rollup_client.rpc.cli import TlsCa, TlsCert, TlsKey, cli_errors
from swap_coordinator import config as configuration
from swap_coordinator.service import serve

coordinator_app = typer.Typer(help="Run a swap coordinator.", no_args_is_help=True)


@coordinator_app.command("run")
def run_coordinator(
    sequencer: Annotated[
        str | None,
        typer.Option("--sequencer", envvar="TANDEM_SEQUENCER", help="Sequencer HOST:PORT"),
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", envvar="TANDEM_COORDINATOR_DIR")
    ] = None,
    genesis: Annotated[Path | None, typer.Option("--genesis", envvar="TANDEM_GENESIS")] = None,
    key: Annotated[
        Path | None, typer.Option("--key", envvar="TANDEM_COORDINATOR_KEY", help="Client key PEM")
    ] = None,
    listen: Annotated[
        str | None,
        typer.Option(
            envvar="TANDEM_COORDINATOR_LISTEN",
            help=f"gRPC HOST:PORT (default {configuration.DEFAULT_LISTEN})",
        ),
    ] = None,
    metrics_listen: Annotated[
        str | None,
        typer.Option(envvar="TANDEM_METRICS_LISTEN", help="Prometheus HOST:PORT ('' = off)"),
    ] = None,
    call_timeout: Annotated[
        float | None, typer.Option("--call-timeout", help="Seconds per RPC (default 10)")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="TOML config file")] = None,
    tls_ca: TlsCa = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
) -> None:
    """Serve the coordinator until SIGTERM; prints one ready line with the bound address.

    --sequencer, --data-dir, --genesis and --key are required, as flags or in --config.
    With --tls-*, its server requires client certificates from the CA and it presents its
    own certificate to the sequencer (mutual TLS both ways, like a rollup node).
    """
    with cli_errors():
        cfg = configuration.load(
            config,
            sequencer=sequencer,
            data_dir=data_dir,
            genesis=genesis,
            key=key,
            listen=listen,
            metrics_listen=metrics_listen,
            call_timeout_s=call_timeout,
            tls=tls_files(tls_ca, tls_cert, tls_key),
        )
        trio.run(_main, cfg)


async def _main(cfg: configuration.Config) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            (await nursery.start(serve, cfg)).print_ready()
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break
