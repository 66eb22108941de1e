"""`tandem demo`: a whole network on this machine, one swap that commits and one that aborts.

Everything is real: the sequencer, three rollup nodes and the coordinator run as processes in
a temporary directory, every payer signs with its own key, and each outcome is decided by
the log and then recomputed from it by an independent audit. Nothing is left running.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import trio
import typer
from rich.console import Console
from rich.table import Table

from deploy import launcher, tls
from deploy.layout import Layout
from deploy.state import TestnetState
from deploy.testnet_cli import bring_up
from rollup_client.protocol import swap
from rollup_client.protocol.errors import DeadlineExceeded, FailedPrecondition, Unavailable
from rollup_client.protocol.genesis import Genesis
from rollup_client.protocol.keys import SigningKey
from rollup_client.rpc.cli import cli_errors
from rollup_client.sdk import RollupClient
from rollup_client.wire import swap_pb2 as pb
from swap_coordinator.audit import audit
from swap_coordinator.client import SwapClient

ROLLUPS = 3
SWAP_TIMEOUT_S = 10.0
CALL_TIMEOUT_S = 10.0
SETTLE_TIMEOUT_S = 10.0
POLL_S = 0.05
ACCOUNTS = ("alice", "bob", "carol")
FINAL = {pb.SWAP_STATE_COMMITTED: "COMMITTED", pb.SWAP_STATE_ABORTED: "ABORTED"}


@dataclass(frozen=True)
class Payment:
    """One leg in names: `payer` pays `amount` `asset` to `payee` on `rollup`."""

    rollup: str
    payer: str
    payee: str
    amount: int
    asset: str

    def __str__(self) -> str:
        return f"{self.payer} pays {self.payee} {self.amount} {self.asset} on {self.rollup}"


# Three legs, everyone funded: every rollup votes YES.
COMMITTING = (
    Payment("rollup-a", "alice", "bob", 10, "USD"),
    Payment("rollup-b", "bob", "alice", 5, "EUR"),
    Payment("rollup-c", "carol", "alice", 20, "GBP"),
)
# carol holds only 10 USD on rollup-a: that rollup votes NO, so rollup-b refunds bob too.
ABORTING = (
    Payment("rollup-a", "carol", "bob", 500, "USD"),
    Payment("rollup-b", "bob", "carol", 50, "EUR"),
)


# (account, rollup) -> asset -> amount
Balances = dict[tuple[str, str], dict[str, int]]


class Demo:
    def __init__(self, testnet: TestnetState, console: Console) -> None:
        self.testnet = testnet
        self.out = console
        self.keys = {n: SigningKey.load(Path(testnet.accounts[n])) for n in ACCOUNTS}
        self.genesis = Genesis.load(Path(testnet.genesis))
        self.credentials = tls.client_credentials(testnet)

    def node(self, addr: str) -> RollupClient:
        return RollupClient(addr, timeout=CALL_TIMEOUT_S, credentials=self.credentials)

    def balances(self) -> Balances:
        """(account, rollup) -> asset -> amount, read from each rollup node."""
        found = {}
        for rid, addr in self.testnet.rollups().items():
            with self.node(addr) as node:
                for name, key in self.keys.items():
                    found[(name, rid)] = node.balances(key.public)
        return found

    def show_balances(self, title: str, now: Balances, before: Balances | None = None) -> None:
        table = Table(title=title, title_justify="left")
        table.add_column("account")
        rollups = list(self.testnet.rollups())
        for rid in rollups:
            table.add_column(rid)
        for name in ACCOUNTS:
            cells = []
            for rid in rollups:
                parts = []
                for asset, amount in sorted(now[(name, rid)].items()):
                    delta = amount - (before or now)[(name, rid)].get(asset, 0)
                    if amount or delta:
                        change = f" ({delta:+d})" if delta else ""
                        parts.append(f"{amount} {asset}{change}")
                cells.append(", ".join(parts) or "-")
            table.add_row(name, *cells)
        self.out.print(table)

    def run_swap(self, payments: tuple[Payment, ...]) -> pb.SwapStatus:
        """Propose, have every payer sign with its own key, and follow it until decided."""
        legs = [
            swap.Leg(
                p.rollup, self.keys[p.payer].public, self.keys[p.payee].public, p.asset, p.amount
            )
            for p in payments
        ]
        for p in payments:
            self.out.print(f"  leg: {p}")
        with SwapClient(
            self.testnet.coordinator, timeout=CALL_TIMEOUT_S, credentials=self.credentials
        ) as client:
            proposed = client.propose(legs, timeout_ms=int(SWAP_TIMEOUT_S * 1000))
            self.out.print(
                f"  swap {proposed.swap_id.hex()[:16]}..., deadline in {SWAP_TIMEOUT_S:.0f} s "
                "of log time"
            )
            for name in dict.fromkeys(p.payer for p in payments):
                key = self.keys[name]
                client.sign(proposed.swap_id, key.public, key.sign(proposed.signing_bytes))
                self.out.print(f"  signed by {name}")
            return _until_final(client, proposed.swap_id, SWAP_TIMEOUT_S + 10)

    def settled(self, height: int) -> None:
        """Wait until every rollup node has applied block `height`, where the last swap was
        decided, so the balances shown include its settlement."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        for rid, addr in self.testnet.rollups().items():
            with self.node(addr) as node:
                while node.status().height < height:
                    if time.monotonic() > deadline:
                        raise DeadlineExceeded(f"{rid} did not apply block {height} in time")
                    time.sleep(POLL_S)

    def audit(self, swap_id: bytes) -> bool:
        """Recompute the outcome from the raw log and check escrow on every rollup."""
        result = audit(
            swap_id,
            self.genesis,
            self.testnet.sequencer,
            self.testnet.rollups(),
            CALL_TIMEOUT_S,
            self.credentials,
        )
        doc = result.to_json()
        self.out.print(f"  audit from the log: {doc['outcome']} ({doc['reason']})")
        for rid, row in doc["rollups"].items():
            vote = row["vote"] or "none (decided before it voted)"
            self.out.print(f"    {rid}: vote {vote}, escrow {row.get('check', row.get('escrow'))}")
        for problem in result.problems:
            self.out.print(f"    [red]PROBLEM[/red]: {problem}")
        return not result.problems


def _until_final(client: SwapClient, swap_id: bytes, timeout: float) -> pb.SwapStatus:
    end = time.monotonic() + timeout
    last = client.get(swap_id)
    while last.state not in FINAL and (left := end - time.monotonic()) > 0:
        try:
            for status in client.watch(swap_id, left):
                last = status
                if last.state in FINAL:
                    break
        except (Unavailable, DeadlineExceeded):
            break
    return last


def outcome(status: pb.SwapStatus) -> str:
    return FINAL.get(status.state, pb.SwapState.Name(status.state))


def play(testnet: TestnetState, console: Console) -> bool:
    """The demo proper on a running testnet; True when both swaps ended as they should."""
    demo = Demo(testnet, console)
    start = demo.balances()
    demo.show_balances("balances at genesis", start)

    console.rule("swap 1: three legs on three rollups, everyone can pay")
    first = demo.run_swap(COMMITTING)
    console.print(f"  outcome: [bold green]{outcome(first)}[/bold green] ({first.reason})")
    ok = outcome(first) == "COMMITTED" and demo.audit(first.swap_id)

    console.rule("swap 2: carol is short of USD on rollup-a")
    second = demo.run_swap(ABORTING)
    console.print(f"  outcome: [bold red]{outcome(second)}[/bold red] ({second.reason})")
    ok = outcome(second) == "ABORTED" and demo.audit(second.swap_id) and ok

    demo.settled(max(first.decision_position.height, second.decision_position.height))
    end = demo.balances()
    demo.show_balances("balances after both swaps (change since genesis)", end, start)
    wrong = _differences(end, expected(start, COMMITTING))
    if wrong:
        console.print(f"[red]not what the committed swap alone explains: {sorted(wrong)}[/red]")
        return False
    return ok


def _differences(a: Balances, b: Balances) -> set[str]:
    """Every (account, rollup, asset) whose amount differs, a missing asset counting as 0."""
    return {
        f"{name} {asset} on {rid}: {a[(name, rid)].get(asset, 0)} != {b[(name, rid)].get(asset, 0)}"
        for (name, rid) in a.keys() | b.keys()
        for asset in a.get((name, rid), {}).keys() | b.get((name, rid), {}).keys()
        if a.get((name, rid), {}).get(asset, 0) != b.get((name, rid), {}).get(asset, 0)
    }


def expected(start: Balances, committed: tuple[Payment, ...]) -> Balances:
    """`start` with every payment of `committed` made (an aborted swap changes nothing)."""
    out = {k: dict(v) for k, v in start.items()}
    for p in committed:
        out[(p.payer, p.rollup)][p.asset] -= p.amount
        out[(p.payee, p.rollup)][p.asset] = out[(p.payee, p.rollup)].get(p.asset, 0) + p.amount
    return out


def run(
    console: Console, directory: Path | None = None, keep: bool = False, mutual_tls: bool = False
) -> None:
    """Bring a testnet up in `directory` (a new temporary one by default), play, and take
    everything down; the directory is removed after a success unless `keep`."""
    if directory is not None and directory.exists() and any(directory.iterdir()):
        raise FailedPrecondition(f"{directory} is not empty: the demo needs a fresh directory")
    root = directory or Path(tempfile.mkdtemp(prefix="tandem-demo-"))
    layout = Layout(root)
    over = " over mutual TLS" if mutual_tls else ""
    console.print(f"starting a {ROLLUPS}-rollup testnet{over} in {root} ...")
    began = time.monotonic()
    testnet: TestnetState | None = None
    ok = False
    try:
        testnet = bring_up(layout, None, ROLLUPS, mutual_tls)
        console.print(
            f"up in {time.monotonic() - began:.1f} s: "
            + ", ".join(f"{p.name} {p.listen}" for p in testnet.processes)
        )
        ok = play(testnet, console)
    finally:
        if testnet is not None:
            trio.run(launcher.stop_all, testnet.processes)
            console.print("testnet stopped, no process left")
        if ok and not keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            console.print(f"logs and data kept in {root}")
    if not ok:
        raise FailedPrecondition("the demo did not end as expected: see the logs above")
    console.print(f"demo finished in {time.monotonic() - began:.1f} s")


def command(
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Fresh directory [default: a temporary one]")
    ] = None,
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the testnet directory (logs, data)")
    ] = False,
    mutual_tls: Annotated[
        bool, typer.Option("--tls", help="Every process and client on mutual TLS only")
    ] = False,
) -> None:
    """Bring up a 3-rollup testnet, run a swap that commits and one that aborts, tear down."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM cleans up like Ctrl-C
    with cli_errors():
        run(Console(highlight=False), directory, keep, mutual_tls)
