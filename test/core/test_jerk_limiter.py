"""The jerk limiter: every command stream stays inside position, velocity, acceleration and jerk limits."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from property_settings import streams
from ruckig import ControlInterface, InputParameter, Result, Ruckig, Synchronization, Trajectory

from vla_ros.core.jerk_limiter import JerkLimiter, stop_extent, stop_phases, stop_position
from vla_ros.core.types import JointLimits

LIMITS = JointLimits(
    ("a", "b", "c"),
    np.array([-1.0, -2.0, 0.0]),
    np.array([1.0, 2.0, 0.04]),
    np.array([2.0, 1.0, 0.1]),
    np.array([10.0, 5.0, 2.0]),
    np.array([200.0, 100.0, 50.0]),
)


def assert_within_limits(commands: np.ndarray, dt: float, limits: JointLimits = LIMITS, rel: float = 1e-6) -> None:
    """Finite differences of a command stream (N, D) sampled every dt: each is a weighted mean of
    the trajectory's derivative over the window, so it must respect the limit itself."""
    assert np.all(np.isfinite(commands))
    assert np.all(commands >= limits.min_position - 1e-9) and np.all(commands <= limits.max_position + 1e-9)
    for order, bound in enumerate((limits.max_velocity, limits.max_acceleration, limits.max_jerk), start=1):
        if len(commands) > order:
            derivative = np.diff(commands, n=order, axis=0) / dt**order
            assert np.all(np.abs(derivative) <= bound * (1 + rel) + 1e-6), f"derivative {order} exceeds its limit"


anything = st.floats(allow_nan=True, allow_infinity=True, width=64)
# a target stream: each target (any floats, NaN and inf included) held `repeat` ticks of `dt`, from any `start`
TARGET_STREAM = dict(
    targets=st.lists(st.lists(anything, min_size=3, max_size=3), min_size=1, max_size=40),
    repeat=st.integers(1, 15),
    start=st.lists(st.floats(-5, 5), min_size=3, max_size=3),
    dt=st.sampled_from([0.002, 0.004, 0.01]),
)


def track_stream(lim: JerkLimiter, targets, repeat: int, start, dt: float, **track) -> list[np.ndarray]:
    """The commands of `lim` reset at `start` tracking each target for `repeat` ticks (`track`: more arguments
    of `JerkLimiter.track`), the start position first."""
    lim.reset(np.array(start))
    commands = [lim.position.copy()]
    for target in targets:
        for _ in range(repeat):
            commands.append(lim.track(np.array(target), None, dt, **track))
    return commands


@streams(2000)
@given(**TARGET_STREAM, margin=st.floats(0, 0.2), arrive=st.floats(0, 0.3))
def test_no_target_stream_makes_a_command_leave_the_limits(targets, repeat, start, dt, margin, arrive):
    lim = JerkLimiter(LIMITS, margin)
    commands = track_stream(lim, targets, repeat, start, dt, arrive_in_s=arrive)
    for _ in range(int(0.5 / dt)):  # then brake: still within limits, and at rest in the end
        commands.append(lim.brake(dt))
    assert_within_limits(np.array(commands), dt)
    assert lim.at_rest


@streams(500)
@given(**TARGET_STREAM, share=st.floats(0.25, 1.0))
def test_gentle_tracking_and_stopping_from_any_state_keep_the_limits_and_come_to_rest(
    targets, repeat, start, dt, share
):
    lim = JerkLimiter(LIMITS)
    commands = track_stream(lim, targets, repeat, start, dt, share=share)
    for _ in range(int(1.5 / dt)):
        commands.append(lim.stop_gently(dt, share))
    assert_within_limits(np.array(commands), dt)
    assert lim.at_rest


def test_gentle_tracking_uses_its_share_of_the_limits_away_from_them_and_arrives_later():
    target = np.array([0.5, 1.0, 0.03])

    def commands(share: float) -> np.ndarray:
        lim = JerkLimiter(LIMITS)
        lim.reset(np.array([-0.5, -1.0, 0.01]))
        return np.array([lim.position.copy()] + [lim.track(target, None, 0.01, share=share) for _ in range(300)])

    full, gentle = commands(1.0), commands(0.5)
    half = JointLimits(LIMITS.names, LIMITS.min_position, LIMITS.max_position, LIMITS.max_velocity,
                       0.5 * LIMITS.max_acceleration, 0.5 * LIMITS.max_jerk)  # fmt: skip
    assert_within_limits(gentle, 0.01, half)
    np.testing.assert_allclose(gentle[-1], target, atol=1e-9)
    arrived = [int(np.argmax(np.abs(c - target).max(axis=1) < 1e-6)) for c in (full, gentle)]
    assert 0 < arrived[0] < arrived[1]


def test_gentle_tracking_drops_a_target_acceleration_it_cannot_reach_instead_of_using_the_full_limits():
    """A state recorded in the demo (200 ms inference delay, guided): at rest, the plan's state ahead moves at
    the velocity limit and accelerates at the acceleration limit. ruckig finds no profile to that state
    with half the limits; without the target's acceleration it does: the step stays within half the jerk
    limit instead of falling back to the full limits (as it did: 250 rad/s^3)."""
    arm = JointLimits(
        tuple("abcdefg"),
        np.array([-2.9, -2.0, -2.6, -2.6, -2.9, -2.9, 0.0]),
        np.array([2.9, 2.0, 2.6, 2.6, 2.9, 2.9, 0.04]),
        np.array([2.0, 2.0, 2.0, 2.5, 2.5, 2.5, 0.1]),
        np.array([10.0, 10.0, 10.0, 12.0, 12.0, 12.0, 2.0]),
        np.array([200.0, 200.0, 200.0, 250.0, 250.0, 250.0, 50.0]),
    )
    lim = JerkLimiter(arm)
    lim.reset(np.array([-0.0355, 0.2020, 1.7727, 1.1944, -0.0735, -0.0013, 0.0300]))
    target = np.array([0.0892, 0.5160, 1.3379, 1.2948, -0.0640, 0.0005, 0.0300])
    velocity = np.array([1.119, 1.998, -1.998, 1.090, 0.204, 0.0145, 0.0])
    acceleration = np.array([-9.99, -9.99, 9.99, -6.49, 1.84, -0.232, 0.0])
    lim.track(target, velocity, 0.01, 0.11, acceleration, share=0.5)
    assert (np.abs(lim.acceleration) / 0.01 <= 0.5 * arm.max_jerk * (1 + 1e-6)).all(), lim.acceleration / 0.01


def test_a_gentle_stop_uses_its_share_of_the_limits_away_from_them_and_takes_longer():
    def moving() -> JerkLimiter:
        lim = JerkLimiter(LIMITS)
        lim.reset(np.array([-0.5, -1.0, 0.01]))
        for _ in range(25):
            lim.track(np.array([0.5, 1.0, 0.03]), np.array([1.0, 0.5, 0.05]), 0.01)
        return lim

    full, gentle = moving(), moving()
    before = full.position.copy()
    full_stop = [before] + [full.brake(0.01) for _ in range(200)]
    gentle_stop = [before] + [gentle.stop_gently(0.01, 0.5) for _ in range(200)]
    half = JointLimits(LIMITS.names, LIMITS.min_position, LIMITS.max_position, LIMITS.max_velocity,
                       LIMITS.max_acceleration, 0.5 * LIMITS.max_jerk)  # fmt: skip
    assert_within_limits(np.array(gentle_stop), 0.01, half)
    jerk = np.abs(np.diff(np.array(full_stop), n=3, axis=0)).max(axis=0) / 0.01**3
    assert (jerk > 0.6 * LIMITS.max_jerk).any()  # the time-optimal stop uses more than half the jerk limit
    assert full.at_rest and gentle.at_rest
    first_rest = [
        next(i for i, q in enumerate(s) if np.allclose(q, s[-1], atol=1e-12)) for s in (full_stop, gentle_stop)
    ]
    assert first_rest[1] > first_rest[0]


def test_a_far_target_is_reached_smoothly_without_overshooting_the_position_limit():
    lim = JerkLimiter(LIMITS, position_margin_rad=0.05)
    lim.reset(np.zeros(3))
    commands = np.array([lim.track(np.array([5.0, -5.0, 1.0]), None, 0.01) for _ in range(300)])
    assert_within_limits(commands, 0.01)
    np.testing.assert_allclose(commands[-1], [0.95, -1.95, 0.03], atol=1e-6)  # clamped to the limits minus the margin
    assert lim.activations["position"] > 0


def test_braking_decelerates_within_the_limits_to_rest():
    lim = JerkLimiter(LIMITS)
    lim.reset(np.zeros(3))
    moving = [lim.track(np.array([0.9, 1.5, 0.03]), np.array([2.0, 1.0, 0.1]), 0.01) for _ in range(20)]
    assert np.any(np.abs(lim.velocity) > 0.5)
    braking = [lim.brake(0.01) for _ in range(100)]
    assert_within_limits(np.array(moving + braking), 0.01)
    assert lim.at_rest and np.allclose(braking[-1], braking[-2])


def test_a_moving_target_is_tracked_closely_when_it_is_feasible():
    lim = JerkLimiter(LIMITS)
    lim.reset(np.zeros(3))
    dt, ahead = 0.01, 0.1
    t = np.arange(1, 301) * dt
    commands = []
    for tk in t:  # steer to where the target will be `ahead` later, as the executor does
        goal_t = tk - dt + ahead
        commands.append(
            lim.track(
                np.array([0.5 * np.sin(2 * goal_t), 0.0, 0.0]),
                np.array([np.cos(2 * goal_t), 0, 0]),
                dt,
                arrive_in_s=ahead,
            )
        )
    error = np.abs(np.array(commands)[50:, 0] - 0.5 * np.sin(2 * t[50:]))
    assert error.max() < 0.01


def test_nan_target_brakes_and_counts():
    lim = JerkLimiter(LIMITS)
    lim.reset(np.array([0.5, 0.5, 0.02]))
    np.testing.assert_array_equal(lim.track(np.array([np.nan, 0.5, 0.02]), None, 0.01), [0.5, 0.5, 0.02])
    assert lim.activations["invalid_target"] == 1


def test_inadmissible_configurations_stop_the_motion_before_them():
    """A predicate (here: joint a below 0.3) plays the workspace: the arm stops short of it."""
    lim = JerkLimiter(LIMITS, admissible=lambda q: q[0] < 0.3)
    lim.reset(np.zeros(3))
    commands = np.array([lim.track(np.array([0.9, 0.0, 0.0]), None, 0.01) for _ in range(200)])
    assert_within_limits(commands, 0.01)
    assert commands[:, 0].max() < 0.3 and commands[-1, 0] > 0.2  # stopped near the boundary
    assert lim.at_rest and lim.activations["workspace"] > 0
    back = lim.track(np.array([0.0, 0.0, 0.0]), None, 0.01)  # moving away is allowed
    assert back[0] < commands[-1, 0]


def test_use_before_reset_is_an_error_and_bad_margins_are_refused():
    with pytest.raises(RuntimeError, match="before reset"):
        JerkLimiter(LIMITS).track(np.zeros(3), None, 0.01)
    with pytest.raises(ValueError, match=">= 0"):
        JerkLimiter(LIMITS, position_margin_rad=-0.1)


def test_margin_is_capped_at_a_quarter_of_small_ranges_and_missing_limits_get_fast_ramps():
    lim = JerkLimiter(
        JointLimits(LIMITS.names, LIMITS.min_position, LIMITS.max_position, LIMITS.max_velocity),
        position_margin_rad=0.05,
    )
    np.testing.assert_allclose(lim.lower, [-0.95, -1.95, 0.01])
    np.testing.assert_allclose(lim.upper, [0.95, 1.95, 0.03])
    np.testing.assert_allclose(lim.max_acceleration, LIMITS.max_velocity / 0.01)  # full speed in 10 ms


joint_states = st.lists(
    st.tuples(
        st.floats(-3.0, 3.0),  # velocity, rad/s
        st.floats(-1.0, 1.0),  # acceleration, share of the limit
        st.floats(0.5, 20.0),  # acceleration limit, rad/s^2
        st.floats(5.0, 500.0),  # jerk limit, rad/s^3
        st.booleans(),  # at rest
    ),
    min_size=1,
    max_size=7,
)


@streams(500)
@given(joints=joint_states)
def test_the_closed_form_stop_is_ruckigs_unsynchronised_stop(joints):
    """`stop_phases` (what the braking check uses) against ruckig's velocity-interface stop with
    every joint unsynchronised (what `brake` executes): same durations and positions along the way,
    and `stop_extent`'s range contains ruckig's trajectory sampled densely and touches its extremes."""
    v = np.array([0.0 if j[4] else j[0] for j in joints])
    a = np.array([0.0 if j[4] else j[1] * j[2] for j in joints])
    limit_a, limit_j = np.array([j[2] for j in joints]), np.array([j[3] for j in joints])
    n = len(joints)
    otg, trajectory, inp = Ruckig(n), Trajectory(n), InputParameter(n)
    inp.control_interface, inp.synchronization = ControlInterface.Velocity, Synchronization.No
    inp.current_position, inp.current_velocity, inp.current_acceleration = [0.0] * n, v.tolist(), a.tolist()
    inp.target_position, inp.target_velocity, inp.target_acceleration = [0.0] * n, [0.0] * n, [0.0] * n
    inp.max_velocity, inp.max_acceleration, inp.max_jerk = [100.0] * n, limit_a.tolist(), limit_j.tolist()
    assert otg.calculate(inp, trajectory) in (Result.Working, Result.Finished)
    phases = [stop_phases(*args) for args in zip(v, a, limit_a, limit_j)]
    durations = [sum(t for _, t in p) for p in phases]
    np.testing.assert_allclose(durations, trajectory.independent_min_durations, atol=1e-9)
    times = np.linspace(0.0, trajectory.duration, 400)
    sampled = np.array([trajectory.at_time(t)[0] for t in times])  # (400, n)
    ours = np.array([[stop_position(v[i], a[i], phases[i], t) for i in range(n)] for t in times])
    np.testing.assert_allclose(ours, sampled, atol=1e-9)
    extents = np.array([stop_extent(v[i], a[i], phases[i]) for i in range(n)])  # (n, 3): low, high, end
    assert (sampled >= extents[:, 0] - 1e-9).all() and (sampled <= extents[:, 1] + 1e-9).all()
    np.testing.assert_allclose(extents[:, 2], sampled[-1], atol=1e-9)
    step = np.abs(np.diff(sampled, axis=0)).max(axis=0) if len(times) > 1 else np.zeros(n)  # sampling resolution
    assert (sampled.min(axis=0) - extents[:, 0] <= step + 1e-9).all()
    assert (extents[:, 1] - sampled.max(axis=0) <= step + 1e-9).all()
