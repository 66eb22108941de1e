"""Ready-line parsing and log reading used to wait for a process (no processes here)."""

from __future__ import annotations

from pathlib import Path

from deploy import procs


def test_parse_ready() -> None:
    assert procs.parse_ready('{"event": "ready", "listen": "127.0.0.1:5"}\n') == {
        "event": "ready",
        "listen": "127.0.0.1:5",
    }
    assert procs.parse_ready('{"event": "started"}') is None
    assert procs.parse_ready('{"event": "ready", "listen": 5}') is None
    assert procs.parse_ready("ready") is None
    assert procs.parse_ready("{not json") is None


def test_find_ready_only_after_offset_and_whole_lines(tmp_path: Path) -> None:
    log = tmp_path / "p.log"
    old = b'{"event": "ready", "listen": "h:1"}\n'
    log.write_bytes(old + b"noise\n" + b'{"event": "ready", "listen": "h:2"}')
    assert procs.find_ready(log, len(old)) is None  # the new line is not finished yet
    with log.open("ab") as f:
        f.write(b"\n")
    assert procs.find_ready(log, len(old)) == {"event": "ready", "listen": "h:2"}
    assert procs.find_ready(tmp_path / "missing.log", 0) is None


def test_tail(tmp_path: Path) -> None:
    log = tmp_path / "p.log"
    log.write_text("".join(f"line {i}\n" for i in range(30)))
    assert procs.tail(log, 2) == "line 28\nline 29"
    assert procs.tail(tmp_path / "missing.log") == ""
