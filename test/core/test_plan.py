import numpy as np
import pytest

from vla_ros.core.plan import Plan
from vla_ros.core.types import ActionChunk

NAMES = ("a", "b")


def chunk(t0, positions, dt=0.1):
    return ActionChunk(t0, dt, NAMES, np.asarray(positions, float))


def test_points_in_the_past_are_dropped_and_the_plan_starts_at_the_current_command():
    plan = Plan(2)
    c = chunk(10.0, [[1, 1], [2, 2], [3, 3], [4, 4]])  # due at 10.1 .. 10.4
    dropped = plan.merge(c, now_s=10.25, current_command=np.array([0.0, 0.0]))
    assert dropped == 2
    np.testing.assert_allclose(plan.times_s, [10.25, 10.3, 10.4])
    np.testing.assert_allclose(plan.positions, [[0, 0], [3, 3], [4, 4]])


def test_sampling_passes_through_the_points_and_rests_at_the_end():
    plan = Plan(2)
    plan.merge(chunk(0.0, [[1, 2], [3, 6]]), now_s=0.0, current_command=np.zeros(2))
    np.testing.assert_allclose(plan.sample(0.1), [1.0, 2.0])
    np.testing.assert_allclose(plan.sample(0.2), [3.0, 6.0])
    np.testing.assert_allclose(plan.sample(5.0), [3.0, 6.0])
    np.testing.assert_allclose(plan.sample_state(0.2)[1], [0.0, 0.0])  # comes to rest at the end
    assert plan.end_time_s == pytest.approx(0.2)


def test_the_plan_has_continuous_acceleration_at_its_points():
    plan = Plan(1)
    rng = np.random.default_rng(0)
    plan.merge(
        ActionChunk(0.0, 0.1, ("a",), rng.normal(size=(6, 1))),
        now_s=0.0,
        current_command=np.zeros(1),
        current_velocity=np.array([0.5]),
    )
    eps = 1e-7
    for knot in plan.times_s[1:-1]:
        accel_before = (plan.sample_state(knot - eps)[1] - plan.sample_state(knot - 2 * eps)[1]) / eps
        accel_after = (plan.sample_state(knot + 2 * eps)[1] - plan.sample_state(knot + eps)[1]) / eps
        np.testing.assert_allclose(accel_before, accel_after, rtol=1e-3, atol=1e-2)


def test_the_plan_starts_moving_as_the_command_moves():
    plan = Plan(1)
    plan.merge(
        ActionChunk(0.0, 0.1, ("a",), np.array([[1.0], [2.0]])),
        now_s=0.0,
        current_command=np.zeros(1),
        current_velocity=np.array([0.7]),
    )
    np.testing.assert_allclose(plan.sample_state(0.0)[1], [0.7])
    eps = 1e-6  # the sampled velocity is the derivative of the sampled position
    p0, v0 = plan.sample_state(0.13)
    np.testing.assert_allclose((plan.sample(0.13 + eps) - p0) / eps, v0, rtol=1e-4)


def test_ahead_is_the_plan_from_now_on():
    plan = Plan(1)
    plan.merge(ActionChunk(0.0, 0.1, ("a",), np.array([[1.0], [2.0], [3.0]])), now_s=0.0, current_command=np.zeros(1))
    times, positions = plan.ahead(0.15)
    np.testing.assert_allclose(times, [0.15, 0.2, 0.3])
    np.testing.assert_allclose(positions[1:, 0], [2.0, 3.0])
    np.testing.assert_allclose(positions[0], plan.sample(0.15))


def test_empty_plan_samples_none():
    plan = Plan(2)
    assert plan.sample(1.0) is None
    plan.merge(chunk(0.0, [[1, 1]]), now_s=0.0, current_command=np.zeros(2))
    plan.clear()
    assert plan.empty and plan.sample(0.0) is None


def test_explicit_offsets_are_used_for_times():
    c = ActionChunk(1.0, 0.1, NAMES, np.zeros((3, 2)), offsets_s=np.array([0.0, 0.5, 0.7]))
    np.testing.assert_allclose(c.times_s(), [1.0, 1.5, 1.7])
    with pytest.raises(ValueError, match="strictly increasing"):
        ActionChunk(1.0, 0.1, NAMES, np.zeros((3, 2)), offsets_s=np.array([0.1, 0.1, 0.2]))


def test_unknown_blend_mode_is_refused():
    with pytest.raises(ValueError, match="unknown blend mode 'avg'"):
        Plan(2, blend="avg")


def test_crossfade_starts_on_the_old_plan_and_ends_on_the_new_one():
    plan = Plan(2, blend="crossfade", crossfade_s=0.2)
    plan.merge(chunk(0.0, [[0, 0]] * 10), now_s=0.0, current_command=np.zeros(2))
    plan.merge(chunk(0.0, [[1, 1]] * 10), now_s=0.0, current_command=np.zeros(2))
    # points at 0.1 (w = 0.5), 0.2 (w = 1), later (w = 1)
    np.testing.assert_allclose(plan.positions[1:4, 0], [0.5, 1.0, 1.0])


def test_temporal_ensemble_weights_follow_act():
    m = 0.5
    plan = Plan(1, blend="temporal_ensemble", ensemble_m=m)
    plan.merge(ActionChunk(0.0, 0.1, ("a",), np.full((10, 1), 0.0)), now_s=0.0, current_command=np.zeros(1))
    plan.merge(ActionChunk(0.0, 0.1, ("a",), np.full((10, 1), 1.0)), now_s=0.0, current_command=np.zeros(1))
    plan.merge(ActionChunk(0.0, 0.1, ("a",), np.full((10, 1), 2.0)), now_s=0.0, current_command=np.zeros(1))
    w = np.exp(-m * np.arange(3))  # oldest prediction weight 1, then e^-m, e^-2m
    expected = (w * np.array([0.0, 1.0, 2.0])).sum() / w.sum()
    np.testing.assert_allclose(plan.positions[1:, 0], expected)


def test_blending_only_touches_times_the_old_plan_covers():
    plan = Plan(1, blend="crossfade", crossfade_s=10.0)
    plan.merge(ActionChunk(0.0, 0.1, ("a",), np.zeros((2, 1))), now_s=0.0, current_command=np.zeros(1))  # ends at 0.2
    plan.merge(ActionChunk(0.0, 0.1, ("a",), np.ones((4, 1))), now_s=0.0, current_command=np.zeros(1))
    assert plan.positions[3, 0] == 1.0 and plan.positions[4, 0] == 1.0  # 0.3 and 0.4 s: new only
    assert plan.positions[1, 0] < 1.0
