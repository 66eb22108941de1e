"""Child processes of a benchmark: servers and load generators on loopback.

Every child runs in its own process group and is ended by the context that started it,
so a benchmark never leaves a process behind, even when it fails half way.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

LOOPBACK = "127.0.0.1"


class PeerUnavailable(Exception):
    """A peer cannot run here (its binary or client library is missing)."""


class ServerFailed(Exception):
    """A server exited or stayed silent before it reported ready."""


def free_port() -> int:
    """A TCP port on loopback that was free a moment ago, for servers that cannot bind 0."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        port: int = s.getsockname()[1]
        return port


def require_binary(name: str) -> str:
    """Absolute path of executable `name`, or PeerUnavailable naming the install script."""
    found = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.exists()), None
    )
    if found is None:
        raise PeerUnavailable(f"{name} not found (run deploy/install-test-deps.sh)")
    return found


def tandem_command() -> list[str]:
    """argv prefix of the `tandem` CLI run by this very interpreter (no PATH lookup)."""
    return [sys.executable, "-m", "deploy"]


def rss_bytes(pid: int) -> int:
    """Resident set size of process `pid` from /proc, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise ProcessLookupError(pid)


def peak_rss_bytes(pid: int) -> int:
    """Peak resident set size (VmHWM) of process `pid`, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise ProcessLookupError(pid)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time process `pid` has used so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def end_group(proc: subprocess.Popen[bytes], grace_s: float) -> int | None:
    """SIGTERM the child's process group, wait up to `grace_s`, then SIGKILL what is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return proc.returncode


class Server:
    """A running server whose merged output is copied to `log_path` by a drain thread."""

    def __init__(self, argv: Sequence[str], log_path: Path, ready: re.Pattern[str]) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self._ready_re = ready
        self._ready = threading.Event()
        self.ready_match: re.Match[str] | None = None
        self.started_at = 0.0
        self.ready_at = 0.0
        self.proc: subprocess.Popen[bytes] | None = None
        self._drain: threading.Thread | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None, "server not started"
        return self.proc.pid

    def start(self, timeout_s: float) -> re.Match[str]:
        """Spawn the server and block until its ready line appears (or fail with its log)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        self._drain = threading.Thread(
            target=self._copy, args=(self.proc.stdout,), name="bench-drain", daemon=True
        )
        self._drain.start()
        if not self._ready.wait(timeout_s) or self.ready_match is None:
            raise ServerFailed(
                f"{' '.join(self.argv[:3])} not ready within {timeout_s:.0f} s "
                f"(exit {self.proc.poll()}); log {self.log_path}:\n{self.log_tail()}"
            )
        return self.ready_match

    def _copy(self, stream: IO[bytes]) -> None:
        with stream, open(self.log_path, "ab") as log:
            for raw in stream:
                log.write(raw)
                log.flush()
                if self.ready_match is None:
                    m = self._ready_re.search(raw.decode(errors="replace"))
                    if m is not None:
                        self.ready_at = time.perf_counter()
                        self.ready_match = m
                        self._ready.set()
        self._ready.set()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, grace_s: float = 10.0) -> int | None:
        """End the server's process group; returns its exit code."""
        if self.proc is None:
            return None
        code = end_group(self.proc, grace_s)
        if self._drain is not None:
            self._drain.join(timeout=grace_s)
        return code


@contextlib.contextmanager
def running(server: Server, timeout_s: float = 30.0) -> Iterator[Server]:
    """`server` started, and stopped when the block exits, however it exits."""
    try:
        server.start(timeout_s)
        yield server
    finally:
        server.stop()
