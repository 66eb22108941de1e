"""`tandem chaos`: a 3-rollup testnet with the coordinator, random load, and a nemesis.

The network runs on loopback with fixed free ports (a restarted process comes back at
the same address). Client processes (deploy/chaos_client.py) send random transfers and
2- and 3-leg swaps, some made to abort. The nemesis follows `chaos_core.schedule(seed)`:
every 1 to 5 s it kills -9 or SIGSTOPs a random process (sequencer, a rollup node, the
coordinator) for a while, then restarts or continues it. At the end it heals, waits until
log time has passed every swap's deadline and every node has caught up, reads the whole
log, and checks every invariant of DESIGN.md section 4 (`chaos_core.check_*`).

Exit code 0 when every invariant held, 1 on a violation (the seed and the first violated
invariant with its evidence go to stderr) or an error.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import trio
import typer

from deploy import chaos_core, genesis_gen, launcher, procs
from deploy.chaos_core import Acked, Fault, Reference, Violation
from deploy.chaos_net import ACCOUNTS, ASSETS, ROLLUPS, Net, network
from deploy.chaos_readback import POLL_S, live_views, read_log, settle
from deploy.layout import COORDINATOR, SEQUENCER, Layout
from rollup_client.protocol import swap
from rollup_client.protocol.errors import TandemError
from rollup_client.protocol.genesis import Genesis


@dataclass(frozen=True)
class ChaosConfig:
    duration_s: float
    seed: int
    root: Path
    clients: int = 3
    heartbeat_ms: int = 100


@dataclass
class Report:
    seed: int
    duration_s: float
    kills: int = 0
    stops: int = 0
    entries_acked: int = 0
    swaps_committed: int = 0
    swaps_aborted: int = 0
    invariants_checked: int = 0
    violations: list[Violation] = field(default_factory=list)
    schedule: list[Fault] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "duration_s": self.duration_s,
            "kills": self.kills,
            "stops": self.stops,
            "entries_acked": self.entries_acked,
            "swaps_committed": self.swaps_committed,
            "swaps_aborted": self.swaps_aborted,
            "invariants_checked": self.invariants_checked,
            "violations": [v.to_json() for v in self.violations],
            "schedule": [f.__dict__ for f in self.schedule],
        }


async def nemesis(net: Net, faults: list[Fault], report: Report, t0: float) -> None:
    for f in faults:
        await trio.sleep_until(t0 + f.at_s)
        if f.kind == chaos_core.KILL:
            report.kills += 1
        else:
            report.stops += 1
        await net.fault(f)


def start_clients(cfg: ChaosConfig, net: Net, layout: Layout) -> list[tuple[procs.Handle, Path]]:
    out = []
    per = len(ACCOUNTS) // cfg.clients
    for i in range(cfg.clients):
        result = cfg.root / f"client-{i}.jsonl"
        doc = {
            "rollups": {r: net.addr(r) for r in ROLLUPS},
            "assets": {r: list(ASSETS) for r in ROLLUPS},
            "coordinator": net.addr(COORDINATOR),
            "keys_dir": str(layout.keys_dir),
            "senders": list(ACCOUNTS[i * per : (i + 1) * per]),
            "accounts": list(ACCOUNTS),
            "seed": cfg.seed * 1000 + i,
            "duration_s": cfg.duration_s,
            "out": str(result),
        }
        conf = cfg.root / f"client-{i}.json"
        conf.write_text(json.dumps(doc))
        argv = [sys.executable, "-m", "deploy.chaos_client", str(conf)]
        out.append((procs.spawn(argv, layout.log(f"client-{i}")), result))
    return out


async def wait_clients(clients: list[tuple[procs.Handle, Path]], limit_s: float) -> None:
    with trio.move_on_after(limit_s):
        await procs.gone([h for h, _ in clients], POLL_S)
    await procs.stop([h for h, _ in clients], 1.0)


@dataclass
class ClientLog:
    """What the workload clients saw: acknowledged transfers, the swaps they proposed
    (id -> deadline), and each outcome the coordinator claimed when asked mid-run."""

    acked: list[Acked] = field(default_factory=list)
    swaps: dict[bytes, int] = field(default_factory=dict)
    claims: list[tuple[bytes, str]] = field(default_factory=list)


def read_clients(clients: list[tuple[procs.Handle, Path]]) -> ClientLog:
    out = ClientLog()
    for _, path in clients:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            try:
                doc = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill
            if doc["kind"] == "tx":
                out.acked.append(Acked(bytes.fromhex(doc["id"]), doc["height"], doc["index"]))
            elif doc["kind"] == "swap":
                out.swaps[bytes.fromhex(doc["id"])] = doc["deadline_ms"]
            elif doc["kind"] == "report":
                out.claims.append((bytes.fromhex(doc["id"]), doc["outcome"]))
    return out


def check(
    net: Net,
    genesis: Genesis,
    height: int,
    seen: ClientLog,
    report: Report,
) -> None:
    blocks, bad = read_log(net.addr(SEQUENCER), genesis, height)
    ref = Reference(genesis)
    for b in blocks:
        ref.apply(b)
    ref.check_effects()
    roots, balances, reported, placed, left = live_views(net, genesis, height, seen.swaps)
    claims = [*seen.claims, *reported]
    found = [
        *bad,
        *chaos_core.check_log(blocks),
        *ref.violations,
        *chaos_core.check_acked(blocks, seen.acked),
        *chaos_core.check_nodes(chaos_core.replay_roots(genesis, blocks), roots),
        *chaos_core.check_balances(ref, balances),
        *chaos_core.check_supply(genesis, balances),
        *chaos_core.check_reports(ref, claims),
        *chaos_core.check_placed(ref, placed, height),
        *left,
    ]
    report.violations += found
    report.swaps_committed = sum(o is swap.Outcome.COMMIT for o in ref.decided.values())
    report.swaps_aborted = sum(o is swap.Outcome.ABORT for o in ref.decided.values())
    legs = sum(len(r.intent.legs) for r in ref.tracker.records())
    report.invariants_checked = (
        2 * len(blocks)  # supply and escrow after every block
        + 3 * len(blocks)  # gap-free, hash link, log time (signatures when read)
        + len(seen.acked)
        + len(roots)
        + len(balances)
        + len(claims)
        + len(placed)
        + legs
        + len(seen.swaps) * len(ROLLUPS)
    )


def progress(message: str) -> None:
    typer.echo(f"chaos: {message}", err=True)


async def run(cfg: ChaosConfig) -> Report:
    """One chaos run in `cfg.root`; everything it started is stopped before it returns."""
    progress(f"starting a testnet in {cfg.root}")
    layout = Layout(cfg.root / "testnet")
    netcfg = network(cfg.heartbeat_ms)
    genesis = genesis_gen.materialize(netcfg, layout)
    accounts = {a.name: str(layout.key(a.name)) for a in netcfg.accounts}
    testnet = await launcher.up(netcfg, layout, accounts)
    net = Net(layout, testnet.processes)
    report = Report(cfg.seed, cfg.duration_s)
    report.schedule = chaos_core.schedule(cfg.seed, cfg.duration_s, net.records)
    clients: list[tuple[procs.Handle, Path]] = []
    try:
        clients = start_clients(cfg, net, layout)
        progress(f"load and {len(report.schedule)} faults for {cfg.duration_s:g} s")
        t0 = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(nemesis, net, report.schedule, report, t0)
            nursery.start_soon(wait_clients, clients, cfg.duration_s + 30)
        progress("healing")
        await net.heal()
        report.violations += net.violations
        seen = read_clients(clients)
        report.entries_acked = len(seen.acked)
        progress(
            f"settling {len(seen.acked)} acked transfers, {len(seen.swaps)} swaps, "
            f"{len(seen.claims)} outcomes claimed mid-run"
        )
        height = await settle(net, seen.swaps)
        progress(f"checking blocks 0..{height}")
        await trio.to_thread.run_sync(check, net, genesis, height, seen, report)
    finally:
        with trio.CancelScope(shield=True):
            await procs.stop([h for h, _ in clients], 1.0)
            await net.stop()
    return report


def command(
    duration: Annotated[float, typer.Option(help="Seconds of load and faults")] = 60.0,
    seed: Annotated[int, typer.Option(help="Seed of the fault schedule and the workload")] = 1,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the report as JSON to this file")
    ] = None,
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Work directory (default: a temporary one)")
    ] = None,
    clients: Annotated[int, typer.Option(help="Workload client processes")] = 3,
) -> None:
    """Run a testnet under faults and random load, then check every invariant."""
    if duration <= 0 or not 1 <= clients <= len(ACCOUNTS):
        typer.echo(f"error: need --duration > 0 and 1 <= --clients <= {len(ACCOUNTS)}", err=True)
        raise typer.Exit(2)
    root = directory or Path(tempfile.mkdtemp(prefix="tandem-chaos-"))
    root.mkdir(parents=True, exist_ok=True)
    cfg = ChaosConfig(duration, seed, root.resolve(), clients)
    started = time.monotonic()
    try:
        report = trio.run(run, cfg)
    except (TandemError, BaseExceptionGroup) as exc:
        typer.echo(f"error: seed {seed}: {exc}; files kept in {root}", err=True)
        raise typer.Exit(1) from None
    doc = report.to_json()
    if json_path is not None:
        json_path.write_text(json.dumps(doc, indent=2) + "\n")
    summary = {k: v for k, v in doc.items() if k not in ("schedule", "violations")}
    typer.echo(json.dumps({**summary, "violations": len(report.violations)}))
    typer.echo(f"chaos run took {time.monotonic() - started:.1f} s", err=True)
    if report.violations:
        first = report.violations[0]
        typer.echo(
            f"VIOLATION with seed {seed}: {first.invariant}: {first.evidence} "
            f"({len(report.violations)} in all; files kept in {root})",
            err=True,
        )
        raise typer.Exit(1)
    if directory is None:
        shutil.rmtree(root, ignore_errors=True)
