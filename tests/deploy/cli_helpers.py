"""Running the `tandem` CLI as a real process from tests, with a bound on every wait."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner, Result

from deploy.testnet_cli import app as testnet_app

CLI_TIMEOUT_S = 60.0
POLL_S = 0.05


def tandem(
    *args: str, check: bool = True, timeout: float = CLI_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """Run `tandem ARGS...`; with `check`, fail the test (showing stderr) unless it exits 0."""
    done = subprocess.run(
        [sys.executable, "-m", "deploy", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check:
        assert done.returncode == 0, f"tandem {' '.join(args)} -> {done.returncode}\n{done.stderr}"
    return done


def inprocess(*args: str, code: int = 0) -> Result:
    """`tandem testnet ARGS` in this process (no interpreter start-up): for the commands that
    only read (status, logs, accounts) or fail early; `up` and `down` run as real processes."""
    result = CliRunner().invoke(testnet_app, list(args))
    assert result.exit_code == code, f"tandem testnet {' '.join(args)}: {result.output}"
    return result


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Return once `condition()` holds; fail the test naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(POLL_S)


def processes_under(root: Path) -> list[str]:
    """Command lines of live processes started for the testnet in `root` (their args name it)."""
    out = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if str(root) in cmdline:
                out.append(cmdline)
    return out
