"""The limiter and chunk rejection: property-based, whatever the input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vla_ros.core.safety import ChunkRejected, Limiter, check_chunk
from vla_ros.core.types import ActionChunk, JointLimits

LIMITS = JointLimits(("a", "b", "c"), np.array([-1.0, -2.0, 0.0]), np.array([1.0, 2.0, 0.04]), np.array([2.0, 1.0, 0.1]))
TOL = 1e-9

anything = st.floats(allow_nan=True, allow_infinity=True, width=64)
targets = st.lists(st.lists(anything, min_size=3, max_size=3), min_size=1, max_size=50)


@settings(max_examples=2000, deadline=None)
@given(targets=targets, start=st.lists(st.floats(-5, 5), min_size=3, max_size=3), dt=st.floats(1e-4, 0.1), margin=st.floats(0, 0.2))
def test_commands_never_leave_position_or_velocity_limits(targets, start, dt, margin):
    lim = Limiter(LIMITS, margin)
    lim.reset(np.array(start))
    prev = lim.last_command.copy()
    m = np.minimum(margin, 0.25 * (LIMITS.max_position - LIMITS.min_position))
    for t in targets:
        cmd = lim.apply(np.array(t), dt)
        assert np.all(np.isfinite(cmd))
        assert np.all(cmd >= LIMITS.min_position + m - TOL) and np.all(cmd <= LIMITS.max_position - m + TOL)
        assert np.all(np.abs(cmd - prev) <= LIMITS.max_velocity * dt + TOL)
        prev = cmd


def test_nan_target_holds_and_counts_nothing_else():
    lim = Limiter(LIMITS)
    lim.reset(np.array([0.5, 0.5, 0.02]))
    np.testing.assert_array_equal(lim.apply(np.array([np.nan, 0.5, 0.02]), 0.01), [0.5, 0.5, 0.02])


def test_apply_before_reset_is_an_error():
    with pytest.raises(RuntimeError, match="before reset"):
        Limiter(LIMITS).apply(np.zeros(3), 0.01)


def test_margin_is_capped_at_a_quarter_of_small_ranges():
    lim = Limiter(LIMITS, position_margin_rad=0.05)
    np.testing.assert_allclose(lim.lower, [-0.95, -1.95, 0.01])
    np.testing.assert_allclose(lim.upper, [0.95, 1.95, 0.03])
    with pytest.raises(ValueError, match=">= 0"):
        Limiter(LIMITS, position_margin_rad=-0.1)


def chunk(names=("c", "a", "b"), positions=None, t0=10.0):
    return ActionChunk(t0, 0.1, names, np.ones((2, len(names))) if positions is None else positions)


def test_check_chunk_reorders_to_config_order():
    c = ActionChunk(10.0, 0.1, ("c", "a", "b", "extra"), np.array([[3.0, 1.0, 2.0, 9.0]]))
    out = check_chunk(c, ("a", "b", "c"), 10.0, 1.0)
    np.testing.assert_array_equal(out.positions, [[1.0, 2.0, 3.0]])
    assert out.joint_names == ("a", "b", "c")


@pytest.mark.parametrize(
    "c, match",
    [
        (chunk(names=("a", "b")), r"lacks joints \['c'\]"),
        (chunk(positions=np.array([[0.0, np.nan, 0.0], [0, 0, 0]])), "non-finite position at point 0, joint 'a'"),
        (chunk(t0=20.0), "10.000 s in the future"),
        (chunk(t0=0.0), "10.000 s in the past"),
    ],
)
def test_check_chunk_rejections_say_why(c, match):
    with pytest.raises(ChunkRejected, match=match):
        check_chunk(c, ("a", "b", "c"), now_s=10.0, max_stamp_skew_s=1.0)
