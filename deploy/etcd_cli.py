"""`tandem etcd up|down|status`: a local etcd cluster for a replica-set testnet.

The cluster lives in the testnet directory (--dir or TANDEM_HOME): members' data in
DIR/data/etcd-N, logs in DIR/logs/etcd-N.log, ports and pids in DIR/etcd.json. `up` after
`down` restarts the same members on the same ports with their data.
"""

from __future__ import annotations

import json
from typing import Annotated

import trio
import typer
from rich.console import Console
from rich.table import Table

from deploy import etcd_cluster
from deploy.testnet_cli import DirOpt, JsonOpt, layout_of
from rollup_client.protocol.errors import FailedPrecondition
from rollup_client.rpc.cli import cli_errors

app = typer.Typer(help="Run a local etcd cluster for sequencer replicas.", no_args_is_help=True)


@app.command()
def up(
    directory: DirOpt = None,
    members: Annotated[int, typer.Option(min=1, max=7, help="Members of a new cluster")] = 3,
    host: Annotated[str, typer.Option(help="Address the members bind")] = "127.0.0.1",
) -> None:
    """Start the cluster (detached) and wait until it has a leader; prints its endpoints."""
    layout = layout_of(directory)
    with cli_errors():
        cluster = trio.run(etcd_cluster.up, layout, members, host)
        typer.echo(f"etcd is up in {layout.root}: {len(cluster.members)} members")
        typer.echo(f"client endpoints: {','.join(cluster.endpoints)}")


@app.command()
def down(directory: DirOpt = None) -> None:
    """Stop every member (SIGTERM, a grace period, then SIGKILL); their data stays."""
    layout = layout_of(directory)
    with cli_errors():
        stopped = trio.run(etcd_cluster.down, layout)
        typer.echo(f"stopped {len(stopped)} etcd members in {layout.root}")


@app.command()
def status(directory: DirOpt = None, json_out: JsonOpt = False) -> None:
    """Each member: running, leader, Raft term, store revision, database size."""
    layout = layout_of(directory)
    with cli_errors():
        cluster = etcd_cluster.load(layout)
        if cluster is None:
            raise FailedPrecondition(f"no etcd cluster in {layout.root}: tandem etcd up")
        rows = etcd_cluster.status(cluster)
        if json_out:
            typer.echo(json.dumps({"endpoints": cluster.endpoints, "members": rows}))
        else:
            table = Table("member", "client", "state", "term", "revision", "db")
            for r in rows:
                state = "leader" if r.get("leader") else ("follower" if "version" in r else "down")
                table.add_row(
                    r["name"],
                    r["client"],
                    state,
                    str(r.get("raft_term", "")),
                    str(r.get("revision", "")),
                    f"{r['db_bytes'] // 1024} KiB" if "db_bytes" in r else "",
                )
            Console().print(table)
        if not all(r["running"] and "version" in r for r in rows):
            raise typer.Exit(1)
