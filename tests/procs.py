"""Real processes for end-to-end tests: start a command, wait for its ready line, end it.

    with procs.started(procs.tandem("sequencer", "run", ...)) as p:
        target = p.ready["listen"]

    with procs.sequencer_running(tmp_path / "seq") as seq:   # init + run a sequencer
        client = seq.client()                                # pinned to its genesis
        seq.crash_restart()                                  # kill -9, same dir and port

`started` waits (bounded) for the first stdout line that is a JSON object with
`"event": "ready"` and yields a `Running` holding it. On exit the whole process group gets
SIGTERM, then SIGKILL if it has not ended within `stop_timeout`, so nothing outlives the
test. Stdout after the ready line is collected by a thread (`Running.output()`), and
stderr goes to a temporary file quoted in the failure message if the ready line never comes.
`Proc` is the same for fixtures that keep several servers and stop or kill -9 them one by
one (`tests.network`); `ended()` is the list that stops them all.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import queue
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any, TypedDict, Unpack

from rollup_client.protocol.genesis import Genesis
from rollup_client.protocol.keys import SigningKey
from rollup_client.sdk import SequencerClient, TrioSequencerClient

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


def tandem(*args: str) -> list[str]:
    """argv for the installed `tandem` command (the one beside this Python first)."""
    beside = Path(sys.executable).parent / "tandem"
    found = str(beside) if beside.exists() else shutil.which("tandem")
    assert found, "the tandem command is not installed (pip install -e .)"
    return [found, *args]


class Running:
    """A started process, its ready document, and the rest of its stdout."""

    def __init__(self, popen: subprocess.Popen[bytes], ready: dict[str, Any], rest: bytes) -> None:
        self.popen = popen
        self.ready = ready
        self._out = [rest]
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        out = self.popen.stdout
        assert isinstance(out, io.BufferedIOBase)  # Popen's default buffering
        while chunk := out.read1(65536):
            self._out.append(chunk)

    def output(self) -> str:
        """Stdout after the ready line, as far as it has been read (all of it after `wait`)."""
        return b"".join(self._out).decode(errors="replace")

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit on its own and its stdout to be read; the exit code."""
        code = self.popen.wait(timeout)
        self._reader.join(timeout)
        return code

    def kill(self) -> None:
        """SIGKILL the process group at once (a crash) and reap it."""
        _signal_group(self.popen, signal.SIGKILL)
        self.popen.wait(STOP_TIMEOUT_S)
        self._reader.join(STOP_TIMEOUT_S)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit code."""
        if self.popen.poll() is None:
            _signal_group(self.popen, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(self.popen, signal.SIGKILL)
                self.popen.wait(timeout)
        self._reader.join(timeout)
        return self.popen.returncode


def _signal_group(popen: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(popen.pid, sig)
    except ProcessLookupError:
        return


def _read_ready(
    popen: subprocess.Popen[bytes], err: IO[bytes], timeout: float
) -> tuple[dict[str, Any], bytes]:
    """The ready document and any bytes read after its line; AssertionError if none came."""
    assert popen.stdout is not None
    fd = popen.stdout.fileno()
    deadline = time.monotonic() + timeout
    buf = b""
    while True:
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if isinstance(doc, dict) and doc.get("event") == "ready":
                return doc, buf
        left = deadline - time.monotonic()
        readable = left > 0 and select.select([fd], [], [], left)[0]
        chunk = os.read(fd, 65536) if readable else b""
        if not chunk:
            err.seek(0)
            why = "closed its stdout (exited?)" if readable else f"not ready after {timeout:g}s"
            raise AssertionError(f"{popen.args!r} {why}; stderr:\n{err.read().decode()[-4000:]}")
        buf += chunk


@contextmanager
def started(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    stdin: bool = False,
    ready_timeout: float = READY_TIMEOUT_S,
    stop_timeout: float = STOP_TIMEOUT_S,
) -> Iterator[Running]:
    """Run `argv` in its own process group until the block exits; yield once it is ready.

    With `stdin`, the process reads from a pipe (`Running.popen.stdin`), else /dev/null.
    """
    with tempfile.TemporaryFile() as err:
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            start_new_session=True,
        )
        try:
            ready, rest = _read_ready(popen, err, ready_timeout)
            running = Running(popen, ready, rest)
            try:
                yield running
            finally:
                running.stop(stop_timeout)
        finally:
            if popen.poll() is None:
                _signal_group(popen, signal.SIGKILL)
            popen.wait(stop_timeout)
            for pipe in (popen.stdin, popen.stdout):
                if pipe is not None:
                    pipe.close()


# ---- the sequencer on top of `started` ----------------------------------------------------


class ClientOptions(TypedDict, total=False):
    """What a test may set on a client of `Sequencer`; the rest comes from its genesis."""

    timeout: float


class Sequencer:
    """`tandem sequencer run` on an initialised data dir (metrics off, a short heartbeat).

    `key` is the data dir's dev client key (may write any namespace); `crash_restart`
    kills -9 and serves the same dir on the same address again.
    """

    def __init__(self, data_dir: Path, stack: ExitStack, heartbeat_ms: int) -> None:
        self.heartbeat_ms = heartbeat_ms
        self.data_dir = data_dir
        self.genesis = Genesis.load(data_dir / "genesis.json")
        self.key = SigningKey.load(data_dir / "keys" / "client.pem")
        self._stack = stack
        self.proc = self._start("127.0.0.1:0")
        self.target = self.proc.ready["listen"]

    def _start(self, listen: str) -> Running:
        argv = tandem(
            "sequencer",
            "run",
            "--data-dir",
            str(self.data_dir),
            "--listen",
            listen,
            "--heartbeat-ms",
            str(self.heartbeat_ms),
            "--metrics-listen",
            "",
        )
        return self._stack.enter_context(started(argv))

    def crash_restart(self) -> None:
        """kill -9, then serve the same data dir on the same address."""
        self.proc.kill()
        self.proc = self._start(self.target)
        assert self.proc.ready["listen"] == self.target

    def client(self, **kw: Unpack[ClientOptions]) -> SequencerClient:
        """A sync client pinned to the genesis (chain id and sequencer key)."""
        return SequencerClient(
            self.target,
            self.key,
            chain_id=self.genesis.chain_id,
            sequencer_key=self.genesis.sequencer_key,
            **kw,
        )

    def trio_client(self, **kw: Unpack[ClientOptions]) -> TrioSequencerClient:
        """A trio client pinned to the genesis."""
        return TrioSequencerClient(
            self.target,
            self.key,
            chain_id=self.genesis.chain_id,
            sequencer_key=self.genesis.sequencer_key,
            **kw,
        )


@contextmanager
def sequencer_running(
    data_dir: Path, *, chain_id: str = "tandem-test", heartbeat_ms: int = 50
) -> Iterator[Sequencer]:
    """`tandem sequencer init` a fresh `data_dir`, then run it until the block exits."""
    subprocess.run(
        tandem("sequencer", "init", "--data-dir", str(data_dir), "--chain-id", chain_id),
        check=True,
        capture_output=True,
        timeout=READY_TIMEOUT_S,
    )
    with ExitStack() as stack:
        yield Sequencer(data_dir, stack, heartbeat_ms)


class Proc:
    """A long-lived child in its own session, started at once and ended by `stop()`.

    For fixtures that start several servers and restart or kill -9 them one by one;
    stdout lines are read by a thread, stderr goes to `log`.
    """

    def __init__(self, argv: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.argv = argv
        self.log = log
        self.ready_doc: dict[str, Any] = {}
        log.parent.mkdir(parents=True, exist_ok=True)
        self._err = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._err,
            start_new_session=True,
            env=env,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        assert self.proc.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[bytes]) -> None:
        for raw in stream:
            self._lines.put(raw.decode(errors="replace"))
        self._lines.put(None)

    def ready(self, timeout: float = READY_TIMEOUT_S) -> dict[str, Any]:
        """The JSON ready line, or fail with the process's stderr."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            with contextlib.suppress(json.JSONDecodeError):
                doc = json.loads(line)
                if isinstance(doc, dict) and doc.get("event") == "ready":
                    self.ready_doc = doc
                    return doc
        raise AssertionError(
            f"{' '.join(self.argv[:3])} not ready (exit {self.proc.poll()}):\n"
            + self.log.read_text(errors="replace")[-3000:]
        )

    def kill9(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self, grace: float = 10.0) -> int:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.kill9()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._err.close()
        self._reader.join(timeout=grace)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return self.proc.returncode


@contextmanager
def ended() -> Iterator[list[Proc]]:
    """A list for the `Proc`s a block starts; at exit all are stopped, last first."""
    procs: list[Proc] = []
    try:
        yield procs
    finally:
        for p in reversed(procs):
            p.stop()
