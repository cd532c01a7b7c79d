"""ExecutorCore: states, watchdogs, e-stop (adversarial streams: test_executor_properties.py)."""

import numpy as np
import pytest
from test_jerk_limiter import assert_within_limits

from vla_ros.core.executor import ExecutorCore, ExecutorSettings
from vla_ros.core.safety import ChunkRejected
from vla_ros.core.types import ActionChunk, JointLimits

NAMES = ("a", "b")
LIMITS = JointLimits(
    NAMES,
    np.array([-1.0, -1.0]),
    np.array([1.0, 1.0]),
    np.array([1.0, 2.0]),
    np.array([10.0, 10.0]),
    np.array([200.0, 200.0]),
)
DT = 0.01


def core(blend="replace"):
    ex = ExecutorCore(
        LIMITS, ExecutorSettings(joint_state_timeout_s=0.2, plan_timeout_s=0.3, max_stamp_skew_s=1.0, blend=blend)
    )
    ex.activate()
    return ex


def test_nothing_is_commanded_before_a_joint_state():
    ex = core()
    assert ex.tick(0.0).state == "waiting" and ex.tick(0.01).positions is None
    with pytest.raises(ChunkRejected, match="no joint state"):
        ex.on_chunk(ActionChunk(0.0, 0.1, NAMES, np.zeros((2, 2))), 0.0)


def test_tracks_a_chunk_by_time_then_holds_when_it_runs_out():
    ex = core()
    ex.on_joint_state(0.0, np.zeros(2))
    ex.on_chunk(ActionChunk(0.0, 0.1, NAMES, np.array([[0.05, 0.05], [0.1, 0.1]])), now_s=0.0)
    t, states = 0.0, []
    for _ in range(120):
        t += DT
        ex.on_joint_state(t, np.zeros(2))
        cmd = ex.tick(t)
        states.append(cmd.state)
    assert states[0] == "tracking" and states[-1] == "holding"
    np.testing.assert_allclose(cmd.positions, [0.1, 0.1])  # holds the last point, not zero


def test_stale_joint_states_decelerate_to_a_hold():
    ex = core()
    ex.on_joint_state(0.0, np.array([0.3, 0.3]))
    ex.on_chunk(ActionChunk(0.0, 0.1, NAMES, np.full((5, 2), 0.9)), 0.0)
    commands = [ex.tick(k * DT) for k in range(1, 20)]
    assert commands[-1].state == "tracking" and np.all(np.abs(ex.limiter.velocity) > 0.1)
    commands += [ex.tick(k * DT) for k in range(20, 120)]  # no joint state since t = 0
    assert commands[-1].state == "stale_joints"
    positions = np.array([c.positions for c in commands])
    assert_within_limits(positions, DT, LIMITS)  # no jump: a jerk-limited stop
    np.testing.assert_array_equal(positions[-1], positions[-2])  # at rest
    assert np.all(positions[-1] < 0.9)  # stopped before the plan's target


def test_estop_latches_until_reset():
    ex = core()
    ex.on_joint_state(0.0, np.zeros(2))
    ex.estop()
    with pytest.raises(ChunkRejected, match="e-stop"):
        ex.on_chunk(ActionChunk(0.0, 0.1, NAMES, np.ones((2, 2)) * 0.5), 0.0)
    assert ex.tick(0.01).state == "estop"
    ex.reset_estop()
    ex.on_chunk(ActionChunk(0.0, 0.1, NAMES, np.ones((2, 2)) * 0.5), 0.01)
    assert ex.tick(0.02).state == "tracking"
    assert ex.counters["chunks_rejected"] == 1 and ex.counters["estops"] == 1


def test_lifecycle_inactive_until_activated_then_brakes_to_rest_on_deactivate():
    ex = ExecutorCore(LIMITS, ExecutorSettings(blend="replace"))
    ex.on_joint_state(0.0, np.array([0.1, -0.2]))
    assert ex.tick(0.0).state == "inactive" and ex.tick(0.01).positions is None
    with pytest.raises(ChunkRejected, match="not active"):
        ex.on_chunk(ActionChunk(0.0, 0.1, NAMES, np.full((5, 2), 0.5)), 0.0)
    ex.activate()
    first = ex.tick(0.02)
    assert first.state == "holding" and np.allclose(first.positions, [0.1, -0.2])  # from the measured position
    ex.on_chunk(ActionChunk(0.02, 0.1, NAMES, np.linspace([0.1, -0.2], [0.9, 0.8], 10)), 0.02)
    t, states, positions = 0.02, [], []
    for _ in range(30):  # moving fast by now
        t += DT
        ex.on_joint_state(t, ex.limiter.position)
        ex.tick(t)
    assert np.any(np.abs(ex.limiter.velocity) > 0.3)
    ex.deactivate()
    with pytest.raises(ChunkRejected, match="not active"):
        ex.on_chunk(ActionChunk(t, 0.1, NAMES, np.full((5, 2), 0.5)), t)
    for _ in range(500):
        t += DT
        command = ex.tick(t)
        states.append(command.state)
        if command.positions is not None:
            positions.append(command.positions)
    assert states[0] == "stopping" and states[-1] == "inactive" and not ex.active
    steps = np.diff(np.array(positions), axis=0) / DT
    assert np.all(np.abs(steps) <= LIMITS.max_velocity * (1 + 1e-6))  # a deceleration, never a jump
    # at rest when commands stop: the last step of a stop (ending at rest, zero acceleration) is at most J DT^3 / 6
    assert (np.abs(steps[-1]) * DT <= LIMITS.max_jerk * DT**3 / 6 + 1e-12).all()
    ex.on_joint_state(t, np.array([0.0, 0.0]))
    ex.activate()  # again from the measured position, not the last command
    assert np.allclose(ex.tick(t + DT).positions, [0.0, 0.0])
