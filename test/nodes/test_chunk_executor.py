"""chunk_executor as a real process over DDS: limits, hold, e-stop, latency compensation."""

import os
import time
from pathlib import Path

import numpy as np
from conftest import log_text, wait_until
from tracking import bring_up_tracking
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from vla_ros.config import load_robot_config
from vla_ros.nodes.conversions import s_to_duration

ROBOT = load_robot_config("sim")


def trajectory(peer, positions, dt=0.1, stamp=None):
    msg = JointTrajectory(joint_names=list(ROBOT.joint_names))
    msg.header.stamp = stamp or peer.now_msg()
    msg.points = [
        JointTrajectoryPoint(positions=list(map(float, p)), time_from_start=s_to_duration(dt * (i + 1)))
        for i, p in enumerate(positions)
    ]
    return msg


def start(nodes):
    bringup, peer, _ = nodes()
    pub = peer.node.create_publisher(JointTrajectory, "action_chunk", 10)
    peer.q = np.array([0.0, 0.15, 1.75, 1.24, 0.0, 0.0, 0.03])
    peer.publish_images = False
    peer.start_robot(rate_hz=100)
    assert wait_until(lambda: len(peer.commands) > 10 and pub.get_subscription_count() > 0, 30)
    return bringup, peer, pub


def test_commands_stay_within_position_and_velocity_limits_under_huge_jumps(nodes):
    bringup, peer, pub = start(nodes)
    rng = np.random.default_rng(0)
    t_start = time.monotonic()
    for _ in range(10):
        pub.publish(trajectory(peer, rng.uniform(-10, 10, (8, len(ROBOT.joint_names)))))
        time.sleep(0.1)
    time.sleep(0.3)
    cmds = [(t, c) for t, c in peer.commands if t >= t_start]
    q = np.array([c for _, c in cmds])
    margin = np.minimum(0.02, 0.25 * (ROBOT.limits.max_position - ROBOT.limits.min_position))
    assert np.all(q >= ROBOT.limits.min_position + margin - 1e-9) and np.all(
        q <= ROBOT.limits.max_position - margin + 1e-9
    )
    # over any stretch, displacement <= max_velocity * elapsed (+ one control period of slack)
    t = np.array([t for t, _ in cmds])
    span = t[-1] - t[0]
    assert np.all(np.abs(q[-1] - q[0]) <= ROBOT.limits.max_velocity * (span + 0.05))
    steps = np.abs(np.diff(q, axis=0))
    assert np.all(steps <= ROBOT.limits.max_velocity * 0.05), "a single command jumped"
    assert np.ptp(q[:, 0]) > 0.1, "the executor did not move at all"
    assert bringup.dead() == {}


def test_nan_and_wrong_joint_chunks_are_rejected_and_position_held(nodes):
    bringup, peer, pub = start(nodes)
    held = peer.commands[-1][1]
    bad = trajectory(peer, [[np.nan] * 7])
    wrong = trajectory(peer, [[0.0] * 7])
    wrong.joint_names = ["nope"] * 7
    ragged = trajectory(peer, [[0.0] * 3])
    for m in (bad, wrong, ragged):
        pub.publish(m)
    time.sleep(0.5)
    last = np.array([c for _, c in peer.commands[-20:]])
    np.testing.assert_allclose(last, np.repeat(held[None], len(last), 0), atol=1e-9)
    assert bringup.dead() == {}


def test_chunk_with_past_stamp_is_partially_executed(nodes):
    bringup, peer, pub = start(nodes)
    q0 = peer.q
    now = peer.now_msg()
    past = type(now)(sec=now.sec - 1, nanosec=now.nanosec)  # stamped 1 s ago: 0.1..0.9 s points are over
    pts = [q0 + np.r_[0.05 * (i + 1), np.zeros(6)] for i in range(15)]  # shoulder_pan ramps 0.05/point
    pub.publish(trajectory(peer, pts, stamp=past))
    time.sleep(0.2)
    first = peer.commands[-1][1][0]
    # the executor jumped ahead in the plan (at 1.1 s the target is ~0.55); a plan that cannot get there in
    # time within the limits is slowed down (core/plan.py), so the arm heads there at once, within the limits
    assert first > q0[0] + 0.005
    assert wait_until(lambda: peer.commands[-1][1][0] > 0.5, 3)


def test_estop_latches_and_holds_then_resets(nodes):
    bringup, peer, pub = start(nodes)
    assert peer.trigger("/vla_chunk_executor/estop").success
    held = peer.commands[-1][1]
    pub.publish(trajectory(peer, [peer.q + 0.3] * 8))
    time.sleep(0.5)
    np.testing.assert_allclose(peer.commands[-1][1], held, atol=1e-9)
    assert peer.trigger("/vla_chunk_executor/reset_estop").success
    pub.publish(trajectory(peer, [peer.q + 0.3] * 8))
    assert wait_until(lambda: abs(peer.commands[-1][1][0] - held[0]) > 0.05, 3)


def test_holds_when_joint_states_stop_and_reports_it_in_diagnostics(nodes):
    bringup, peer, pub = start(nodes)
    pub.publish(trajectory(peer, [peer.q + np.r_[0.5, np.zeros(6)]] * 30))
    time.sleep(0.3)
    peer._stop.set()  # the robot's joint states stop
    time.sleep(0.4)
    a = peer.commands[-1][1]
    time.sleep(0.3)
    np.testing.assert_allclose(peer.commands[-1][1], a, atol=1e-9)

    def stale_reported():
        return any(s.message == "stale_joints" for d in peer.diagnostics for s in d.status if "executor" in s.name)

    assert wait_until(stale_reported, 3)


def test_joint_state_and_joint_trajectory_outputs(nodes):
    from sensor_msgs.msg import JointState

    for kind, msg_type in (("joint_state", JointState), ("joint_trajectory", JointTrajectory)):
        bringup, peer, _ = nodes(executor_overrides={"output": kind}, commands_type=msg_type)
        peer.q = np.array([0.0, 0.15, 1.75, 1.24, 0.0, 0.0, 0.03])
        peer.publish_images = False
        peer.start_robot(rate_hz=100)
        assert wait_until(lambda: len(peer.command_msgs) > 5, 30), f"no {kind} commands"
        msg = peer.command_msgs[-1]
        names = list(msg.name) if kind == "joint_state" else list(msg.joint_names)
        positions = msg.position if kind == "joint_state" else msg.points[0].positions
        assert names == list(ROBOT.joint_names)
        np.testing.assert_allclose(positions, peer.q, atol=1e-9)  # holding where the robot is
        # stamped with the time each command is for (the tick's deadline), not when it was published:
        # consecutive stamps are whole control periods apart, however late a tick woke up
        assert wait_until(lambda: len(peer.command_msgs) > 60, 10)
        stamps = np.array([m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in peer.command_msgs[-50:]])
        periods = np.diff(stamps) / 0.01
        assert np.abs(periods - np.round(periods)).max() < 0.02, periods  # within 0.2 ms of the grid
        peer.close()
        bringup.stop()


def test_estop_under_load_stops_within_the_deceleration_limits_and_reports_it(nodes):
    """Policy node streaming chunks, executor tracking them: the e-stop brings the arm to rest and keeps it there."""
    from diagnostic_msgs.msg import DiagnosticStatus

    bringup, peer, statuses = bring_up_tracking(nodes, 0.1, timeout_s=60)
    assert peer.trigger("/vla_chunk_executor/estop").success
    stopped_at = time.monotonic()
    chunks_before = len(peer.chunks)
    assert wait_until(lambda: len(peer.chunks) > chunks_before + 3, 5), "the policy node stopped streaming"
    time.sleep(max(0.0, stopped_at + 1.2 - time.monotonic()))
    tail = np.array([c for t, c in peer.commands if t > stopped_at + 0.6])  # braking (< 0.6 s) is over
    assert len(tail) > 10
    np.testing.assert_allclose(tail, np.repeat(tail[:1], len(tail), 0), atol=1e-9)  # at rest, chunks ignored
    after = np.array([c for t, c in peer.commands if t > stopped_at])
    steps = np.abs(np.diff(after, axis=0))
    assert np.all(steps <= ROBOT.limits.max_velocity * 0.05), "the stop jumped"
    assert any(s.message == "estop" and s.level == DiagnosticStatus.WARN for s in statuses)
    assert bringup.dead() == {}


def test_guided_mode_publishes_the_plan_ahead_and_the_policy_continues_it(nodes):
    bringup, peer, _ = nodes(
        policy_overrides={"instruction": "reach the red cube", "inference_period_s": 0.1},
        executor_overrides={"blend_mode": "guided"},
    )
    prefixes = []
    peer.node.create_subscription(JointTrajectory, "plan_prefix", prefixes.append, 20)
    peer.q = np.array([0.0, 0.15, 1.75, 1.24, 0.0, 0.0, 0.03])
    peer.start_robot(rate_hz=50)

    def guided_chunks() -> int:
        values = [
            kv
            for d in peer.diagnostics
            for s in d.status
            if "policy" in s.name
            for kv in s.values
            if kv.key == "chunks_guided"
        ]
        return int(values[-1].value) if values else 0

    assert wait_until(lambda: guided_chunks() > 3, 60), "the policy never used the plan prefix"
    # the plan ahead; one point only when the plan has just run out (inference slower than the chunk)
    msg = next(m for m in reversed(prefixes) if len(m.points) >= 2)
    assert list(msg.joint_names) == list(ROBOT.joint_names)
    offsets = [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points]
    assert offsets[0] == 0.0 and all(b > a for a, b in zip(offsets, offsets[1:]))
    assert bringup.dead() == {}


def _threads(pid: int) -> dict[int, tuple[set[int], int]]:
    """Per thread id of process `pid`: (allowed CPUs, scheduling policy)."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        tid = int(task.name)
        try:
            out[tid] = (os.sched_getaffinity(tid), os.sched_getscheduler(tid))
        except OSError:  # the thread ended meanwhile
            pass
    return out


def test_realtime_options_reach_the_control_thread_and_are_logged(nodes, tmp_path):
    """cpu_affinity pins the control thread only; realtime_priority makes it SCHED_FIFO where permitted
    (and the ROS callback thread, which it shares the interpreter lock with, one level below), else one
    log line says why; either way the executor commands as usual."""
    cpu = min(os.sched_getaffinity(0))
    bringup, peer, _ = nodes(executor_overrides={"cpu_affinity": [cpu], "realtime_priority": 10})
    peer.q = np.array([0.0, 0.15, 1.75, 1.24, 0.0, 0.0, 0.03])
    peer.publish_images = False
    peer.start_robot(rate_hz=100)
    assert wait_until(lambda: len(peer.commands) > 10, 30)
    log = log_text(tmp_path, "vla_chunk_executor")
    assert f"cpu_affinity [{cpu}]: control loop pinned" in log
    threads = _threads(bringup.procs["vla_chunk_executor"].pid)
    pinned = [tid for tid, (cpus, _) in threads.items() if cpus == {cpu}]
    assert len(pinned) == 1 or len(os.sched_getaffinity(0)) == 1, threads  # one thread: the control loop
    if "control loop runs SCHED_FIFO at priority 10" in log:
        assert "ROS callback thread runs SCHED_FIFO at priority 9" in log
        assert threads[pinned[0]][1] == os.SCHED_FIFO and os.sched_getparam(pinned[0]).sched_priority == 10
        fifo = {tid: os.sched_getparam(tid).sched_priority for tid, (_, p) in threads.items() if p == os.SCHED_FIFO}
        pid = bringup.procs["vla_chunk_executor"].pid
        assert fifo == {pinned[0]: 10, pid: 9}, fifo  # the callbacks run on the main thread
    else:
        assert "realtime_priority 10: not permitted" in log
    assert bringup.dead() == {}
