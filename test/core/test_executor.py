"""ExecutorCore: states, watchdogs, e-stop, and limits over adversarial chunk streams."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vla_ros.core.executor import ExecutorCore, ExecutorSettings
from vla_ros.core.plan import BLEND_MODES
from vla_ros.core.safety import ChunkRejected
from vla_ros.core.types import ActionChunk, JointLimits

NAMES = ("a", "b")
LIMITS = JointLimits(NAMES, np.array([-1.0, -1.0]), np.array([1.0, 1.0]), np.array([1.0, 2.0]))
DT = 0.01


def core(blend="replace"):
    return ExecutorCore(LIMITS, ExecutorSettings(joint_state_timeout_s=0.2, plan_timeout_s=0.3, max_stamp_skew_s=1.0, blend=blend))


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
    for _ in range(60):
        t += DT
        ex.on_joint_state(t, np.zeros(2))
        cmd = ex.tick(t)
        states.append(cmd.state)
    assert states[0] == "tracking" and states[-1] == "holding"
    np.testing.assert_allclose(cmd.positions, [0.1, 0.1])  # holds the last point, not zero


def test_stale_joint_states_hold_the_last_command():
    ex = core()
    ex.on_joint_state(0.0, np.array([0.3, 0.3]))
    ex.on_chunk(ActionChunk(0.0, 0.1, NAMES, np.full((5, 2), 0.9)), 0.0)
    ex.tick(0.05)
    held = ex.tick(0.1).positions
    cmd = ex.tick(0.5)  # no joint state since t=0
    assert cmd.state == "stale_joints"
    np.testing.assert_allclose(cmd.positions, held)


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


finite = st.floats(-1e6, 1e6)
values = st.one_of(finite, st.sampled_from([np.nan, np.inf, -np.inf, 50.0, -50.0]))
events = st.lists(
    st.one_of(
        st.tuples(st.just("chunk"), st.floats(-2, 2), st.lists(st.lists(values, min_size=2, max_size=2), min_size=1, max_size=6)),
        st.tuples(st.just("joints"), st.floats(-0.5, 0.1), st.lists(st.floats(-1, 1), min_size=2, max_size=2)),
        st.tuples(st.just("wait"), st.integers(1, 40), st.just(None)),
        st.tuples(st.just("estop"), st.booleans(), st.just(None)),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=1500, deadline=None)
@given(events=events, blend=st.sampled_from(BLEND_MODES))
def test_no_command_leaves_the_limits_whatever_the_stream(events, blend):
    ex, t, prev = core(blend), 0.0, None
    for kind, a, b in events:
        if kind == "chunk":
            try:
                ex.on_chunk(ActionChunk(t + a, 0.1, NAMES, np.array(b, float)), t)
            except ChunkRejected:
                pass
        elif kind == "joints":
            ex.on_joint_state(t + a, np.array(b))
        elif kind == "estop":
            ex.estop() if a else ex.reset_estop()
        else:
            for _ in range(a):
                t += DT
                cmd = ex.tick(t)
                if cmd.positions is None:
                    continue
                assert np.all(np.isfinite(cmd.positions))
                assert np.all(np.abs(cmd.positions) <= 1.0 + 1e-9)
                if prev is not None:
                    assert np.all(np.abs(cmd.positions - prev) <= LIMITS.max_velocity * DT + 1e-9)
                prev = cmd.positions
