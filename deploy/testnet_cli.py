"""`tandem testnet up|down|status|logs`: a whole local network from one command.

Every command finds the testnet from --dir or TANDEM_HOME (default ~/.tandem/testnet).
Errors are Tandem errors caught at this edge and printed as one line with exit code 1.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import shlex
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import trio
import typer
from rich.console import Console
from rich.live import Live

from deploy import genesis_gen, launcher, probe, procs, state, status_view, tls
from deploy.layout import Layout, default_home
from deploy.state import ProcessRecord, TestnetState
from rollup_client.protocol.errors import FailedPrecondition
from rollup_client.protocol.keys import SigningKey
from rollup_client.rpc.cli import cli_errors

app = typer.Typer(help="Run a local multi-rollup testnet.", no_args_is_help=True)
err_console = Console(stderr=True)

DirOpt = Annotated[
    Path | None,
    typer.Option(
        "--dir", envvar="TANDEM_HOME", help="Testnet directory [default: ~/.tandem/testnet]"
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout")]
REFRESH_S = 1.0


def layout_of(directory: Path | None) -> Layout:
    return Layout((directory or default_home()).expanduser().resolve())


@contextlib.contextmanager
def _up_lock(layout: Layout) -> Iterator[None]:
    """Only one `up` at a time per directory (the lock is not inherited by the processes)."""
    layout.root.mkdir(parents=True, exist_ok=True)
    with (layout.root / ".lock").open("w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FailedPrecondition(
                f"another `tandem testnet up` is running in {layout.root}"
            ) from None
        yield


def bring_up(
    layout: Layout, config: Path | None, rollups: int | None, mutual_tls: bool = False
) -> TestnetState:
    """Keys, genesis and every process of the network; resumes the chain kept in `layout`.

    With `mutual_tls`, a CA and a certificate per process (kept in DIR/tls) and every
    process serving and dialling mutual TLS only."""
    cfg = genesis_gen.resolve(layout, config, rollups)
    genesis_gen.materialize(cfg, layout)
    accounts = {a.name: str(layout.key(a.name)) for a in cfg.accounts}
    certs = tls.issue_all(cfg, layout) if mutual_tls else None
    return trio.run(launcher.up, cfg, layout, accounts, certs)


def _summary(layout: Layout, testnet: TestnetState) -> str:
    lines = [f"testnet {testnet.chain_id} is up in {layout.root}"]
    lines += [f"  {p.name:<12} {p.listen:<22} pid {p.pid}" for p in testnet.processes]
    lines.append(f"  keys in {testnet.keys_dir}, state in {layout.state}")
    if testnet.tls_dir:
        lines.append(f"  mutual TLS only: CA and client certificate in {testnet.tls_dir}")
    return "\n".join(lines)


@app.command()
def up(
    directory: DirOpt = None,
    config: Annotated[
        Path | None, typer.Option(help="Network TOML [default: the one DIR was made with]")
    ] = None,
    rollups: Annotated[
        int | None, typer.Option(help="Number of rollups (first N of the config)")
    ] = None,
    detach: Annotated[
        bool, typer.Option("--detach", help="Return once up; leave the processes running")
    ] = False,
    mutual_tls: Annotated[
        bool,
        typer.Option("--tls", help="Mutual TLS everywhere: a CA and certificates in DIR/tls"),
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Start the sequencer, the rollup nodes and the coordinator; Ctrl-C stops them all."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM cleans up like Ctrl-C
    layout = layout_of(directory)
    with cli_errors(), _up_lock(layout):
        testnet = bring_up(layout, config, rollups, mutual_tls)
        try:
            if json_out:
                typer.echo(json.dumps(testnet.to_json()))
            else:
                typer.echo(_summary(layout, testnet))
            if not detach:
                trio.run(supervise, testnet)
        except BaseException:
            if not detach:  # interrupted before the supervisor took over: it stops nothing
                trio.run(launcher.stop_all, testnet.processes)
            raise


async def supervise(testnet: TestnetState) -> None:
    """Show the live status table until Ctrl-C or SIGTERM, then stop every process."""
    try:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:

                async def until_signal() -> None:
                    async for _ in signals:
                        nursery.cancel_scope.cancel()
                        return

                nursery.start_soon(until_signal)
                await _live_table(testnet)
                nursery.cancel_scope.cancel()
    finally:
        err_console.print("stopping the testnet...")
        await launcher.stop_all(testnet.processes)
        err_console.print("stopped: no process left")


async def _live_table(testnet: TestnetState) -> None:
    """Refresh the table every second; returns if every process has gone."""
    creds = tls.client_credentials(testnet)
    with Live(console=err_console, auto_refresh=False) as live:
        while testnet.running():
            view = await trio.to_thread.run_sync(
                probe.network_view, testnet, creds, abandon_on_cancel=True
            )
            live.update(status_view.table(testnet, view), refresh=True)
            await trio.sleep(REFRESH_S)
    err_console.print("every process has exited")


@app.command()
def down(directory: DirOpt = None) -> None:
    """Stop every process of the testnet (SIGTERM, a grace period, then SIGKILL)."""
    layout = layout_of(directory)
    with cli_errors():
        testnet = state.load_running(layout)
        trio.run(launcher.stop_all, testnet.processes)
        typer.echo(f"stopped {len(testnet.processes)} processes in {layout.root}")


@app.command()
def status(directory: DirOpt = None, json_out: JsonOpt = False) -> None:
    """Heights, each rollup's state root and lag, and entries per second."""
    layout = layout_of(directory)
    with cli_errors():
        testnet = state.load_running(layout)
        view = probe.network_view(testnet, tls.client_credentials(testnet))
        if json_out:
            typer.echo(json.dumps(status_view.to_json(testnet, view)))
        else:
            Console().print(status_view.table(testnet, view))


@app.command()
def env(directory: DirOpt = None) -> None:
    """Shell exports pointing the other `tandem` commands at this testnet (use with eval)."""
    layout = layout_of(directory)
    with cli_errors():
        testnet = state.load_running(layout)
        rollups = " ".join(f"{rid}={addr}" for rid, addr in testnet.rollups().items())
        exports = {
            "TANDEM_HOME": str(layout.root),
            "TANDEM_SEQUENCER": testnet.sequencer,
            "TANDEM_COORDINATOR": testnet.coordinator,
            "TANDEM_GENESIS": testnet.genesis,
            "TANDEM_KEYS": testnet.keys_dir,
            "TANDEM_ROLLUPS": rollups,
        }
        client = tls.client_files(testnet)
        if client is not None:
            exports |= {
                "TANDEM_TLS_CA": str(client.ca),
                "TANDEM_TLS_CERT": str(client.cert),
                "TANDEM_TLS_KEY": str(client.key),
            }
        for name, value in exports.items():
            typer.echo(f"export {name}={shlex.quote(value)}")


@app.command()
def accounts(directory: DirOpt = None, json_out: JsonOpt = False) -> None:
    """The named accounts: public key (what `tandem rollup balance` takes) and key file."""
    layout = layout_of(directory)
    with cli_errors():
        testnet = state.load(layout)
        if testnet is None:
            raise FailedPrecondition(f"no testnet was ever started in {layout.root}")
        doc = {
            name: {"public_key": SigningKey.load(Path(path)).public.hex(), "key": path}
            for name, path in testnet.accounts.items()
        }
        if json_out:
            typer.echo(json.dumps(doc))
        else:
            for name, row in doc.items():
                typer.echo(f"{name:<8} {row['public_key']}  {row['key']}")


def _log_files(p: ProcessRecord) -> list[Path]:
    """A process's console log (stdout and stderr) and the structured logs it writes itself."""
    return [Path(p.log), *sorted(Path(p.data_dir).glob("*.log"))]


@app.command()
def logs(
    name: Annotated[str | None, typer.Argument(help="Process name [default: every one]")] = None,
    directory: DirOpt = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines")] = False,
    lines: Annotated[int, typer.Option("--lines", "-n", help="Last lines of each log")] = 20,
) -> None:
    """The per-process logs: console output, then each process's own structured log."""
    layout = layout_of(directory)
    with cli_errors():
        testnet = state.load(layout)
        if testnet is None:
            raise FailedPrecondition(f"no testnet was ever started in {layout.root}")
        chosen = testnet.processes if name is None else [testnet.process(name)]
        files = [(p.name, f) for p in chosen for f in _log_files(p)]
        for pname, f in files:
            typer.echo(f"==> {pname}: {f} <==")
            typer.echo(procs.tail(f, lines))
        if follow:
            with contextlib.suppress(KeyboardInterrupt):
                trio.run(_follow, files)


async def _follow(files: list[tuple[str, Path]]) -> None:
    """Print what is appended to `files` (each line prefixed by its process) until interrupted."""
    offsets = {p: p.stat().st_size if p.exists() else 0 for _, p in files}
    while True:
        for name, p in files:
            if not p.exists() or p.stat().st_size <= offsets[p]:
                continue
            with p.open("rb") as f:
                f.seek(offsets[p])
                data = f.read()
            complete = data[: data.rfind(b"\n") + 1]
            offsets[p] += len(complete)
            for line in complete.decode(errors="replace").splitlines():
                sys.stdout.write(f"{name}| {line}\n")
            sys.stdout.flush()
        await trio.sleep(procs.POLL_S * 4)
