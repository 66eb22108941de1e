"""Sampling a server under load with py-spy: collapsed stacks on disk, the top frames in JSON.

The collapsed-stack file (one `frame;frame;... count` line per stack) opens in speedscope
or flamegraph.pl; the JSON keeps the frames that own the most samples, so a report shows
what bounds the server without opening anything.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from bench.procs import PeerUnavailable, end_group, require_binary

RATE_HZ = 200
TOP = 15


def top_frames(collapsed: str, top: int = TOP) -> dict[str, Any]:
    """Self and inclusive shares of the busiest frames in collapsed-stack text (pure)."""
    self_counts: Counter[str] = Counter()
    incl_counts: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        self_counts[frames[-1]] += n
        for frame in set(frames):
            incl_counts[frame] += n

    def shares(counts: Counter[str]) -> list[dict[str, Any]]:
        return [{"frame": f, "share": c / total} for f, c in counts.most_common(top)]

    return {"samples": total, "self": shares(self_counts), "inclusive": shares(incl_counts)}


@contextlib.contextmanager
def sampling(
    pid: int, seconds: float, out: Path, shown: str | None = None
) -> Iterator[dict[str, Any]]:
    """Sample `pid` while the block runs (at most `seconds`); fills the yielded dict after.

    The dict gets the top frames (see `top_frames`) and the path of the collapsed stacks
    (`shown`, where the results directory keeps them, else `out`), or the reason there is
    no profile (py-spy missing or not allowed to attach).
    """
    result: dict[str, Any] = {}
    try:
        binary = require_binary("py-spy")
    except PeerUnavailable as exc:
        result["error"] = str(exc)
        yield result
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = [binary, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds)))]
    argv += ["--rate", str(RATE_HZ), "--format", "raw", "--nonblocking", "-o", str(out)]
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    err = b""
    try:
        yield result
        proc.send_signal(signal.SIGINT)  # py-spy writes what it has sampled and exits
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            err = b"py-spy did not finish writing in time"
    finally:
        end_group(proc, grace_s=5.0)
        if proc.stderr is not None:
            proc.stderr.close()
    if out.exists() and out.stat().st_size:
        result.update(top_frames(out.read_text()), collapsed_stacks=shown or str(out))
    else:
        result["error"] = f"py-spy wrote no profile: {err.decode(errors='replace').strip()[-300:]}"


@contextlib.contextmanager
def sampling_each(
    pids: Mapping[str, int], seconds: float, out_dir: Path, shown_dir: str
) -> Iterator[dict[str, dict[str, Any]]]:
    """`sampling` of several processes over the same window, one stacks file each
    (`<name>.collapsed.txt` in `out_dir`, kept by the CLI under `shown_dir`)."""
    with contextlib.ExitStack() as stack:
        yield {
            name: stack.enter_context(
                sampling(
                    pid,
                    seconds,
                    out_dir / f"{name}.collapsed.txt",
                    f"{shown_dir}/{name}.collapsed.txt",
                )
            )
            for name, pid in pids.items()
        }


def note(label: str, profile: Mapping[str, Any], top: int = 8) -> list[str]:
    """A report's note line for one profile: its busiest frames by self time, or why
    there is none (no line when nothing was sampled)."""
    if "self" in profile:
        frames = "; ".join(f"{f['frame']} {f['share']:.0%}" for f in profile["self"][:top])
        return [f"{label} profile ({profile['samples']} samples), top self time: {frames}"]
    if "error" in profile:
        return [f"no {label} profile: {profile['error']}"]
    return []
