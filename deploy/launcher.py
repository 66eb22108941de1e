"""Bring a testnet up in dependency order and take it down again, leaving nothing behind.

The sequencer starts first; each rollup node and the coordinator get its address from its
ready line. A process that exits or stays silent stops the whole launch: everything started
so far is stopped and the error carries the tail of the failing process's log.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import sys
from pathlib import Path

import grpc
import trio

from deploy import probe, procs, state, tls
from deploy.config import NetworkConfig, Placement
from deploy.layout import COORDINATOR, SEQUENCER, Layout
from deploy.state import ProcessRecord, TestnetState
from deploy.tls import CLIENT
from rollup_client.protocol.errors import FailedPrecondition, InvalidArgument
from rollup_client.rpc import TlsFiles

READY_TIMEOUT_S = 30.0
GRACE_S = 5.0
LOG_TAIL_LINES = 15


def tandem_argv(place: Placement, *args: str) -> list[str]:
    """The `tandem` CLI run by this very interpreter (no dependency on PATH), inside the
    placement's network namespace when it has one."""
    argv = [sys.executable, "-m", "deploy", *args]
    if not place.netns:
        return argv
    ip = shutil.which("ip")
    if ip is None:
        raise FailedPrecondition(f"netns {place.netns!r} is configured but `ip` is not installed")
    return [ip, "netns", "exec", place.netns, *argv]


def _common(layout: Layout, name: str, key: Path) -> list[str]:
    return [
        "--data-dir",
        str(layout.data_dir(name)),
        "--genesis",
        str(layout.genesis),
        "--key",
        str(key),
    ]


def _tls(tls: TlsFiles | None) -> list[str]:
    """The flags that make a process serve, and dial, mutual TLS only."""
    if tls is None:
        return []
    return ["--tls-ca", str(tls.ca), "--tls-cert", str(tls.cert), "--tls-key", str(tls.key)]


def sequencer_argv(cfg: NetworkConfig, layout: Layout, tls: TlsFiles | None = None) -> list[str]:
    return tandem_argv(
        cfg.sequencer,
        "sequencer",
        "run",
        "--listen",
        cfg.sequencer.listen,
        "--heartbeat-ms",
        str(cfg.heartbeat_ms),
        *_common(layout, SEQUENCER, layout.key(SEQUENCER)),
        *_tls(tls),
    )


def rollup_argv(
    cfg: NetworkConfig,
    layout: Layout,
    rollup_id: str,
    sequencer: str,
    tls: TlsFiles | None = None,
) -> list[str]:
    place = cfg.rollup(rollup_id).place
    return tandem_argv(
        place,
        "rollup",
        "run",
        "--id",
        rollup_id,
        "--sequencer",
        sequencer,
        "--listen",
        place.listen,
        "--snapshot-every",
        str(cfg.snapshot_interval),
        "--attest-every",
        str(cfg.attestation_interval),
        *_common(layout, rollup_id, layout.node_key(rollup_id)),
        *_tls(tls),
    )


def coordinator_argv(
    cfg: NetworkConfig, layout: Layout, sequencer: str, tls: TlsFiles | None = None
) -> list[str]:
    return tandem_argv(
        cfg.coordinator,
        "coordinator",
        "run",
        "--sequencer",
        sequencer,
        "--listen",
        cfg.coordinator.listen,
        *_common(layout, COORDINATOR, layout.key(COORDINATOR)),
        *_tls(tls),
    )


def check_ports(cfg: NetworkConfig) -> None:
    """Fail before starting anything if a fixed port here is taken or configured twice.

    Ports of processes placed in another network namespace are that namespace's business."""
    fixed = [("sequencer", cfg.sequencer), ("coordinator", cfg.coordinator)]
    fixed += [(f"rollups[{i}] ({r.id})", r.place) for i, r in enumerate(cfg.rollups)]
    seen: dict[tuple[str, str, int], str] = {}
    for where, place in fixed:
        if place.port == 0:
            continue
        field = f"{where}.port"
        key = (place.netns, place.host, place.port)
        if key in seen:
            raise InvalidArgument(f"{field}: {place.listen} is also used by {seen[key]}")
        seen[key] = field
        if not place.netns:
            _check_free(place, field)


def _check_free(place: Placement, field: str) -> None:
    with socket.socket(socket.AF_INET6 if ":" in place.host else socket.AF_INET) as s:
        # grpc binds with SO_REUSEADDR too, so a port in TIME_WAIT is not "in use".
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((place.host, place.port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise FailedPrecondition(
                    f"port {place.listen} ({field}) is already in use: stop whatever "
                    "holds it, or set that port to 0 (any free port) in the config"
                ) from exc
            raise FailedPrecondition(f"cannot bind {place.listen} ({field}): {exc}") from exc


def check_not_running(layout: Layout, previous: TestnetState | None) -> None:
    if previous is not None and (running := previous.running()):
        pids = ", ".join(f"{p.name} (pid {p.pid})" for p in running)
        raise FailedPrecondition(
            f"a testnet is already running in {layout.root}: {pids}; "
            f"stop it with `tandem testnet down --dir {layout.root}` or use another --dir"
        )


def _child_env() -> dict[str, str]:
    """Our environment without TANDEM_* settings: a process gets its configuration from its
    flags only, not from whatever testnet the calling shell was pointed at."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}


async def start_process(
    layout: Layout,
    name: str,
    role: str,
    argv: list[str],
    key: Path,
    started: list[procs.Handle],
    timeout_s: float = READY_TIMEOUT_S,
    credentials: grpc.ChannelCredentials | None = None,
) -> ProcessRecord:
    """Spawn one process and return once it printed its ready line and reports SERVING
    (asked with `credentials` when it serves mutual TLS).

    Its handle goes into `started` at once, so the caller can stop it whatever happens next.
    """
    log = layout.log(name)
    layout.data_dir(name).mkdir(parents=True, exist_ok=True)
    offset = log.stat().st_size if log.exists() else 0
    handle = procs.spawn(argv, log, _child_env())
    started.append(handle)
    with trio.move_on_after(timeout_s):
        while (ready := procs.find_ready(log, offset)) is None:
            code = procs.exit_code(handle.pid)
            if code is not None:
                raise FailedPrecondition(
                    f"{name} exited with code {code} before it was ready; "
                    f"last lines of {log}:\n{procs.tail(log, LOG_TAIL_LINES, offset)}"
                )
            await trio.sleep(procs.POLL_S)
        listen = str(ready["listen"])
        # Polled: the health status lives in the child process.
        while not await trio.to_thread.run_sync(probe.serving, listen, 1.0, credentials):  # noqa: ASYNC110
            await trio.sleep(procs.POLL_S)
        return ProcessRecord(
            name,
            role,
            handle.pid,
            handle.start_time,
            listen,
            str(log),
            str(layout.data_dir(name)),
            str(key),
            argv,
        )
    raise FailedPrecondition(
        f"{name} did not report ready within {timeout_s:.0f} s; "
        f"last lines of {log}:\n{procs.tail(log, LOG_TAIL_LINES, offset)}"
    )


async def launch(
    cfg: NetworkConfig,
    layout: Layout,
    started: list[procs.Handle],
    certs: dict[str, TlsFiles] | None = None,
) -> list[ProcessRecord]:
    """Start the sequencer, then every rollup node and the coordinator (in parallel).

    With `certs` (process name -> files, as tls.issue_all makes them) every process serves
    and dials mutual TLS only, and readiness is probed with the client certificate."""
    certs = certs or {}
    client = certs.get(CLIENT)
    creds = client.channel_credentials() if client else None
    seq = await start_process(
        layout,
        SEQUENCER,
        "sequencer",
        sequencer_argv(cfg, layout, certs.get(SEQUENCER)),
        layout.key(SEQUENCER),
        started,
        credentials=creds,
    )
    records: dict[str, ProcessRecord] = {}

    async def one(name: str, role: str, argv: list[str], key: Path) -> None:
        records[name] = await start_process(
            layout, name, role, argv, key, started, credentials=creds
        )

    async with trio.open_nursery() as nursery:
        for r in cfg.rollups:
            argv = rollup_argv(cfg, layout, r.id, seq.listen, certs.get(r.id))
            nursery.start_soon(one, r.id, "rollup", argv, layout.node_key(r.id))
        argv = coordinator_argv(cfg, layout, seq.listen, certs.get(COORDINATOR))
        nursery.start_soon(one, COORDINATOR, "coordinator", argv, layout.key(COORDINATOR))
    order = [r.id for r in cfg.rollups] + [COORDINATOR]
    return [seq, *(records[n] for n in order)]


async def stop_all(records: list[ProcessRecord], grace_s: float = GRACE_S) -> None:
    """Stop dependents first, then the sequencer, so nobody logs a lost sequencer on the way.

    Another Ctrl-C or SIGTERM meanwhile is held back: stopping must finish, or processes leak."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM), trio.CancelScope(shield=True):
        await procs.stop([p.handle for p in records if p.role != "sequencer"], grace_s)
        await procs.stop([p.handle for p in records if p.role == "sequencer"], grace_s)


async def up(
    cfg: NetworkConfig,
    layout: Layout,
    accounts: dict[str, str],
    certs: dict[str, TlsFiles] | None = None,
) -> TestnetState:
    """Start every process and record them in testnet.json; on any failure stop them all.

    With `certs` (see `launch`) the testnet runs mutual TLS only."""
    check_not_running(layout, state.load(layout))
    check_ports(cfg)
    started: list[procs.Handle] = []
    records: list[ProcessRecord] = []
    try:
        with trio.open_signal_receiver(signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:

                async def on_signal() -> None:
                    async for _ in signals:
                        nursery.cancel_scope.cancel()

                nursery.start_soon(on_signal)
                records = await launch(cfg, layout, started, certs)
                nursery.cancel_scope.cancel()
        if not records:
            raise FailedPrecondition("interrupted by SIGTERM while starting")
    except BaseException:
        with trio.CancelScope(shield=True):
            await procs.stop(started, GRACE_S)
        raise
    testnet = TestnetState(
        cfg.chain_id,
        str(layout.genesis),
        str(layout.keys_dir),
        records,
        accounts,
        tls_dir=str(tls.directory(layout)) if certs else "",
    )
    state.save(layout, testnet)
    return testnet
