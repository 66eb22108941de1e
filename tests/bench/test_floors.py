"""The reach checks: floors and ceilings from a run's own figures, and the notes they give."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from bench.floors import AckCosts, beyond_reach, light_floor, measure_ack_costs, transport_ceilings
from bench.throughput import PEER_RATIOS

COSTS = AckCosts(client_sign_ms=0.05, verify_ms=0.15, header_sign_ms=0.05, fsync_ms=0.25)


def test_light_floor_adds_every_step_to_the_echo() -> None:
    floor = light_floor(1.0, COSTS)
    assert floor["p50_ms"] == 1.5
    assert floor["p50_vs_grpc_echo"] == 1.5
    assert floor["verify_ms"] == 0.15
    assert floor["fsync_ms"] == 0.25


def test_light_floor_without_an_echo_is_unknown() -> None:
    floor = light_floor(None, COSTS)
    assert floor["p50_ms"] is None
    assert floor["p50_vs_grpc_echo"] is None


def test_ceilings_are_the_echo_over_each_peer() -> None:
    rates = {"tandem": 25.0, "grpc_echo": 60.0, "redis_streams": 40.0, "nats_jetstream": None}
    assert transport_ceilings(rates, PEER_RATIOS) == {
        "vs_redis_streams": 1.5,
        "vs_nats_jetstream": None,
    }
    assert transport_ceilings({"redis_streams": 40.0}, PEER_RATIOS)["vs_redis_streams"] is None


@given(target=st.floats(0.1, 10), bound=st.floats(0.1, 10) | st.none(), at_most=st.booleans())
def test_a_note_exactly_when_the_bound_is_beyond_the_target(
    target: float, bound: float | None, at_most: bool
) -> None:
    notes = beyond_reach({"x": target}, {"x": bound}, at_most)
    out_of_reach = bound is not None and (bound > target if at_most else bound < target)
    assert len(notes) == int(out_of_reach)
    if out_of_reach:
        assert notes[0].startswith("x target")
        assert ("floor" if at_most else "ceiling") in notes[0]


def test_measured_costs_are_real_and_positive(tmp_path: Path) -> None:
    costs = measure_ack_costs(tmp_path, rounds=20, fsync_s=0.05)
    assert 0 < costs.client_sign_ms < 50
    assert 0 < costs.verify_ms < 50
    assert costs.fsync_ms > 0
    assert costs.total_ms() > costs.verify_ms
    assert list(tmp_path.iterdir()) == []
