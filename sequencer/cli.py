"""`tandem sequencer`: create a single-node network and serve it."""

from __future__ import annotations

import typer

app = typer.Typer(help="Run the shared sequencer.", no_args_is_help=True)


@app.callback()
def main() -> None:
    """Sequencer commands."""
