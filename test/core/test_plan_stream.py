"""Plan streaming (`output: joint_trajectory_plan`) into a model of ros2_controllers'
JointTrajectoryController (core/jtc.py) updated at 1 kHz.

The model does what JTC (kilted) does with each message: validation, the newest message installed at
the next update, the trajectory sampled one update period ahead with JTC's quintic formulas, the
state before a trajectory whose first point is still ahead interpolated from. Over the adversarial
chunk streams of test_executor_properties.py, with messages arriving up to 8 ms after they are sent
and at ROS times like today's (~1.7e9 s) as well as small ones, the 1 kHz command stream of the
controller keeps every limit (finite differences, as in the other property tests: no jump in
position or velocity, at a replacement or anywhere else) and the workspace, and each new message
continues the running one exactly up to the moment it takes over.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from property_settings import streams
from test_executor_properties import NAMES, ROBOT, WORKSPACE, events, make_chunk, outside_workspace
from test_jerk_limiter import assert_within_limits

from vla_ros.core import plan_stream
from vla_ros.core.executor import ExecutorCore, ExecutorSettings
from vla_ros.core.jtc import NS, JtcModel, TimedTrajectory, s_to_ns, sample_quintic, validate
from vla_ros.core.plan import BLEND_MODES
from vla_ros.core.safety import ChunkRejected
from vla_ros.core.types import ActionChunk
from vla_ros.sim.tabletop import HOME_Q

TICK_S = 0.01
MS = 1_000_000


class JtcRig:
    """An ExecutorCore streaming plans to a JtcModel: messages arrive `delay_ns` after they are taken,
    the arm follows the controller's commands exactly and reports them as its joint states."""

    def __init__(self, settings: ExecutorSettings, start: np.ndarray, t0_s: float = 0.0, delay_ns: int = 0, ws=None):
        self.ex = ExecutorCore(ROBOT.limits, settings, ws)
        self.ex.stream.clock = lambda: 0.0  # deterministic joins (no compute time)
        self.jtc = JtcModel(NAMES, start)
        self.t0_s, self.k, self.delay_ns = t0_s, 0, delay_ns
        self.jtc_ns = s_to_ns(t0_s)
        self.jtc.update(self.jtc_ns)
        self.in_flight: list[tuple[int, TimedTrajectory]] = []
        self.commands: list[np.ndarray] = []
        self.messages: list[TimedTrajectory] = []
        self.switch_gaps: list[float] = []  # |new - old| of the command at each replacement before its join
        self.joints_until_s = np.inf
        self.ex.activate()
        self.ex.on_joint_state(t0_s, start)

    @property
    def now_s(self) -> float:
        return self.t0_s + self.k * TICK_S

    def publish(self) -> None:
        out = self.ex.take_plan()
        if out is not None:
            self.messages.append(out[0])
            self.in_flight.append((s_to_ns(self.now_s) + self.delay_ns, out[0], s_to_ns(out[1])))

    def offer(self, chunk: ActionChunk) -> None:
        try:
            self.ex.on_chunk(chunk, self.now_s)
        except ChunkRejected:
            pass
        self.publish()

    def run(self, ticks: int) -> None:
        for _ in range(ticks):
            self.k += 1
            self._advance(s_to_ns(self.t0_s) + self.k * int(TICK_S * NS))
            if self.now_s <= self.joints_until_s:
                self.ex.on_joint_state(self.now_s, self.jtc.last_command[0])
            self.ex.tick(self.now_s)
            self.publish()

    def _advance(self, until_ns: int) -> None:
        """Controller updates every 1 ms up to until_ns; a message is received before the first update at
        or after its arrival (of several, the newest wins, as in JTC's realtime buffer)."""
        period = self.jtc.update_period_ns
        while self.jtc_ns + period <= until_ns:
            due = [m for m in self.in_flight if m[0] <= until_ns]
            first = min((m[0] for m in due), default=until_ns + period)
            # updates before the next arrival, then the update that installs what has arrived by then
            times = np.arange(self.jtc_ns + period, min(first, until_ns + 1), period)
            if len(times):
                self.commands.extend(self.jtc.update_many(times))
                self.jtc_ns = int(times[-1])
            if not due or self.jtc_ns + period > until_ns:
                continue
            update_ns = self.jtc_ns + period
            arrived = [m for m in self.in_flight if m[0] <= update_ns]
            for m in arrived:
                self.in_flight.remove(m)
            self._install(arrived, update_ns)

    def _install(self, arrived, update_ns: int) -> None:
        old = self.jtc.trajectory
        old_abs = TimedTrajectory(self.jtc.start_ns, NAMES, old.offsets_ns, *self.jtc._fields())
        for arrival, message, _ in arrived:
            assert self.jtc.receive(message, arrival), self.jtc.rejected
        command = self.jtc.update_many([update_ns])
        self.commands.extend(command)
        self.jtc_ns = update_ns
        sample_ns = update_ns + self.jtc.update_period_ns
        if old.velocities is not None and sample_ns <= arrived[-1][2] and old_abs.end_ns > sample_ns:
            before, _, _ = sample_quintic(old_abs, [sample_ns])
            self.switch_gaps.append(float(np.abs(command[0] - before[0]).max()))


def settings(**kw) -> ExecutorSettings:
    return ExecutorSettings(**{"max_stamp_skew_s": 1.0, "position_margin_rad": 0.02, "stream_plan": True, **kw})


# --- the JTC model's rules ------------------------------------------------------------------------
def trajectory(stamp_ns, offsets_s, positions, velocities=None, accelerations=None, names=("a", "b")):
    return TimedTrajectory(
        stamp_ns,
        names,
        np.round(np.asarray(offsets_s) * NS).astype(np.int64),
        np.asarray(positions, float),
        None if velocities is None else np.asarray(velocities, float),
        None if accelerations is None else np.asarray(accelerations, float),
    )


def test_the_model_validates_as_jtc_does():
    names = ("a", "b")
    ok = trajectory(5 * NS, [0.1, 0.2], [[0, 0], [1, 1]], [[1, 1], [0, 0]], [[0, 0], [0, 0]])
    assert validate(ok, names, 5 * NS) is None
    assert "ends in the past" in validate(ok, names, 6 * NS)  # a non-zero stamp whose end is past
    assert validate(trajectory(0, [0.1, 0.2], [[0, 0], [1, 1]]), names, 6 * NS) is None  # zero stamp: now
    assert "not strictly increasing" in validate(trajectory(0, [0.2, 0.2], [[0, 0], [1, 1]]), names, 0)
    moving = trajectory(0, [0.1, 0.2], [[0, 0], [1, 1]], [[1, 1], [0.5, 0]])
    assert "Velocity of last trajectory point of joint a is not zero" in validate(moving, names, 0)
    assert "don't match" in validate(trajectory(0, [0.1], [[0]], names=("a",)), names, 0)
    assert "doesn't match" in validate(trajectory(0, [0.1], [[0, 0]], names=("a", "c")), names, 0)


def test_the_model_joins_and_replaces_as_jtc_does():
    names = ("a", "b")
    jtc = JtcModel(names, np.zeros(2))
    t = 10 * NS
    assert np.allclose(jtc.update(t)[0], 0.0)  # holds where it was activated
    # zero stamp: starts at the next update; before its first point it interpolates from the measured state
    first = trajectory(0, [0.1, 0.2], [[1, 1], [2, 2]], [[0, 0], [0, 0]], [[0, 0], [0, 0]])
    assert jtc.receive(first, t + MS // 2)
    p, v, _ = jtc.update(t + MS, measured=(np.zeros(2), None, None))
    assert 0 < p[0] < 0.01 and v[0] > 0  # one period into a 100 ms quintic from 0 to 1
    for k in range(2, 101):
        p, v, _ = jtc.update(t + k * MS)
    np.testing.assert_allclose(p, 1.0, atol=1e-9)  # the command is the sample one period ahead: at 0.1 s
    # a stamped message whose first point is already due: no interpolation from the current state, the
    # trajectory at the update's time (a point already past is never reached)
    past = trajectory(t + 50 * MS, [0.0, 0.1, 0.2], [[5, 5], [6, 6], [6, 6]], [[0, 0], [10, 10], [0, 0]])
    assert jtc.receive(past, t + 100 * MS)
    p, _, _ = jtc.update(t + 101 * MS)
    # 52 ms into its 100 ms cubic Hermite from (5, 0) to (6, 10): h00 5 + h01 6 + h11 0.1 x 10 at 0.52
    tau = 0.52
    h01, h11 = -2 * tau**3 + 3 * tau**2, tau**3 - tau**2
    np.testing.assert_allclose(p[0], (1 - h01) * 5 + h01 * 6 + h11 * 0.1 * 10, atol=1e-12)
    # a trajectory wholly in the past is rejected; the running one continues
    stale = trajectory(t, [0.01, 0.02], [[9, 9], [9, 9]], [[0, 0], [0, 0]])
    assert not jtc.receive(stale, t + 102 * MS) and "ends in the past" in jtc.rejected[-1]
    p2, _, _ = jtc.update(t + 102 * MS)
    assert p2[0] > p[0]  # still the same trajectory
    # after the last point: held
    for k in range(103, 300):
        p, v, a = jtc.update(t + k * MS)
    np.testing.assert_allclose(p, 6.0)
    np.testing.assert_allclose(v, 0.0)


def test_the_vectorised_model_equals_the_stepwise_one():
    rng = np.random.default_rng(3)
    offsets = np.cumsum(rng.uniform(0.003, 0.05, 12)) + 0.02
    v = rng.normal(size=(12, 2))
    v[-1] = 0
    msg = trajectory(7 * NS, offsets, rng.normal(size=(12, 2)), v, rng.normal(size=(12, 2)))
    a, b = JtcModel(("a", "b"), np.zeros(2)), JtcModel(("a", "b"), np.zeros(2))
    times = 7 * NS + np.arange(-5, 500) * MS
    for m in (a, b):
        m.update(int(times[0]))
        assert m.receive(msg, int(times[0]))
    stepwise = np.array([a.update(int(t))[0] for t in times[1:]])
    np.testing.assert_allclose(b.update_many(times[1:]), stepwise, atol=1e-12)


# --- the executor's plans as the controller runs them ---------------------------------------------
def test_the_plan_sent_passes_through_the_per_tick_commands(monkeypatch):
    """At every tick the trajectory the controller interpolates is where the per-tick executor commands
    (same chunk, same join): the plan is the executor's own motion, not an approximation. (Bit for bit
    with the same float tick times: a tick time one rounding off can flip a decision made exactly at a
    plan knot, the nominal step against the filter's, both within the limits.)"""
    start = HOME_Q.copy()
    chunk = make_chunk(0.0, ([0.0] * 7, [0.6, -0.3, 0.4, 0.5, -0.2, 0.3, 0.0], 8), 0.1, "ok")
    monkeypatch.setattr(plan_stream, "MIN_COMPUTE_BUDGET_S", 0.0)
    rig = JtcRig(settings(plan_start_delay_s=0.0), start, ws=WORKSPACE)
    rig.ex.stream.compute_s.clear()
    rig.ex.stream.compute_s.append(0.0)  # the join at 0: the forecast's time frame is the per-tick one, exactly
    rig.ex.on_chunk(chunk, 0.0)
    join_s = rig.ex.take_plan()[1]
    per_tick = ExecutorCore(ROBOT.limits, ExecutorSettings(max_stamp_skew_s=1.0, position_margin_rad=0.02), WORKSPACE)
    per_tick.activate()
    per_tick.on_joint_state(0.0, start)
    per_tick.tick(join_s)  # a tick at the join: the chunk is anchored there, as the stream anchors it
    per_tick.on_chunk(chunk, join_s)
    sent = rig.ex.stream
    for k in range(1, 250):
        t = join_s + (k * 10 * MS) / NS  # the stream's tick times
        per_tick.on_joint_state(t, per_tick.limiter.position)
        command = per_tick.tick(t)
        np.testing.assert_allclose(sent.state_at(t)[0], command.positions, atol=1e-9)
    assert per_tick.tracker.filtered_ticks > 5  # the chunk asks too much somewhere: ruckig's pieces are in it


def test_a_new_plan_continues_the_running_one_until_it_takes_over():
    rig = JtcRig(settings(), HOME_Q.copy(), t0_s=1.7e9 + 0.123, delay_ns=4 * MS)
    for i in range(6):
        target = [0.4 * (-1) ** i, 0.2, -0.3 * (-1) ** i, 0.3, 0.0, 0.2, 0.0]
        rig.offer(make_chunk(rig.now_s - 0.05, ([0.0] * 7, target, 6), 0.1, "ok"))
        rig.run(23)
    rig.run(200)
    assert len(rig.switch_gaps) == 5, rig.switch_gaps  # each while the previous one was moving
    assert max(rig.switch_gaps) < 1e-9
    assert_within_limits(np.array(rig.commands), 0.001, rig.ex.limits)
    assert rig.jtc.rejected == [] and rig.ex.stream.failed == 0


def test_messages_go_out_only_when_the_plan_changes():
    rig = JtcRig(settings(), HOME_Q.copy())
    rig.run(20)
    assert rig.messages == []  # at rest, nothing to say: the controller holds
    rig.ex.estop()
    rig.run(5)
    assert rig.messages == []  # an e-stop at rest changes nothing
    rig.ex.reset_estop()
    rig.offer(make_chunk(rig.now_s, ([0.0] * 7, [0.3] * 7, 5), 0.1, "ok"))
    assert len(rig.messages) == 1 and rig.messages[0].velocities is not None
    rig.run(30)
    assert len(rig.messages) == 1  # no message per tick
    rig.ex.estop()
    rig.run(1)
    assert len(rig.messages) == 2  # the stop, through the same kind of message
    rig.run(150)
    assert len(rig.messages) == 2
    q = np.array(rig.commands[-50:])
    np.testing.assert_allclose(q, np.repeat(q[-1:], 50, 0), atol=1e-12)  # at rest, held
    assert_within_limits(np.array(rig.commands), 0.001, rig.ex.limits)
    last = rig.messages[-1]
    assert np.all(last.velocities[-1] == 0) and np.all(last.accelerations[-1] == 0)  # ends at rest


def test_a_plan_longer_than_the_horizon_is_sent_in_parts_that_join_smoothly():
    rig = JtcRig(settings(plan_horizon_s=0.5), HOME_Q.copy(), delay_ns=5 * MS)
    positions = HOME_Q + np.linspace(0, 1, 40)[:, None] * np.array([0.8, 0.3, -0.5, 0.4, 0.3, 0.5, 0.0])
    rig.offer(ActionChunk(rig.now_s, 0.1, NAMES, positions))
    rig.run(500)
    assert len(rig.messages) >= 7  # continued every ~0.5 s
    for m in rig.messages:
        assert (m.end_ns - m.stamp_ns) / NS < 2.0 and np.all(m.velocities[-1] == 0)  # each part ends at rest
    np.testing.assert_allclose(rig.commands[-1], positions[-1], atol=1e-6)  # and the whole chunk ran
    assert_within_limits(np.array(rig.commands), 0.001, rig.ex.limits)
    assert max(rig.switch_gaps) < 1e-9


def test_deactivation_and_stale_joints_stop_through_a_plan():
    rig = JtcRig(settings(), HOME_Q.copy())
    rig.offer(make_chunk(rig.now_s, ([0.0] * 7, [0.5] * 7, 5), 0.1, "ok"))
    rig.run(20)
    rig.joints_until_s = rig.now_s  # the joint states stop
    rig.run(40)
    assert rig.ex.last_state in ("stale_joints", "holding") and len(rig.messages) == 2
    rig.joints_until_s = np.inf
    rig.offer(make_chunk(rig.now_s, ([0.5] * 7, [0.0] * 7, 5), 0.1, "ok"))
    rig.run(10)
    rig.ex.deactivate()
    rig.run(80)
    assert not rig.ex.active and rig.ex.last_state == "inactive"  # at rest: commands stopped
    assert len(rig.messages) == 4
    assert_within_limits(np.array(rig.commands), 0.001, rig.ex.limits)


def test_a_plan_that_fails_its_check_is_not_sent_and_the_arm_brakes(monkeypatch):
    rig = JtcRig(settings(), HOME_Q.copy())
    rig.offer(make_chunk(rig.now_s, ([0.0] * 7, [0.5] * 7, 5), 0.1, "ok"))
    rig.run(30)
    real = plan_stream.check_trajectory
    failures = iter(["jerk of 'elbow' 300 beyond its limit 200"])  # the next plan (not its brake) fails

    def check(*args, **kw):
        return next(failures, None) or real(*args, **kw)

    monkeypatch.setattr(plan_stream, "check_trajectory", check)
    rig.offer(make_chunk(rig.now_s, ([0.5] * 7, [-0.5] * 7, 5), 0.1, "ok"))
    assert rig.ex.counters["plans_rejected"] == 1 and "jerk of 'elbow'" in rig.ex.stream.last_failure
    assert len(rig.messages) == 2 and rig.ex.plan.empty  # the brake went out instead
    rig.run(100)
    assert rig.ex.last_state == "holding"
    q = np.array(rig.commands)
    assert np.all(np.diff(q[-40:], axis=0) == 0)  # at rest
    assert_within_limits(q, 0.001, rig.ex.limits)


def test_a_plan_computed_too_late_for_its_join_is_made_again_later():
    """A plan whose computation outlasts the time before its join would reach the controller after it:
    it is undone and made again with a later join, never published late."""
    rig = JtcRig(settings(), HOME_Q.copy())
    rig.offer(make_chunk(rig.now_s, ([0.0] * 7, [0.4] * 7, 5), 0.1, "ok"))
    rig.run(20)
    ticks = iter([0.0, 0.0, 0.1, 0.1, 0.1])  # clock reads: the first attempt takes 100 ms, the second none
    rig.ex.stream.clock = lambda: next(ticks, 0.1)
    rig.offer(make_chunk(rig.now_s, ([0.4] * 7, [-0.2] * 7, 8), 0.2, "ok"))
    join_s = rig.in_flight[-1][2] / NS
    assert rig.ex.counters["plans_recomputed_late"] == 1
    assert join_s > rig.now_s + 0.1  # after what the first attempt took
    assert rig.ex.counters["chunks_accepted"] == 2 and rig.ex.counters["chunks_received"] == 2
    rig.ex.stream.clock = lambda: 0.0
    rig.run(200)
    assert max(rig.switch_gaps) < 1e-9
    assert_within_limits(np.array(rig.commands), 0.001, rig.ex.limits)


def test_speed_scale_slows_the_plan_and_scales_the_limits():
    full, slow = JtcRig(settings(), HOME_Q.copy()), JtcRig(settings(speed_scale=0.25), HOME_Q.copy())
    chunk = make_chunk(0.0, ([0.0] * 7, [0.3, 0.2, -0.2, 0.2, 0.0, 0.1, 0.0], 5), 0.1, "ok")
    for rig, ticks in ((full, 300), (slow, 800)):
        rig.offer(chunk)
        rig.run(ticks)
    np.testing.assert_allclose(slow.commands[-1], full.commands[-1], atol=1e-9)  # the same motion
    np.testing.assert_allclose(slow.ex.limits.max_velocity, 0.25 * ROBOT.limits.max_velocity)
    q = np.array(slow.commands)
    assert_within_limits(q, 0.001, slow.ex.limits)
    moving = np.flatnonzero(np.abs(np.diff(q, axis=0)).max(axis=1) > 0)
    assert moving[-1] > 3.0 * np.flatnonzero(np.abs(np.diff(np.array(full.commands), axis=0)).max(axis=1) > 0)[-1]


@pytest.mark.parametrize("scale", [0.1, 0.5])
def test_per_tick_commands_stay_within_the_scaled_limits(scale):
    ex = ExecutorCore(ROBOT.limits, ExecutorSettings(max_stamp_skew_s=1.0, speed_scale=scale))
    ex.activate()
    ex.on_joint_state(0.0, HOME_Q)
    rng = np.random.default_rng(1)
    commands = []
    for k in range(1, 600):
        t = k * TICK_S
        if k % 40 == 1:
            ex.on_chunk(ActionChunk(t, 0.1, NAMES, HOME_Q + rng.uniform(-1, 1, (6, 7))), t)
        ex.on_joint_state(t, ex.limiter.position)
        command = ex.tick(t)
        commands.append(command.positions)
        np.testing.assert_array_equal(command.velocities, ex.limiter.velocity)  # the joint_velocity output
    limits = ROBOT.limits
    q = np.array(commands)
    assert np.abs(np.diff(q, axis=0) / TICK_S).max(axis=0).max() > 0.5 * scale * limits.max_velocity.min()
    assert_within_limits(q, TICK_S, ex.limits)  # x s, s^2, s^3
    v = np.array([ex.limits.max_velocity]) / scale
    assert np.all(np.abs(np.diff(q, axis=0) / TICK_S) <= scale * v * (1 + 1e-6))


def test_speed_scale_stretches_a_chunk_from_its_stamp():
    ex = ExecutorCore(ROBOT.limits, ExecutorSettings(speed_scale=0.5))
    ex.activate()
    ex.on_joint_state(0.0, HOME_Q)
    ex.on_chunk(ActionChunk(0.0, 0.1, NAMES, HOME_Q + np.full((3, 7), 0.05)), 0.0)
    np.testing.assert_allclose(ex.plan.end_time_s, 0.6, atol=1e-9)  # the last point due at 0.3 s, now at 0.6 s
    with pytest.raises(ValueError, match="speed_scale must be in"):
        ExecutorSettings(speed_scale=0.0)


# --- adversarial streams ----------------------------------------------------------------------------
@streams(800)
@given(
    events=events,
    blend=st.sampled_from(BLEND_MODES),
    start=st.lists(st.floats(-0.05, 0.05), min_size=len(NAMES), max_size=len(NAMES)),
    delay_ms=st.integers(0, 8),
    t0=st.sampled_from([0.0, 1.7e9 + 0.123]),
)
def test_the_controller_running_the_streamed_plans_keeps_every_limit(events, blend, start, delay_ms, t0):
    start = np.clip(HOME_Q + np.array(start), ROBOT.limits.min_position, ROBOT.limits.max_position)
    rig = JtcRig(settings(blend=blend, plan_horizon_s=0.5), start, t0, delay_ms * MS, ws=WORKSPACE)
    ex, last_chunk = rig.ex, None
    for kind, a, b, c, d in events:
        if kind == "chunk":
            last_chunk = make_chunk(rig.now_s + a, b, c, d)
            rig.offer(last_chunk)
        elif kind == "duplicate" and last_chunk is not None:
            rig.offer(last_chunk)
        elif kind == "burst" and last_chunk is not None:
            for i in range(a):
                t0_i = last_chunk.t0_s + 0.001 * i
                rig.offer(ActionChunk(t0_i, last_chunk.dt_s, last_chunk.joint_names, last_chunk.positions[::-1].copy()))
        elif kind == "joints_dropout":
            rig.joints_until_s = rig.now_s + a * TICK_S
        elif kind == "estop":
            ex.estop() if a else ex.reset_estop()
        elif kind == "wait":
            rig.run(a)
        if kind != "joints_dropout" and rig.now_s > rig.joints_until_s + 0.2:
            rig.joints_until_s = np.inf
    rig.joints_until_s = np.inf
    ex.estop()
    rig.run(100)  # and whatever happened, an e-stop brings the arm to rest
    q = np.array(rig.commands)
    assert_within_limits(q, 0.001, ex.limits)
    assert not any(outside_workspace(x) for x in q[::10])
    assert rig.jtc.rejected == []
    assert ex.stream.failed == 0, ex.stream.last_failure
    assert not rig.switch_gaps or max(rig.switch_gaps) < 1e-9
    np.testing.assert_array_equal(q[-20:], np.repeat(q[-1:], 20, 0))
