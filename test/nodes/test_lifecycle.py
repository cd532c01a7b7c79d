"""Managed nodes over DDS, real processes: configure failures, repeated transitions, braking on
deactivate, backend settings reaching the backend, parameter rules at run time."""

from __future__ import annotations

import os
import time

import numpy as np
import yaml
from conftest import log_text, wait_until
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from vla_ros.config import load_robot_config
from vla_ros.nodes.conversions import s_to_duration

ROBOT = load_robot_config("sim")
HOME = np.array([0.0, 0.15, 1.75, 1.24, 0.0, 0.0, 0.03])


def process_resources(pid: int) -> dict[str, int]:
    """Threads, open file descriptors and resident memory (kB) of a process, from /proc."""
    status = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status").read().splitlines() if ":" in line)
    return {
        "threads": int(status["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "rss_kb": int(status["VmRSS"].split()[0]),
    }


def test_configure_fails_on_a_missing_model_then_succeeds_and_cycles_without_leaks(nodes, tmp_path, tiny_checkpoint):
    missing = tmp_path / "no_such_checkpoint"
    bringup, peer, _ = nodes(model_path=missing, autostart=False)
    assert peer.lifecycle_state("vla_policy") == "unconfigured"
    assert not peer.change_state("vla_policy", "configure")
    assert peer.lifecycle_state("vla_policy") == "unconfigured"  # alive, still answering
    log = log_text(tmp_path, "vla_policy")
    assert "configure failed: octo checkpoint folder not found" in log and str(missing) in log
    assert peer.set_param("vla_policy", "model_path", str(tiny_checkpoint)).successful
    assert peer.change_state("vla_policy", "configure"), log_text(tmp_path, "vla_policy")
    assert peer.lifecycle_state("vla_policy") == "inactive"

    pid = bringup.procs["vla_policy"].pid
    peer.start_robot()
    assert peer.set_param("vla_policy", "instruction", "reach the red cube").successful
    assert peer.change_state("vla_policy", "activate")
    assert wait_until(lambda: peer.chunks, 20)
    assert peer.change_state("vla_policy", "deactivate")
    before = process_resources(pid)
    for _ in range(20):
        assert peer.change_state("vla_policy", "activate")
        assert peer.change_state("vla_policy", "deactivate")
    after = process_resources(pid)
    print(f"policy process over 20 activate/deactivate cycles: {before} -> {after}")
    assert after["threads"] <= before["threads"], (before, after)  # pools may shrink, never grow per cycle
    assert after["fds"] <= before["fds"], (before, after)
    assert after["rss_kb"] - before["rss_kb"] < 20_000, (before, after)  # < 20 MB: no per-cycle growth
    assert peer.change_state("vla_policy", "cleanup")  # frees the model
    assert peer.lifecycle_state("vla_policy") == "unconfigured"
    assert peer.change_state("vla_policy", "configure")
    assert bringup.dead() == {}


def test_executor_brakes_to_rest_on_deactivate_then_stops_commanding(nodes):
    bringup, peer, _ = nodes()
    pub = peer.node.create_publisher(JointTrajectory, "action_chunk", 10)
    peer.q = HOME.copy()
    peer.publish_images = False
    peer.start_robot(rate_hz=100)
    assert peer.wait_active("vla_chunk_executor")
    assert wait_until(lambda: len(peer.commands) > 10 and pub.get_subscription_count() > 0, 30)
    msg = JointTrajectory(joint_names=list(ROBOT.joint_names))
    msg.header.stamp = peer.now_msg()
    msg.points = [
        JointTrajectoryPoint(
            positions=list(HOME + np.r_[0.1 * (i + 1), np.zeros(6)]), time_from_start=s_to_duration(0.1 * (i + 1))
        )
        for i in range(20)
    ]
    pub.publish(msg)
    assert wait_until(lambda: peer.commands[-1][1][0] > 0.3, 5), "the executor did not move"
    asked = time.monotonic()
    assert peer.change_state("vla_chunk_executor", "deactivate")
    assert peer.lifecycle_state("vla_chunk_executor") == "inactive"
    after = np.array([c for t, c in peer.commands if t > asked - 0.05])
    assert len(after) > 5
    velocity = np.diff(after, axis=0) / 0.01
    assert np.all(np.abs(velocity) <= ROBOT.limits.max_velocity * 1.6), "the stop jumped"  # 1.6: delivery jitter
    assert np.abs(velocity[:3, 0]).max() > 0.2, "it was not moving when deactivated"
    assert np.abs(after[-1] - after[-2]).max() < 1e-3, "commands stopped before the arm was at rest"
    n = len(peer.commands)
    assert not wait_until(lambda: len(peer.commands) > n, 0.5), "commands after deactivate"
    assert peer.change_state("vla_chunk_executor", "activate")
    assert wait_until(lambda: len(peer.commands) > n + 5, 5)
    np.testing.assert_allclose(
        peer.commands[-1][1], HOME, atol=1e-9
    )  # from the measured position, not the last command
    assert bringup.dead() == {}


def test_pi0_with_settings_from_the_robot_config(nodes, tmp_path, tiny_pi0_checkpoint):
    """A robot config's `policy: {backend: pi0, steps: 3, device: cpu}` reaches the π₀ backend."""
    raw = yaml.safe_load(open(ROBOT.source).read())
    raw["policy"] = {
        "backend": "pi0",
        "model_path": str(tiny_pi0_checkpoint),
        "steps": 3,
        "device": "cpu",
        "inference_period_s": 0.2,
    }
    robot = tmp_path / "pi0_sim.yaml"
    robot.write_text(yaml.safe_dump(raw))
    bringup, peer, _ = nodes(
        robot=str(robot), backend="", model_path="", policy_overrides={"instruction": "reach the red cube"}
    )
    peer.q = HOME.copy()
    peer.start_robot(rate_hz=50)
    assert wait_until(lambda: len(peer.chunks) >= 2, 90), log_text(tmp_path, "vla_policy")
    log = log_text(tmp_path, "vla_policy")
    assert "steps=3 (node parameters)" in log and "device='cpu' (node parameters)" in log, log
    assert "max_guidance=5.0 (" in log  # from a settings file, with its source
    assert bringup.dead() == {}


def test_run_time_parameter_rules_are_enforced(nodes):
    bringup, peer, _ = nodes()
    assert peer.wait_active("vla_policy")
    bad = peer.set_param("vla_policy", "max_observation_age_s", -1.0)
    assert not bad.successful and bad.reason == "max_observation_age_s: must be > 0, got -1.0"
    bad = peer.set_param("vla_policy", "backend_settings", "[1, 2]")
    assert not bad.successful and "must be a mapping" in bad.reason
    assert peer.set_param("vla_policy", "inference_period_s", 0.25).successful
    read_only = peer.set_param("vla_chunk_executor", "control_rate_hz", 50.0)
    assert not read_only.successful
    assert bringup.dead() == {}
