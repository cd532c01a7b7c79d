"""Fault catalogue, the executor's side (real processes over DDS): killed nodes and respawn,
joint-state faults, two writers on action_chunk, chunks stamped in the future."""

from __future__ import annotations

import os
import re
import signal
import threading
import time

import numpy as np
from conftest import log_text, wait_until
from faults import HOME, ROBOT, assert_within_limits, diagnostics, trajectory
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory

EXECUTOR = "vla_chunk_executor: executor"
FAST_DIAGNOSTICS = {"diagnostics_period_s": 0.2}


def stamp_s(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def counter(peer, name: str) -> int:
    return int(diagnostics(peer, EXECUTOR).get(name, 0))


def test_killed_nodes_are_reported_respawned_and_resume_safely(nodes, tmp_path):
    """SIGKILL the policy mid-episode: the executor holds within limits; the respawned policy is
    configured and activated again and publishes only from observations after its restart. SIGKILL
    the executor: the respawned one starts from the measured position, not its last command."""
    bringup, peer, _ = nodes(
        respawn=True, policy_overrides={"instruction": "reach the red cube"}, executor_overrides=FAST_DIAGNOSTICS
    )
    peer.q = HOME.copy()
    peer.start_robot(rate_hz=50)
    assert wait_until(lambda: len(peer.chunks) >= 2, 60), log_text(tmp_path, "vla_policy")
    killed_at = stamp_s(peer.now_msg())
    os.kill(bringup.procs["vla_policy"].pid, signal.SIGKILL)
    n_chunks = len(peer.chunks)
    held = ("holding", "policy_unresponsive")  # the plan ran out, or the policy's heartbeat stopped first
    assert wait_until(lambda: diagnostics(peer, EXECUTOR).get("message") in held, 10)
    assert wait_until(lambda: bringup.restarts.get("vla_policy") == 1, 5)
    assert wait_until(lambda: len(peer.chunks) > n_chunks + 1, 90), log_text(tmp_path, "vla_lifecycle_manager")
    after = peer.chunks[n_chunks:]
    assert all(stamp_s(m.header.stamp) > killed_at for m in after), "a chunk from before the restart"
    manager = log_text(tmp_path, "vla_lifecycle_manager")
    assert (
        "vla_policy: lost (no answer to get_state)" in manager
        and "vla_policy: back (restarted, unconfigured)" in manager
    )

    t0 = time.monotonic()
    os.kill(bringup.procs["vla_chunk_executor"].pid, signal.SIGKILL)
    peer.q = HOME + np.r_[0.2, np.zeros(6)]  # where the arm is measured when the new executor starts
    assert wait_until(lambda: bringup.restarts.get("vla_chunk_executor") == 1, 5)
    assert wait_until(lambda: sum(t > t0 + 0.5 for t, _ in peer.commands) > 30, 90), log_text(
        tmp_path, "vla_lifecycle_manager"
    )
    resumed = [(t, c) for t, c in peer.commands if t > t0 + 0.5]
    assert np.abs(resumed[0][1] - peer.q).max() <= ROBOT.limits.max_velocity.max() * 0.01 * 1.6, (resumed[0][1], peer.q)
    assert_within_limits(resumed)
    assert set(bringup.dead()) == set()


def test_joint_state_faults_hold_and_are_reported_the_executor_never_chases_a_glitch(nodes, tmp_path):
    bringup, peer, _ = nodes(executor_overrides=FAST_DIAGNOSTICS)
    pub = peer.node.create_publisher(JointTrajectory, "action_chunk", 10)
    mode = {"fault": "none"}
    stop = threading.Event()
    names = list(ROBOT.joint_names)

    def robot():  # 100 Hz joint states with the fault of the moment (bounded: 60 s)
        end = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < end:
            fault, q, js_names = mode["fault"], HOME.copy(), list(names)
            if fault == "stopped":
                time.sleep(0.01)
                continue
            if fault == "nan":
                q[2] = np.nan
            if fault == "glitch":
                q[0] += 1.0
            if fault == "reordered":
                order = np.random.default_rng(int(time.monotonic() * 100)).permutation(len(names))
                js_names, q = [names[i] for i in order], q[order]
            if fault == "missing":
                js_names, q = js_names[1:], q[1:]
            msg = JointState(name=js_names, position=q.tolist())
            msg.header.stamp = peer.now_msg()
            peer.js_pub.publish(msg)
            time.sleep(0.01)

    threading.Thread(target=robot, daemon=True).start()
    try:
        assert peer.wait_active("vla_chunk_executor")
        assert wait_until(lambda: len(peer.commands) > 10 and pub.get_subscription_count() > 0, 30)
        time.sleep(0.5)
        t_start, stale = time.monotonic(), counter(peer, "entered_stale_joints")
        mode["fault"] = "reordered"  # names in a new order every message: fine, by name
        time.sleep(0.5)
        assert counter(peer, "joint_glitches") == 0 and "ignoring joint state" not in log_text(
            tmp_path, "vla_chunk_executor"
        )
        assert wait_until(lambda: diagnostics(peer, EXECUTOR).get("message") == "holding", 2)
        stale = counter(peer, "entered_stale_joints")
        for fault in ("stopped", "missing", "nan", "glitch"):
            mode["fault"] = fault
            time.sleep(0.4)  # longer than joint_state_timeout_s (0.2 s): the executor holds
            assert wait_until(lambda: diagnostics(peer, EXECUTOR).get("message") == "stale_joints", 2), fault
            mode["fault"] = "none"
            stale += 1
            assert wait_until(
                lambda s=stale: (
                    counter(peer, "entered_stale_joints") >= s
                    and diagnostics(peer, EXECUTOR).get("message") == "holding"
                ),
                3,
            ), fault
        assert counter(peer, "joint_glitches") >= 20
        # a glitch while tracking: the plan goes on, the commands never head for the glitch
        pub.publish(trajectory(peer, [HOME + np.r_[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]] * 10))
        mode["fault"] = "glitch"
        time.sleep(0.1)
        mode["fault"] = "none"
        time.sleep(0.3)
        commands = [(t, c) for t, c in peer.commands if t > t_start]
        assert_within_limits(commands)
        assert max(abs(c[0] - HOME[0]) for _, c in commands) < 1e-6, "the executor chased the glitch"
        log = log_text(tmp_path, "vla_chunk_executor")
        assert "ignoring joint state: joint state lacks joints ['shoulder_pan']" in log
        assert "ignoring joint state: joint state has non-finite positions" in log
        assert "ignoring joint state: sensor glitch: 'shoulder_pan' jumped 1.000 rad" in log, log[-1500:]
    finally:
        stop.set()
    assert bringup.dead() == {}


def test_two_writers_on_action_chunk_are_detected_and_never_interleaved(nodes, tmp_path):
    bringup, peer, _ = nodes(executor_overrides=FAST_DIAGNOSTICS)
    first = peer.node.create_publisher(JointTrajectory, "action_chunk", 10)
    second = peer.node.create_publisher(JointTrajectory, "action_chunk", 10)
    peer.q = HOME.copy()
    peer.publish_images = False
    peer.start_robot(rate_hz=100)
    assert wait_until(lambda: len(peer.commands) > 10 and second.get_subscription_count() > 0, 30)
    up = [HOME + np.r_[0.05 * (i + 1), np.zeros(6)] for i in range(10)]
    down = [HOME - np.r_[0.05 * (i + 1), np.zeros(6)] for i in range(10)]
    t0 = time.monotonic()
    for _ in range(8):  # both write at 10 Hz
        first.publish(trajectory(peer, up))
        second.publish(trajectory(peer, down))
        time.sleep(0.1)
    commands = [c for t, c in peer.commands if t > t0]
    assert min(c[0] for c in commands) >= HOME[0] - 1e-9, "a chunk of the second writer ran"
    assert max(c[0] for c in commands) > HOME[0] + 0.05, "the first writer's chunks did not run"
    assert wait_until(lambda: counter(peer, "rejected_second_writer") >= 7, 3)
    assert "a second writer (publisher " in log_text(tmp_path, "vla_chunk_executor")
    time.sleep(0.6)  # the first writer silent for > plan_timeout_s (0.5 s): the second takes over
    second.publish(trajectory(peer, down))
    assert wait_until(lambda: peer.commands[-1][1][0] < HOME[0] + 0.05, 5)
    assert bringup.dead() == {}


def test_a_chunk_stamped_in_the_future_is_rejected(nodes, tmp_path):
    bringup, peer, _ = nodes(executor_overrides=FAST_DIAGNOSTICS)
    pub = peer.node.create_publisher(JointTrajectory, "action_chunk", 10)
    peer.q = HOME.copy()
    peer.publish_images = False
    peer.start_robot(rate_hz=100)
    assert wait_until(lambda: len(peer.commands) > 10 and pub.get_subscription_count() > 0, 30)
    now = peer.now_msg()
    future = type(now)(sec=now.sec + 3, nanosec=now.nanosec)
    pub.publish(trajectory(peer, [HOME + np.r_[0.5, np.zeros(6)]] * 5, stamp=future))
    assert wait_until(lambda: counter(peer, "chunks_rejected") >= 1, 3)
    assert re.search(
        r"rejected chunk: chunk stamp is 2\.9\d+ s in the future \(limit 2\.0 s\)",
        log_text(tmp_path, "vla_chunk_executor"),
    )
    time.sleep(0.2)
    np.testing.assert_allclose(peer.commands[-1][1], HOME, atol=1e-9)
    assert bringup.dead() == {}
