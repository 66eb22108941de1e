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
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import grpc
import trio
import typer

from deploy import chaos_core, config, genesis_gen, launcher, procs
from deploy.chaos_core import Acked, Fault, Reference, Violation
from deploy.layout import COORDINATOR, SEQUENCER, Layout
from deploy.state import ProcessRecord
from rollup_client.protocol import block, swap
from rollup_client.protocol.errors import FailedPrecondition, TandemError, VerificationError
from rollup_client.protocol.genesis import Genesis
from rollup_client.sdk.rollup import RollupClient, channel_options
from rollup_client.wire import sequencer_pb2 as pb
from rollup_client.wire import sequencer_pb2_grpc as pb_grpc
from rollup_client.wire import swap_pb2 as spb
from swap_coordinator.client import SwapClient

ROLLUPS = ("rollup-a", "rollup-b", "rollup-c")
ASSETS = ("USD", "EUR")
ACCOUNTS = tuple(f"acct{i}" for i in range(6))
FUNDS = 1_000
CALL_TIMEOUT_S = 5.0
SETTLE_TIMEOUT_S = 90.0
POLL_S = 0.1
FINAL = {spb.SWAP_STATE_COMMITTED: "committed", spb.SWAP_STATE_ABORTED: "aborted"}


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


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def network(heartbeat_ms: int) -> config.NetworkConfig:
    """Three rollups, six funded accounts, a fixed free port for every process."""
    host = "127.0.0.1"
    return config.parse(
        {
            "chain_id": "tandem-chaos",
            "host": host,
            "heartbeat_ms": heartbeat_ms,
            "snapshot_interval": 25,
            "attestation_interval": 20,
            "sequencer": {"port": _free_port(host)},
            "coordinator": {"port": _free_port(host)},
            "rollups": [
                {"id": r, "assets": list(ASSETS), "port": _free_port(host)} for r in ROLLUPS
            ],
            "accounts": {
                a: {r: {asset: FUNDS for asset in ASSETS} for r in ROLLUPS} for a in ACCOUNTS
            },
        }
    )


class Net:
    """The running processes by name; kills, stops and restarts them in place."""

    def __init__(self, layout: Layout, records: list[ProcessRecord]) -> None:
        self.layout = layout
        self.records = {r.name: r for r in records}
        self.started: list[procs.Handle] = [r.handle for r in records]
        self.violations: list[Violation] = []

    def addr(self, name: str) -> str:
        return self.records[name].listen

    async def fault(self, f: Fault) -> None:
        rec = self.records[f.target]
        if f.kind == chaos_core.STOP:
            _group(rec, signal.SIGSTOP)
            await trio.sleep(f.hold_s)
            _group(rec, signal.SIGCONT)
            return
        _group(rec, signal.SIGKILL)
        with trio.fail_after(10):
            await procs.gone([rec.handle])
        await trio.sleep(f.hold_s)
        await self.restart(rec)

    async def restart(self, rec: ProcessRecord) -> None:
        try:
            self.records[rec.name] = await launcher.start_process(
                self.layout, rec.name, rec.role, rec.argv, Path(rec.key), self.started
            )
        except TandemError as exc:
            self.violations.append(Violation("restart", f"{rec.name} did not come back: {exc}"))

    async def heal(self) -> None:
        """Continue every process and restart any that is gone."""
        for rec in list(self.records.values()):
            if procs.alive(rec.handle):
                _group(rec, signal.SIGCONT)
            else:
                await self.restart(rec)

    async def stop(self) -> None:
        await launcher.stop_all(list(self.records.values()))
        await procs.stop(self.started, launcher.GRACE_S)


def _group(rec: ProcessRecord, sig: signal.Signals) -> None:
    if procs.alive(rec.handle):
        try:
            os.killpg(rec.pid, sig)
        except ProcessLookupError:
            return


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


@contextmanager
def _stub(addr: str) -> Iterator[pb_grpc.SequencerServiceStub]:
    with grpc.insecure_channel(addr, options=channel_options()) as ch:
        yield pb_grpc.SequencerServiceStub(ch)


def _settled(net: Net, after_ms: int) -> int | None:
    """The sequencer height once log time passed `after_ms` and every node reached it."""
    try:
        with _stub(net.addr(SEQUENCER)) as seq:
            head = seq.Status(pb.StatusRequest(), timeout=CALL_TIMEOUT_S)
        if head.head_time_ms <= after_ms:
            return None
        for r in ROLLUPS:
            with RollupClient(net.addr(r), timeout=CALL_TIMEOUT_S) as c:
                if c.status().height < head.height:
                    return None
    except (grpc.RpcError, TandemError):
        return None
    return int(head.height)


async def settle(net: Net, swaps: dict[bytes, int]) -> int:
    """Wait (bounded) until every deadline passed and every node caught up; that height."""
    after = max(swaps.values(), default=0) + 1_000
    with trio.move_on_after(SETTLE_TIMEOUT_S):
        # Polled: log time and the nodes' heights live in other processes.
        while (height := await trio.to_thread.run_sync(_settled, net, after)) is None:  # noqa: ASYNC110
            await trio.sleep(POLL_S)
        return height
    raise FailedPrecondition("the network did not settle: log time or a node stopped advancing")


def read_log(
    addr: str, genesis: Genesis, height: int
) -> tuple[list[block.VerifiedBlock], list[Violation]]:
    """Blocks 0..height, each verified (signature, proofs, completeness)."""
    blocks: list[block.VerifiedBlock] = []
    bad: list[Violation] = []
    with _stub(addr) as seq:
        for h in range(height + 1):
            fb = seq.GetBlock(
                pb.GetBlockRequest(height=h, all_namespaces=True), timeout=CALL_TIMEOUT_S
            )
            try:
                blocks.append(block.verify_block(fb.block, genesis.sequencer_key, None))
            except VerificationError as exc:
                bad.append(Violation("log-verifies", str(exc)))
                break
    return blocks, bad


def _placed(st: spb.SwapStatus) -> chaos_core.Placed:
    intent = (st.intent_position.height, st.intent_position.index) if st.ordered else None
    at = st.decision_position
    index = swap.BLOCK_START if st.decision_at_block_start else at.index
    return chaos_core.Placed(st.swap_id, intent, (at.height, index) if st.decided else None)


def live_views(
    net: Net, genesis: Genesis, height: int, swaps: dict[bytes, int]
) -> tuple[
    dict[str, tuple[int, bytes]],
    dict[tuple[str, bytes, str], int],
    list[tuple[bytes, str]],
    list[chaos_core.Placed],
    list[Violation],
]:
    """What the live servers report: roots at `height`, balances, outcomes, escrow left."""
    roots: dict[str, tuple[int, bytes]] = {}
    balances: dict[tuple[str, bytes, str], int] = {}
    left: list[Violation] = []
    keys = [k for r in genesis.rollups for k in r.balances]
    for r in ROLLUPS:
        with RollupClient(net.addr(r), timeout=CALL_TIMEOUT_S) as c:
            roots[r] = (height, c.state_root(height).state_root)
            for account in set(keys):
                for asset, amount in c.balances(account).items():
                    balances[(r, account, asset)] = amount
            for sid in swaps:
                if c.escrow(sid):
                    left.append(
                        Violation(
                            "escrow-past-deadline", f"{r} still holds escrow for {sid.hex()[:16]}"
                        )
                    )
    reported: list[tuple[bytes, str]] = []
    placed: list[chaos_core.Placed] = []
    with SwapClient(net.addr(COORDINATOR), timeout=CALL_TIMEOUT_S) as coord:
        for sid in swaps:
            try:
                st = coord.get(sid)
            except TandemError:
                continue  # proposed while the coordinator was being killed: never stored
            if st.state in FINAL:
                reported.append((sid, FINAL[st.state]))
            placed.append(_placed(st))
    return roots, balances, reported, placed, left


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
