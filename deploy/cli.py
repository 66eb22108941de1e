"""The `tandem` command: one root, noun-verb subcommands mounted from each package."""

from __future__ import annotations

import os
import sys

import typer

from deploy import chaos, demo
from deploy.etcd_cli import app as etcd_app
from deploy.testnet_cli import app as testnet_app
from rollup_client.node.cli import app as rollup_app
from rollup_client.node.verify_cli import app as verify_app
from rollup_client.sdk.cli import app as log_app
from sequencer.cli import app as sequencer_app
from swap_coordinator.cli import swap_app
from swap_coordinator.coordinator_cli import coordinator_app

app = typer.Typer(
    name="tandem",
    help="Tandem: a shared sequencer and cross-rollup atomic swap network.",
    no_args_is_help=True,
)
app.add_typer(sequencer_app, name="sequencer")
app.add_typer(rollup_app, name="rollup")
app.add_typer(testnet_app, name="testnet")
app.command("demo")(demo.command)
app.add_typer(verify_app, name="verify")
app.add_typer(swap_app, name="swap")
app.add_typer(coordinator_app, name="coordinator")
app.add_typer(log_app, name="log")
app.add_typer(etcd_app, name="etcd")
app.command("chaos")(chaos.command)


@app.command(
    "bench",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def bench(ctx: typer.Context) -> None:
    """Benchmarks: NAME [--quick] [--json PATH] (becomes `python -m bench`: no import)."""
    os.execv(sys.executable, [sys.executable, "-m", "bench", *ctx.args])
