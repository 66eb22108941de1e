"""bench.worker.drive: the timed window, pacing and error counting, on a fake clock."""

from __future__ import annotations

from typing import Any

from bench.worker import MAX_ERRORS, Payloads, drive


class FakeTime:
    """A clock that only moves when the driven system takes time or the worker sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


def spec(**kw: Any) -> dict[str, Any]:
    return {"batch": 10, "warmup_s": 0.5, "duration_s": 2.0, **kw}


def test_closed_loop_counts_only_the_window() -> None:
    t = FakeTime()
    sent: list[list[bytes]] = []

    def send(batch: list[bytes]) -> None:
        sent.append(batch)
        t.now += 0.1

    out = drive(spec(), send, Payloads(3, 200, b"n" * 8), t.clock, t.sleep)
    warm = 5  # 0.5 s of warm-up at 0.1 s per batch
    assert out["batches"] == len(sent) - warm == 20
    assert out["entries"] == 200
    assert out["elapsed_s"] >= 2.0
    assert all(abs(x - 100.0) < 1e-6 for x in out["latencies_ms"])
    assert t.sleeps == []
    flat = [p for b in sent for p in b]
    assert len(set(flat)) == len(flat)
    assert {len(p) for p in flat} == {200}


def test_paced_latency_counts_from_the_schedule() -> None:
    t = FakeTime()
    calls = 0

    def send(batch: list[bytes]) -> None:
        nonlocal calls
        calls += 1
        t.now += 0.3 if calls == 1 else 0.01  # one slow batch right after warm-up

    paced = spec(warmup_s=0.0, rate_entries_per_s=100.0)
    out = drive(paced, send, Payloads(0, 64, b"x" * 8), t.clock, t.sleep)
    # 10 entries per batch at 100 entries/s: one batch due every 0.1 s for 2 s.
    assert out["batches"] == 20
    lat = out["latencies_ms"]
    assert abs(lat[0] - 300.0) < 1e-6
    # The batches queued behind the slow one are late by what they waited.
    assert lat[1] > 200.0
    assert lat[2] > 100.0
    assert all(abs(x - 10.0) < 1e-6 for x in lat[4:])


def test_paced_workers_take_turns() -> None:
    t = FakeTime()

    def send(batch: list[bytes]) -> None:
        t.now += 0.001

    paced = spec(warmup_s=0.0, rate_entries_per_s=100.0, worker=1, workers=4)
    out = drive(paced, send, Payloads(1, 64, b"x" * 8), t.clock, t.sleep)
    assert abs(t.sleeps[0] - 0.025) < 1e-9  # a quarter of the 0.1 s interval
    assert out["batches"] == 20


def test_max_entries_ends_early() -> None:
    t = FakeTime()

    def send(batch: list[bytes]) -> None:
        t.now += 0.001

    out = drive(spec(max_entries=35), send, Payloads(0, 64, b"x" * 8), t.clock, t.sleep)
    assert out["entries"] == 40


def test_errors_are_counted_and_bounded() -> None:
    t = FakeTime()

    def send(batch: list[bytes]) -> None:
        t.now += 0.001
        raise RuntimeError("server gone")

    out = drive(spec(), send, Payloads(0, 64, b"x" * 8), t.clock, t.sleep)
    assert out["errors"] == MAX_ERRORS
    assert out["entries"] == 0
    assert "server gone" in out["first_error"]
