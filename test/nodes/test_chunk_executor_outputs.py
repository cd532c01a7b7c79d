"""chunk_executor over DDS with the real-robot outputs: plans for a JointTrajectoryController, joint
velocities, the dry run and the slow run."""

import sys
import threading
import time
from pathlib import Path

import numpy as np
from conftest import wait_until
from std_msgs.msg import Float64MultiArray
from test_chunk_executor import ROBOT, trajectory
from trajectory_msgs.msg import JointTrajectory

from vla_ros.core.jtc import JtcModel
from vla_ros.nodes.conversions import trajectory_message_to_timed

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from test_jerk_limiter import assert_within_limits  # noqa: E402

Q0 = np.array([0.0, 0.15, 1.75, 1.24, 0.0, 0.0, 0.03])


def start(nodes, overrides, commands_type=Float64MultiArray, recorded_topic=""):
    """The nodes with `overrides` for the executor, the robot publishing its joint states, and (with
    `recorded_topic`) a recording of every JointTrajectory on that topic, matched before any chunk."""
    bringup, peer, _ = nodes(executor_overrides=overrides, commands_type=commands_type)
    received = record(peer, JointTrajectory, recorded_topic) if recorded_topic else None
    pub = peer.node.create_publisher(JointTrajectory, "action_chunk", 10)
    peer.q = Q0.copy()
    peer.publish_images = False
    peer.start_robot(rate_hz=100)
    assert wait_until(lambda: pub.get_subscription_count() > 0, 30)
    assert peer.wait_active("vla_chunk_executor")
    if recorded_topic:  # the executor's publisher found, so no plan is lost to discovery
        assert wait_until(lambda: peer.node.count_publishers(recorded_topic) > 0, 30)
    time.sleep(0.5)  # joint states reach the executor, the new subscription matches
    return bringup, peer, pub, received


def record(peer, msg_type, topic):
    """(receipt time ns on the peer's ROS clock, message) of everything on `topic`."""
    received, lock = [], threading.Lock()

    def on_message(msg):
        with lock:
            received.append((peer.node.get_clock().now().nanoseconds, msg))

    peer.node.create_subscription(msg_type, topic, on_message, 100)
    return received


def test_plans_run_in_a_joint_trajectory_controller_model_within_every_limit(nodes):
    """`output: joint_trajectory_plan`: every message is a plan the JTC accepts (stamped, positions,
    velocities and accelerations, at rest at its end); replayed through the JTC model at 1 kHz at the
    times they arrived, the controller's commands keep every limit through all replacements."""
    # 50 ms for transport: on a loaded test machine the peer's Python callback may take the message late
    overrides = {"output": "joint_trajectory_plan", "plan_start_delay_s": 0.05}
    bringup, peer, pub, plans = start(nodes, overrides, JointTrajectory, "/commands")
    rng = np.random.default_rng(2)
    for _ in range(6):
        pub.publish(trajectory(peer, Q0 + np.cumsum(rng.uniform(-0.12, 0.12, (8, 7)), axis=0)))
        time.sleep(0.15)
    assert peer.trigger("/vla_chunk_executor/estop").success
    time.sleep(1.0)
    assert len(plans) >= 7, len(plans)  # a plan per chunk and the stop; none per tick
    jtc = JtcModel(ROBOT.joint_names, Q0)
    t = plans[0][0] - 10_000_000
    jtc.update(t)
    commands = []
    previous = None
    for arrival, msg in plans:
        plan = trajectory_message_to_timed(msg)
        if previous is not None:  # it arrived before its join: where it leaves the previous plan's waypoints
            old = dict(zip(previous.times_ns.tolist(), previous.positions.tolist()))
            join = next(t for t, q in zip(plan.times_ns.tolist(), plan.positions.tolist()) if old.get(t) != q)
            assert arrival < join - 1_000_000, f"a plan arrived {(arrival - join) / 1e6:.1f} ms after its join"
        previous = plan
        assert plan.stamp_ns > 0 and plan.velocities is not None and plan.accelerations is not None
        assert np.all(plan.velocities[-1] == 0) and np.all(plan.accelerations[-1] == 0)
        while t + 1_000_000 < arrival:
            t += 1_000_000
            commands.append(jtc.update(t)[0])
        assert jtc.receive(plan, arrival), jtc.rejected
    commands.extend(jtc.update_many(t + 1_000_000 * np.arange(1, 2000)))
    q = np.array(commands)
    assert np.ptp(q[:, 0]) > 0.05  # it moved
    assert_within_limits(q, 0.001, ROBOT.limits)
    np.testing.assert_allclose(q[-100:], np.repeat(q[-1:], 100, 0))  # stopped by the e-stop, held
    assert bringup.dead() == {}


def test_dry_run_sends_nothing_to_the_controller(nodes):
    overrides = {"output": "joint_trajectory_plan", "dry_run": True}
    bringup, peer, pub, shadow = start(nodes, overrides, JointTrajectory, "/dry_run/commands")
    for i in range(4):
        pub.publish(trajectory(peer, [Q0 + 0.1 * (i + 1)] * 6))
        time.sleep(0.2)
    assert wait_until(lambda: len(shadow) >= 4, 5), "the dry run published no plans"
    time.sleep(0.3)
    assert peer.command_msgs == []  # nothing ever reached the controller's topic
    assert bringup.dead() == {}


def test_slow_run_commands_joint_velocities_within_speed_scale_times_the_limits(nodes):
    """`output: joint_velocity` with `speed_scale: 0.3`: huge jumps asked for, the commanded velocities
    stay within 0.3 x max_velocity (and use most of it)."""
    bringup, peer, pub, _ = start(nodes, {"output": "joint_velocity", "speed_scale": 0.3})
    rng = np.random.default_rng(0)
    for _ in range(8):
        pub.publish(trajectory(peer, rng.uniform(-10, 10, (8, 7))))
        time.sleep(0.15)
    time.sleep(0.3)
    velocities = np.array([c for _, c in peer.commands])
    assert len(velocities) > 50
    assert np.all(np.abs(velocities) <= 0.3 * ROBOT.limits.max_velocity * (1 + 1e-9))
    assert np.abs(velocities).max(axis=0)[0] > 0.15 * ROBOT.limits.max_velocity[0]
    assert bringup.dead() == {}
