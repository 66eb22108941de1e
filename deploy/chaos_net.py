"""The chaos testnet: three rollups and six funded accounts on fixed free ports (a process
restarted in place comes back at the same address), and the faults done to its processes."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import trio

from deploy import chaos_core, config, launcher, procs
from deploy.chaos_core import Fault, Violation
from deploy.layout import Layout
from deploy.state import ProcessRecord
from rollup_client.protocol.errors import TandemError

ROLLUPS = ("rollup-a", "rollup-b", "rollup-c")
ASSETS = ("USD", "EUR")
ACCOUNTS = tuple(f"acct{i}" for i in range(6))
FUNDS = 1_000


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
            "sequencer": {"port": procs.free_port(host)},
            "coordinator": {"port": procs.free_port(host)},
            "rollups": [
                {"id": r, "assets": list(ASSETS), "port": procs.free_port(host)} for r in ROLLUPS
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
