"""The process helper other end-to-end tests rely on: ready line, failure report, teardown."""

from __future__ import annotations

import os
import select
import sys

import pytest

from tests import procs

pytestmark = pytest.mark.processes

PY = sys.executable


def test_waits_past_other_lines_for_the_ready_line_and_keeps_the_rest() -> None:
    code = (
        "import json, sys\n"
        "print('starting'); print(json.dumps({'event': 'other'}))\n"
        "print(json.dumps({'event': 'ready', 'listen': '127.0.0.1:1'}))\n"
        "print('after', flush=True); sys.stdin.readline(); print('bye')\n"
    )
    with procs.started([PY, "-c", code], stdin=True) as p:
        assert p.ready == {"event": "ready", "listen": "127.0.0.1:1"}
        assert p.popen.stdin is not None
        p.popen.stdin.write(b"\n")
        p.popen.stdin.flush()
        assert p.wait(10) == 0
        assert p.output() == "after\nbye\n"


def test_a_process_that_never_gets_ready_fails_with_its_stderr() -> None:
    code = "import sys; sys.stderr.write('bad config'); sys.exit(3)"
    with pytest.raises(AssertionError, match=r"closed its stdout(.|\n)*bad config"):
        procs.started([PY, "-c", code]).__enter__()
    sleeper = [PY, "-c", "import time; time.sleep(30)"]
    with pytest.raises(AssertionError, match=r"not ready after 0\.2s"):
        procs.started(sleeper, ready_timeout=0.2).__enter__()


def test_teardown_ends_the_whole_group_even_if_sigterm_is_ignored() -> None:
    code = (
        "import json, signal, subprocess, sys\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(json.dumps({'event': 'ready', 'child': child.pid}), flush=True)\n"
        "child.wait()\n"
    )
    with procs.started([PY, "-c", code], stop_timeout=0.5) as p:
        child = p.ready["child"]
    assert p.popen.returncode == -9
    assert _ends_within(child, 5.0), "the grandchild outlived the teardown"


def _ends_within(pid: int, timeout: float) -> bool:
    """True once `pid` has exited (a pidfd becomes readable), within `timeout`."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)
