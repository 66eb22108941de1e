"""Child processes of a testnet: spawn detached, recognise by (pid, start time), stop for good.

Processes start in their own session with stdout and stderr appended to a log file, so they
can outlive the CLI (`--detach`) and are found again later from testnet.json. A pid alone
can be reused by the system, so every record carries the kernel's start time of the process.
"""

from __future__ import annotations

import json
import os
import signal
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

POLL_S = 0.05


@dataclass(frozen=True)
class Handle:
    """A process we started: pid plus its start time, which together identify it."""

    pid: int
    start_time: int


def spawn(argv: list[str], log: Path, env: dict[str, str] | None = None) -> Handle:
    """Start `argv` in a new session, stdin from /dev/null, stdout+stderr appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    pid = os.posix_spawn(
        argv[0], argv, dict(os.environ if env is None else env), file_actions=actions, setsid=True
    )
    start = start_time(pid)
    return Handle(pid, start if start is not None else 0)


def free_port(host: str) -> int:
    """A TCP port on `host` that was free a moment ago, for servers that cannot bind port 0."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 2 (comm) is parenthesised and may hold spaces: split after its closing paren.
    return raw[raw.rindex(")") + 2 :].split()


def start_time(pid: int) -> int | None:
    """The kernel's start time of `pid` (clock ticks since boot), None if it is gone."""
    fields = _stat(pid)
    return int(fields[19]) if fields else None


# Exit codes of our children collected so far (waitpid hands each out only once).
_exited: dict[int, int] = {}


def exit_code(pid: int) -> int | None:
    """Our child's exit code once it has exited (negative: killed by that signal), else None.

    For a process that is not our child (a detached testnet), 0 once it is gone."""
    if pid in _exited:
        return _exited[pid]
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        fields = _stat(pid)
        return None if fields and fields[0] not in ("Z", "X") else 0
    if not done:
        return None
    _exited[pid] = os.waitstatus_to_exitcode(status)
    return _exited[pid]


def alive(handle: Handle) -> bool:
    """True while the process `handle` names runs (zombies and reused pids count as gone)."""
    exit_code(handle.pid)  # reap it if it is our exited child
    fields = _stat(handle.pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    return handle.start_time == 0 or int(fields[19]) == handle.start_time


def _signal(handle: Handle, sig: signal.Signals) -> None:
    if not alive(handle):
        return
    try:
        os.killpg(handle.pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(handle.pid, sig)


async def stop(handles: list[Handle], grace_s: float) -> None:
    """SIGTERM to each process group, up to `grace_s` to exit, then SIGKILL; returns when gone."""
    for h in handles:
        _signal(h, signal.SIGTERM)
    with trio.move_on_after(grace_s):
        await gone(handles)
    for h in handles:
        _signal(h, signal.SIGKILL)
    # SIGKILL cannot be refused; this only waits for the kernel to tear the process down.
    with trio.fail_after(10):
        await gone(handles)


async def gone(handles: list[Handle], every_s: float = POLL_S) -> None:
    """Return once none of `handles` is alive (unbounded: the caller sets the deadline)."""
    # Polled: they need not be our children, so nothing in this process learns of an exit
    # that could set a trio.Event.
    while any(alive(h) for h in handles):  # noqa: ASYNC110
        await trio.sleep(every_s)


def parse_ready(line: str) -> dict[str, Any] | None:
    """The ready event on one stdout line, or None for any other line."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        doc = json.loads(line)
    except json.JSONDecodeError:
        return None
    if isinstance(doc, dict) and doc.get("event") == "ready" and isinstance(doc.get("listen"), str):
        return doc
    return None


def find_ready(log: Path, offset: int) -> dict[str, Any] | None:
    """The first ready line written to `log` after byte `offset`, if any yet."""
    try:
        with log.open("rb") as f:
            f.seek(offset)
            data = f.read()
    except OSError:
        return None
    for raw in data.split(b"\n")[:-1]:  # the last piece may be a line still being written
        ready = parse_ready(raw.decode(errors="replace"))
        if ready is not None:
            return ready
    return None


def tail(log: Path, lines: int = 20, offset: int = 0) -> str:
    """The last `lines` lines of `log` written after byte `offset`."""
    try:
        with log.open("rb") as f:
            f.seek(offset)
            data = f.read()
    except OSError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])
