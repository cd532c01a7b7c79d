import numpy as np
import pytest

from vla_ros.core.scheduling import InferenceScheduler, LatencyEstimate


def test_latency_estimate_is_a_high_percentile_of_recent_samples():
    est = LatencyEstimate(window=10, percentile=90)
    assert est.value(default=0.2) == 0.2
    for s in [0.01] * 20 + list(np.linspace(0.1, 0.2, 10)):
        est.add(s)
    assert est.value() == pytest.approx(np.percentile(np.linspace(0.1, 0.2, 10), 90))  # old samples forgotten


def test_periodic_while_the_plan_is_long_enough():
    sched = InferenceScheduler(period_s=0.3, margin_s=0.05)
    assert sched.next_start_s(10.0) == pytest.approx(10.3)  # nothing published yet
    sched.on_cycle(latency_s=0.02, chunk_end_s=10.8)
    assert sched.next_start_s(10.0) == pytest.approx(10.3)


def test_starts_early_enough_that_the_next_chunk_arrives_before_the_plan_ends():
    sched = InferenceScheduler(period_s=1.0, margin_s=0.05)
    for _ in range(5):
        sched.on_cycle(latency_s=0.3, chunk_end_s=10.8)
    start = sched.next_start_s(10.0)
    assert start == pytest.approx(10.8 - 0.3 - 0.05)
    assert start + sched.latency.value() < 10.8  # arrives with the margin to spare


def test_steady_state_never_runs_out_of_plan():
    """Simulated loop: chunks of 0.8 s, latency 0.15-0.3 s, a long period: every chunk arrives in time.

    (One inference at a time: with latency above half the chunk no schedule can keep up.)"""
    rng = np.random.default_rng(0)
    sched = InferenceScheduler(period_s=2.0, margin_s=0.05)
    start, plan_end = 0.0, None
    for i in range(200):
        latency = rng.uniform(0.15, 0.3)
        arrival = start + latency
        if plan_end is not None and i > 20:  # after the estimate has warmed up
            assert arrival <= plan_end + 1e-9, (
                f"cycle {i}: chunk arrived {arrival - plan_end:.3f} s after the plan ended"
            )
        plan_end = start + 0.8  # the chunk starts at its observation (taken at `start`)
        sched.on_cycle(latency, plan_end)
        start = max(sched.next_start_s(start), arrival)  # one inference at a time
