"""Sensor-glitch and one-writer rules of the executor's inputs (core/input_guards.py)."""

import numpy as np

from vla_ros.core.executor import ExecutorCore
from vla_ros.core.input_guards import GlitchFilter, WriterArbiter
from vla_ros.core.types import JointLimits

LIMITS = JointLimits(
    ("a", "b"), np.full(2, -3.0), np.full(2, 3.0), np.full(2, 1.0), np.full(2, 10.0), np.full(2, 100.0)
)


def test_a_jump_beyond_velocity_times_elapsed_is_a_glitch_until_it_persists():
    f = GlitchFilter(LIMITS.max_velocity, margin_rad=0.05, settle_s=0.5)
    assert f.accept(0.0, np.zeros(2))
    assert f.accept(0.01, np.array([0.05, 0.0]))  # 1 rad/s x 0.01 s + 0.05: plausible
    assert not f.accept(0.02, np.array([1.05, 0.0]))  # a 1-rad glitch
    assert f.accept(0.03, np.array([0.06, 0.0]))  # back: the glitch is forgotten
    t, ok = 0.04, []
    while t < 0.7:  # a jump that stays, consistent with itself, is real after settle_s
        ok.append(f.accept(t, np.array([1.06, 0.0])))
        t += 0.01
    assert not any(ok[:49]) and ok[-1] and f.last[1][0] == 1.06


def test_the_executor_ignores_a_glitch_and_holds_while_it_lasts():
    core = ExecutorCore(LIMITS)
    core.on_joint_state(0.0, np.zeros(2))
    core.activate()
    core.tick(0.0)
    for i in range(1, 40):  # 0.39 s of a joint stuck 1 rad away: ignored, the joint state goes stale
        core.on_joint_state(i * 0.01, np.array([1.0, 0.0]))
        command = core.tick(i * 0.01)
    assert core.counters["joint_glitches"] == 39
    np.testing.assert_allclose(core.measured, np.zeros(2))
    assert command.state == "stale_joints"
    np.testing.assert_allclose(command.positions, np.zeros(2))  # it did not chase the glitch
    core.deactivate()
    core.activate()  # starts from the last plausible measurement
    np.testing.assert_allclose(core.limiter.position, np.zeros(2))


def test_the_first_writer_wins_until_silent():
    arbiter = WriterArbiter(silence_s=0.5)
    assert arbiter.admit("A", 0.0) is None
    assert "second writer (B)" in arbiter.admit("B", 0.1) and "following A" in arbiter.admit("B", 0.2)
    assert arbiter.admit("A", 0.3) is None
    assert arbiter.admit("B", 0.7) is not None  # A spoke 0.4 s ago
    assert arbiter.admit("B", 0.9) is None  # A silent for 0.6 s: B takes over
    assert arbiter.admit("A", 1.0) is not None
    assert arbiter.writers == {"A", "B"}
    assert arbiter.admit(None, 1.0) is None


def test_a_clock_jump_is_counted_drops_the_plan_and_never_makes_an_oversized_step():
    from vla_ros.core.types import ActionChunk

    core = ExecutorCore(LIMITS)
    core.on_joint_state(0.0, np.zeros(2))
    core.activate()
    core.on_chunk(ActionChunk(0.0, 0.1, ("a", "b"), np.tile([[2.0, 0.0]], (30, 1))), 0.0)
    t, previous, states = 0.0, None, []
    for i in range(200):
        t += 0.01 + (10.0 if i == 50 else 0.0) - (20.0 if i == 120 else 0.0)  # forwards 10 s, back 20 s
        core.on_joint_state(t, np.zeros(2))
        command = core.tick(t, elapsed_s=0.01)
        if previous is not None:
            assert np.abs(command.positions - previous).max() <= LIMITS.max_velocity.max() * 0.01 + 1e-9, i
        previous, _ = command.positions, states.append(command.state)
    assert core.counters["clock_jumps"] == 2
    assert states[49] == "tracking" and states[50] == "holding" and states[-1] == "holding"
