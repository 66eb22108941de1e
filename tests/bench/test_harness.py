"""bench.procs and bench.report: readiness, clean stops, and well-formed result files."""

from __future__ import annotations

import json
import queue
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer

from bench import cli, throughput
from bench.loadgen import LoadFailed, _expect
from bench.peers import redis_streams
from bench.procs import PeerUnavailable, Server, ServerFailed, running
from bench.profile import note, sampling_each, top_frames
from bench.report import Chart, Report, fmt, markdown, write


@pytest.mark.processes
def test_server_ready_line_and_stop(tmp_path: Path) -> None:
    code = "import sys,time; print('booting'); print('READY 4242', flush=True); time.sleep(60)"
    server = Server([sys.executable, "-c", code], tmp_path / "s.log", re.compile(r"READY (\d+)"))
    with running(server, timeout_s=30) as s:
        assert s.ready_match is not None
        assert s.ready_match.group(1) == "4242"
        assert s.ready_at >= s.started_at
    assert server.proc is not None
    assert server.proc.poll() is not None
    assert "booting" in (tmp_path / "s.log").read_text()


@pytest.mark.processes
def test_server_that_dies_before_ready_fails_with_its_log(tmp_path: Path) -> None:
    code = "import sys; print('cannot bind'); sys.exit(3)"
    server = Server([sys.executable, "-c", code], tmp_path / "s.log", re.compile("READY"))
    with pytest.raises(ServerFailed, match="cannot bind"), running(server, timeout_s=30):
        pass
    assert server.proc is not None
    assert server.proc.returncode == 3


def test_cells_and_markdown() -> None:
    assert fmt(None) == "—"
    assert fmt(123456.7) == "123,457"
    assert fmt(1.23456) == "1.23"
    assert fmt(True) == "yes"
    report = Report(
        "demo",
        {"params": {"workers": 4}},
        rows=[{"system": "a", "rate": 1000.0}, {"system": "b", "note": "missing"}],
        notes=["a note"],
        problems=["broken"],
    )
    text = markdown(report)
    assert "| system | rate | note |" in text
    assert "| b | — | missing |" in text
    assert "workers=4" in text
    assert "- a note" in text
    assert "PROBLEM: broken" in text


def test_write_json_markdown_and_png(tmp_path: Path) -> None:
    chart = Chart("rates", "entries/s", {"entries/s": {"tandem": 10.0, "peer": None}})
    report = Report("demo", {"benchmark": "demo", "value": 1.5}, [{"x": 1}], [chart])
    paths = write(report, tmp_path / "out")
    assert [p.name for p in paths] == ["demo.json", "demo.md", "demo.png"]
    assert json.loads(paths[0].read_text()) == {"benchmark": "demo", "value": 1.5}
    assert paths[2].read_bytes().startswith(b"\x89PNG")


@pytest.mark.processes
def test_workers_that_answered_may_exit_before_the_others_answer(tmp_path: Path) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", "pass"]) for _ in range(2)]
    try:
        lines: queue.Queue[tuple[int, str]] = queue.Queue()
        lines.put((0, '{"event": "result", "n": 0}'))
        lines.put((0, ""))
        lines.put((1, '{"event": "result", "n": 1}'))
        docs = _expect(lines, "result", procs, time.monotonic() + 10, tmp_path)
        assert [d["n"] for d in docs] == [0, 1]
        lines.put((1, ""))
        with pytest.raises(LoadFailed, match="worker 1 exited"):
            _expect(lines, "ready", procs, time.monotonic() + 10, tmp_path)
    finally:
        for p in procs:
            p.wait()


def test_top_frames_of_collapsed_stacks() -> None:
    text = "main;serve;fsync 6\nmain;serve;verify 3\nmain;idle 1\nnot a stack line\n"
    top = top_frames(text, top=2)
    assert top["samples"] == 10
    assert top["self"] == [{"frame": "fsync", "share": 0.6}, {"frame": "verify", "share": 0.3}]
    assert top["inclusive"][0] == {"frame": "main", "share": 1.0}
    assert top["inclusive"][1] == {"frame": "serve", "share": 0.9}


@pytest.mark.processes
def test_a_missing_peer_is_a_row_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing(name: str) -> str:
        raise PeerUnavailable(f"{name} not found (run deploy/install-test-deps.sh)")

    monkeypatch.setattr(redis_streams, "require_binary", missing)
    report = throughput.run(throughput.Params.quick(), tmp_path, systems=("redis_streams",))
    row = report.doc["systems"]["redis_streams"]
    assert row["available"] is False
    assert "redis-server not found" in row["reason"]
    assert report.doc["ratios"]["vs_redis_streams"] is None
    assert report.problems == []
    assert "redis-server not found" in markdown(report)


@pytest.mark.processes
def test_tandem_bench_is_python_m_bench() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "deploy", "bench", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    for name in ("sequencer", "latency", "recovery", "state", "swaps", "memory", "all"):
        assert name in run.stdout


def test_a_failing_benchmark_does_not_cost_the_others(tmp_path: Path) -> None:
    def broken(workdir: Path) -> Report:
        raise RuntimeError("server exploded")

    def fine(workdir: Path) -> Report:
        return Report("fine", {"benchmark": "fine", "value": 1})

    jobs: list[tuple[str, cli.Job]] = [("broken", broken), ("fine", fine)]
    with pytest.raises(typer.Exit) as exit_info:
        cli._execute(jobs, tmp_path / "out", None, tmp_path)
    assert exit_info.value.exit_code == 1
    both = json.loads((tmp_path / "out" / "all.json").read_text())
    assert "server exploded" in both["broken"]["error"]
    assert both["fine"]["value"] == 1


@pytest.mark.processes
def test_sampling_each_profiles_every_process_over_one_window(tmp_path: Path) -> None:
    busy = "import time\ndef spin():\n    while True: sum(range(1000))\nspin()"
    procs = {n: subprocess.Popen([sys.executable, "-c", busy]) for n in ("one", "two")}
    try:
        pids = {n: p.pid for n, p in procs.items()}
        with sampling_each(pids, 10, tmp_path, "logs/x") as profiles:
            time.sleep(1.0)
    finally:
        for p in procs.values():
            p.kill()
            p.wait()
    assert set(profiles) == {"one", "two"}
    for name, profile in profiles.items():
        assert "error" not in profile, profile
        assert profile["samples"] > 0
        assert profile["collapsed_stacks"] == f"logs/x/{name}.collapsed.txt"
        assert "spin" in (tmp_path / f"{name}.collapsed.txt").read_text()
        assert any("spin" in f["frame"] for f in profile["inclusive"])
        [line] = note(name, profile)
        assert line.startswith(f"{name} profile ({profile['samples']} samples), top self time: ")
    assert note("x", {"error": "py-spy missing"}) == ["no x profile: py-spy missing"]
    assert note("x", {}) == []
