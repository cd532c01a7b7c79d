"""The nominal tracker: commands are the plan's own states when no limit is near, joins are smooth,
and the ruckig filter takes over only where the nominal command would break a limit.

The sim arm (its limits, margin and workspace) tracks a slow sine stream, chunk after chunk.
"""

import numpy as np
from test_executor_properties import WORKSPACE
from test_jerk_limiter import assert_within_limits

from vla_ros.config import load_robot_config
from vla_ros.core.executor import ExecutorCore, ExecutorSettings
from vla_ros.core.jerk_limiter import JerkLimiter
from vla_ros.core.plan import Plan
from vla_ros.core.tracker import PlanTracker
from vla_ros.core.types import ActionChunk, JointLimits
from vla_ros.sim.tabletop import HOME_Q

ROBOT = load_robot_config("sim")
DT = 0.002  # 500 Hz
CHUNK_DT, HORIZON, PERIOD = 0.1, 8, 0.3  # the demo's chunks: 8 points 0.1 s apart, one every 0.3 s


def sine(t: np.ndarray, amplitude: float = 0.2, hz: float = 0.5) -> np.ndarray:
    """(len(t), 7) a slow in-limit motion of the arm joints from rest at the home pose (the gripper
    still): amplitude (1 - cos(w t))^2 / 4, which starts with zero velocity, acceleration and jerk."""
    wave = amplitude * (1 - np.cos(2 * np.pi * hz * np.asarray(t)[:, None])) ** 2 / 4
    return HOME_Q + wave * np.array([1.0, -1.0, 0.5, 1.0, -1.0, 1.0, 0.0])


def run(core: ExecutorCore, seconds: float, motion=sine):
    """Chunks of `motion` every PERIOD (observed at the chunk's stamp, arriving at once), ticks at DT.
    Returns tick times (T,), commands (T, D), commanded accelerations (T, D), states (T,), plan states (T, 3, D)."""
    core.on_joint_state(0.0, motion(np.zeros(1))[0])
    core.tick(0.0)  # the control loop runs before the first chunk
    times, commands, accelerations, states, planned = [], [], [], [], []
    next_chunk, t = 0.0, 0.0
    for _ in range(int(round(seconds / DT))):
        if t >= next_chunk - 1e-9:
            core.on_chunk(
                ActionChunk(t, CHUNK_DT, ROBOT.joint_names, motion(t + CHUNK_DT * np.arange(1, HORIZON + 1))), t
            )
            next_chunk += PERIOD
        t += DT
        core.on_joint_state(t, core.limiter.position)
        command = core.tick(t)
        times.append(t)
        commands.append(command.positions)
        accelerations.append(core.limiter.acceleration.copy())
        states.append(command.state)
        planned.append(core.plan.state_at(t, np.empty((3, 7))))
    return np.array(times), np.array(commands), np.array(accelerations), states, np.array(planned)


def sim_core() -> ExecutorCore:
    core = ExecutorCore(ROBOT.limits, ExecutorSettings(position_margin_rad=0.02), WORKSPACE)
    core.activate()  # commands from the first joint state on
    return core


def test_with_no_limit_near_the_filter_passes_the_plan_through_exactly():
    """Every command is the plan's own position, velocity and acceleration at its time: the filter
    (ruckig) never acts and no limit is reported."""
    core = sim_core()
    _, commands, accelerations, states, planned = run(core, 3.0)
    assert set(states) == {"tracking"}
    assert core.tracker.filtered_ticks == 0 and core.tracker.nominal_ticks == len(commands)
    np.testing.assert_array_equal(commands, planned[:, 0])
    np.testing.assert_array_equal(accelerations, planned[:, 2])
    assert not core.limiter.activations


def test_on_a_smooth_plan_jerk_follows_the_plan_not_the_limit():
    """Commanded jerk (from the commanded accelerations, as `vla-ros plot`) stays far below the limit,
    and its RMS is the plan's own (the plan's third derivative at the same ticks)."""
    core = sim_core()
    times, commands, accelerations, _, _ = run(core, 3.0)
    assert_within_limits(commands, DT, ROBOT.limits)
    jerk = np.diff(accelerations, axis=0) / DT
    plan_jerk = []
    for t in times[1:] - DT / 2:  # the plan's jerk in the middle of each tick (constant per segment)
        i = core.plan.segment(t)
        plan_jerk.append(6 * core.plan.coefficients[i, 3] if i < len(core.plan.coefficients) else np.zeros(7))
    # (the plan sampled above is the last one: compare over its span, which the commands followed)
    span = times[1:] - DT / 2 >= core.plan.knot_times_s[0]
    rms, plan_rms = np.sqrt(np.mean(jerk[span] ** 2)), np.sqrt(np.mean(np.array(plan_jerk)[span] ** 2))
    assert np.all(np.abs(jerk).max(axis=0) < 0.5 * ROBOT.limits.max_jerk)
    assert abs(rms - plan_rms) < 0.05 * plan_rms


TURN = np.array([0.5, 0.0, 0.0, 0.0, 0.5, 0.5, 0.0])  # turns the tool about the base: stays in the workspace


def turn_then_hold(chunk_dt_s: float, seconds: float = 2.0):
    """The sim core at rest at HOME_Q, sent a chunk of 3 points at HOME_Q + TURN, `chunk_dt_s` apart,
    and 0.2 s later a chunk of 10 points there; `seconds` of ticks. Returns (core, commands (T, D), modes (T,),
    the first plan's time scale)."""
    core = sim_core()
    core.on_joint_state(0.0, HOME_Q)
    core.tick(0.0)
    target = HOME_Q + TURN
    core.on_chunk(ActionChunk(0.0, chunk_dt_s, ROBOT.joint_names, np.repeat(target[None], 3, axis=0)), 0.0)
    scale = core.plan.time_scale
    commands, modes, t = [], [], 0.0
    for k in range(1, int(round(seconds / DT)) + 1):
        if k == 100:  # 0.2 s: the next chunk, still at the target
            core.on_chunk(ActionChunk(t, CHUNK_DT, ROBOT.joint_names, np.repeat(target[None], 10, axis=0)), t)
        t += DT
        core.on_joint_state(t, core.limiter.position)
        commands.append(core.tick(t).positions)
        modes.append(core.tracker.last_mode)
    return core, np.array(commands), modes, scale


def test_a_chunk_that_asks_too_much_is_slowed_down_and_followed():
    """0.5 rad from rest in 0.2 s steps: at the chunk's pace no smoothing keeps the velocity limit and
    half the acceleration and jerk limits, so the plan takes its points later (time scale > 1) and is
    followed nominally, never swinging back: until the next chunk every joint moves one way only;
    every command stays within the limits."""
    core, commands, modes, scale = turn_then_hold(0.2, seconds=4.0)
    assert 1.0 < scale <= 3.0 and core.counters["chunks_slowed"] >= 1
    assert_within_limits(commands, DT, ROBOT.limits)
    assert set(modes) == {"nominal"}
    steps = np.diff(commands[:99], axis=0) * np.sign(TURN)
    assert (steps[:, TURN != 0] >= -1e-12).all() and (steps[:, TURN != 0] > 0).any()  # towards the target
    np.testing.assert_allclose(commands[-1][:6], (HOME_Q + TURN)[:6], atol=1e-9)


def test_a_chunk_that_asks_far_too_much_is_filtered_and_the_next_one_followed():
    """0.5 rad in 30 ms: even three times slower it breaks the limits, so ruckig takes over; the
    next chunk's plan starts where the command is (the start of braking from full speed, which the
    filter still shapes for a moment) and is then followed, to its end; every command stays within
    the limits."""
    core, commands, modes, scale = turn_then_hold(0.01)
    assert scale == 1.0
    assert_within_limits(commands, DT, ROBOT.limits)
    assert set(modes[:99]) == {"filter_dynamics"} and core.counters["limit_dynamics"] >= 99
    assert set(modes[400:590]) == {"nominal"}  # the new plan ends at 1.2 s
    np.testing.assert_allclose(commands[-1][:6], (HOME_Q + TURN)[:6], atol=1e-9)  # at rest on the plan's end


def test_a_hold_is_joined_without_a_jump():
    """Commands made elsewhere (the executor's hold) are joined from where they left the command."""
    limits = JointLimits(
        ("a",), np.array([-1.0]), np.array([1.0]), np.array([1.0]), np.array([10.0]), np.array([200.0])
    )
    limiter = JerkLimiter(limits)
    limiter.reset(np.zeros(1))
    tracker = PlanTracker(limiter)
    plan = Plan(1)
    plan.merge(ActionChunk(0.0, 0.1, ("a",), np.linspace(0.01, 0.3, 10)[:, None]), 0.0, np.zeros(1))
    commands = [tracker.step(plan, k * DT, DT, 0.1) for k in range(1, 100)]
    commands += [limiter.brake(DT) for _ in range(20)]  # someone else commands for 40 ms
    commands += [tracker.step(plan, k * DT, DT, 0.1) for k in range(120, 600)]
    assert_within_limits(np.array(commands), DT, limits)
    np.testing.assert_allclose(commands[-1], [0.3], atol=1e-9)  # at rest on the plan's end


def test_after_a_stall_the_command_catches_up_within_the_limits_not_in_one_step():
    """A control thread stalled for 10 periods ticks with `elapsed_s` capped at 2 periods (what the node
    does): the command moves at most max_velocity x 2 periods in that tick (the plan's state at the late
    time would be one step for the whole stall): it moves along the plan by 2 periods and a blend takes up
    the lag, so the plan is followed again at once."""
    core = sim_core()
    fast = lambda t: sine(t, amplitude=0.6, hz=0.5)  # noqa: E731 - 0.6 rad swings: the arm moves fast mid-way
    core.on_joint_state(0.0, fast(np.zeros(1))[0])
    core.tick(0.0, elapsed_s=DT)
    t, commands, modes = 0.0, [core.limiter.position.copy()], []
    for k in range(1, 1001):
        if k % 150 == 1:
            core.on_chunk(ActionChunk(t, CHUNK_DT, ROBOT.joint_names, fast(t + CHUNK_DT * np.arange(1, 9))), t)
        stall = k == 500  # 10 periods late, mid-motion
        t += 10 * DT if stall else DT
        core.on_joint_state(t, core.limiter.position)
        commands.append(core.tick(t, elapsed_s=2 * DT if stall else DT).positions)
        modes.append(core.tracker.last_mode)
    steps = np.abs(np.diff(np.array(commands), axis=0))
    assert steps[499].max() > 0.5 * DT * ROBOT.limits.max_velocity.min()  # it was moving when it stalled
    assert (steps[499] <= ROBOT.limits.max_velocity * 2 * DT * (1 + 1e-9)).all()
    assert modes[499] == "catch_up" and set(modes[500:]) == {"nominal"}  # the lag is blended away


def test_clock_noise_on_the_tick_times_is_not_a_stall():
    """The node stamps ticks with deadline + a ROS-minus-steady offset re-read every tick (microseconds of
    noise) and integrates exactly one period: that is no stall, every tick follows the plan nominally."""
    core = sim_core()
    rng = np.random.default_rng(0)
    core.on_joint_state(0.0, sine(np.zeros(1))[0])
    core.tick(0.0, elapsed_s=DT)
    modes = []
    for k in range(1, 600):
        t = k * DT + rng.uniform(-50e-6, 50e-6)
        if k % 150 == 1:
            core.on_chunk(ActionChunk(t, CHUNK_DT, ROBOT.joint_names, sine(t + CHUNK_DT * np.arange(1, 9))), t)
        core.on_joint_state(t, core.limiter.position)
        core.tick(t, elapsed_s=DT)
        modes.append(core.tracker.last_mode)
    assert set(modes) == {"nominal"}
