"""Fault catalogue, the inputs (real processes over DDS): camera faults, a flooding 1080p camera,
a simulated clock that jumps, 100 instruction changes per second, invalid run-time parameters."""

from __future__ import annotations

import threading
import time

import numpy as np
from conftest import log_text, wait_until
from faults import HOME, assert_within_limits, diagnostics, trajectory
from rosgraph_msgs.msg import Clock
from std_msgs.msg import String
from test_lifecycle import process_resources
from trajectory_msgs.msg import JointTrajectory

from vla_ros.nodes.conversions import rgb_to_image_msg, s_to_stamp
from vla_ros.params import POLICY

POLICY_DIAG, EXECUTOR_DIAG = "vla_policy: policy", "vla_chunk_executor: executor"


def stamp_s(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def camera_loop(peer, mode: dict, stop: threading.Event, max_s: float = 60.0) -> None:
    """Joint states at 50 Hz and both cameras per `mode['camera']` (bounded in time)."""
    rng = np.random.default_rng(0)
    small = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    big = rng.integers(0, 255, (1080, 1920, 3), dtype=np.uint8)
    end, tick, last_slow = time.monotonic() + max_s, 0, 0.0
    while not stop.is_set() and time.monotonic() < end:
        peer.publish_state()
        fault, now = mode["camera"], peer.now_msg()
        frames = {
            "normal": small,
            "1hz": small,
            "out_of_order": small,
            "duplicated": small,
            "size": small[:16, :24],
            "big": big,
        }
        if fault == "stopped" or (fault == "1hz" and time.monotonic() - last_slow < 1.0):
            frames = {}
        if fault == "1hz" and frames:
            last_slow = time.monotonic()
        for cam, pub in peer.img_pubs.items():
            if fault in frames:
                stamp = now
                if fault == "out_of_order" and tick % 2:
                    stamp = s_to_stamp(stamp_s(now) - 0.3)
                if fault == "duplicated":
                    stamp = s_to_stamp(round(stamp_s(now)))  # the same stamp for a whole second
                msg = rgb_to_image_msg(frames[fault], stamp, cam)
                if fault == "encoding":
                    msg.encoding = "32FC1"
                pub.publish(msg)
            elif fault == "encoding":
                msg = rgb_to_image_msg(small, now, cam)
                msg.encoding = "32FC1"
                pub.publish(msg)
        tick += 1
        time.sleep(1 / 60 if fault == "big" else 0.02)


def test_camera_faults_never_feed_a_stale_frame_and_memory_stays_bounded(nodes, tmp_path):
    bringup, peer, _ = nodes(policy_overrides={"instruction": "reach the red cube", "inference_period_s": 0.1})
    peer.q = HOME.copy()
    received: list[tuple[float, float]] = []  # (received at, observation stamp) of every chunk
    peer.node.create_subscription(
        JointTrajectory,
        "action_chunk",
        lambda m: received.append((stamp_s(peer.now_msg()), stamp_s(m.header.stamp))),
        50,
    )
    mode, stop = {"camera": "normal"}, threading.Event()
    threading.Thread(target=camera_loop, args=(peer, mode, stop), daemon=True).start()
    pid = bringup.procs["vla_policy"].pid
    try:
        assert wait_until(lambda: len(received) >= 3, 60), log_text(tmp_path, "vla_policy")
        for fault in ("stopped", "1hz", "out_of_order", "duplicated", "size", "encoding"):
            mode["camera"] = fault
            time.sleep(1.5)
            mode["camera"] = "normal"
            n = len(received)
            assert wait_until(lambda n=n: len(received) > n, 10), f"no chunk after camera fault '{fault}'"
        rss_before = process_resources(pid)
        mode["camera"] = "big"  # 1920x1080 RGB at 60 Hz on both cameras
        time.sleep(3.0)
        rss_settled = process_resources(pid)  # the held frames and DDS buffers of the new size
        time.sleep(5.0)
        rss_after = process_resources(pid)
        mode["camera"] = "normal"
        print(
            "policy process, two 1920x1080 cameras at 60 Hz: before "
            f"{rss_before}, after 3 s {rss_settled}, after 8 s {rss_after}"
        )
        assert rss_after["rss_kb"] - rss_before["rss_kb"] < 150_000, (
            rss_before,
            rss_after,
        )  # a few frames, not a queue
        assert rss_after["rss_kb"] - rss_settled["rss_kb"] < 20_000, (rss_settled, rss_after)  # no growth once settled
        assert rss_after["fds"] <= rss_before["fds"] + 2
        n = len(received)
        assert wait_until(lambda: len(received) > n, 10)
    finally:
        stop.set()
    assert all(at - stamp <= 0.5 + 0.05 for at, stamp in received), "a chunk from a stale observation"
    log = log_text(tmp_path, "vla_policy")
    assert "not inferring: camera 'front' image is" in log  # stopped / 1 Hz
    assert "stamped no later than the frame held (out of order or a duplicated stamp)" in log
    assert "dropping frame from camera" in log and "32FC1" in log
    assert int(diagnostics(peer, POLICY_DIAG).get("frames_out_of_order", 0)) > 10
    assert bringup.dead() == {}


def test_a_simulated_clock_jumping_forwards_and_backwards_holds_without_an_oversized_step(nodes, tmp_path):
    sim = {"use_sim_time": True}
    bringup, peer, _ = nodes(executor_overrides={**sim, "diagnostics_period_s": 0.2}, policy_overrides=sim)
    clock_pub = peer.node.create_publisher(Clock, "/clock", 10)
    pub = peer.node.create_publisher(JointTrajectory, "action_chunk", 10)
    sim_time = {"t": 1000.0, "stop": False}

    def clock():  # /clock at 200 Hz, advancing with the wall clock (bounded: 60 s)
        end = time.monotonic() + 60
        while not sim_time["stop"] and time.monotonic() < end:
            sim_time["t"] += 0.005
            clock_pub.publish(Clock(clock=s_to_stamp(sim_time["t"])))
            time.sleep(0.005)

    threading.Thread(target=clock, daemon=True).start()
    peer.q = HOME.copy()
    peer.publish_images = False
    peer.start_robot(rate_hz=100)
    try:
        assert wait_until(lambda: len(peer.commands) > 10 and pub.get_subscription_count() > 0, 30), log_text(
            tmp_path, "vla_chunk_executor"
        )
        t0 = time.monotonic()
        plan = [HOME + np.r_[0.05 * (i + 1), np.zeros(6)] for i in range(30)]
        pub.publish(trajectory(peer, plan, stamp=s_to_stamp(sim_time["t"])))
        time.sleep(0.5)
        sim_time["t"] += 10.0  # forwards
        time.sleep(0.5)
        pub.publish(trajectory(peer, plan, stamp=s_to_stamp(sim_time["t"])))
        time.sleep(0.3)
        sim_time["t"] -= 20.0  # backwards
        time.sleep(1.0)
        commands = [(t, c) for t, c in peer.commands if t > t0]
        assert_within_limits(commands)
        assert wait_until(lambda: int(diagnostics(peer, EXECUTOR_DIAG).get("clock_jumps", 0)) >= 2, 5), diagnostics(
            peer, EXECUTOR_DIAG
        )
        assert wait_until(lambda: diagnostics(peer, EXECUTOR_DIAG).get("message") == "holding", 5)
    finally:
        sim_time["stop"] = True
    assert bringup.dead() == {}


def test_a_hundred_instruction_changes_per_second_keep_the_policy_serving(nodes, tmp_path):
    bringup, peer, _ = nodes(policy_overrides={"instruction": "reach the red cube"})
    peer.q = HOME.copy()
    peer.start_robot(rate_hz=50)
    pub = peer.node.create_publisher(String, "instruction", 100)
    assert wait_until(lambda: len(peer.chunks) >= 2, 60), log_text(tmp_path, "vla_policy")
    n = len(peer.chunks)
    for i in range(300):  # 3 s at 100 Hz
        pub.publish(String(data=f"reach the red cube {i}"))
        time.sleep(0.01)
    assert wait_until(lambda: diagnostics(peer, POLICY_DIAG).get("instruction") == "reach the red cube 299", 5)
    assert len(peer.chunks) > n, "no chunk while the instruction changed"
    assert bringup.dead() == {}


def invalid_values(param) -> list:
    """Values that break `param`'s rule: the wrong type, and each bound or choice."""
    wrong_type = {"str": 3, "int": "three", "float": "three", "bool": "yes"}.get(param.kind, 1.5)
    values = [wrong_type]
    if param.above is not None:
        values.append(type(param.default)(param.above))
    if param.min is not None:
        values.append(type(param.default)(param.min - 1))
    if param.max is not None:
        values.append(type(param.default)(param.max + 1))
    if param.choices:
        values.append("no_such_choice")
    return values


def test_invalid_values_of_every_changeable_parameter_are_rejected_with_the_rule(nodes):
    bringup, peer, _ = nodes(policy_overrides={"instruction": "reach the red cube"})
    assert peer.wait_active("vla_policy")
    changeable = [p for p in POLICY if p.changeable]
    assert changeable
    for param in changeable:
        for value in invalid_values(param):
            result = peer.set_param("vla_policy", param.name, value)
            assert not result.successful, (param.name, value)
            if type(value) is type(param.default):  # the schema's rule (a wrong type is refused by ROS)
                assert result.reason == f"{param.name}: {param.problem(value)}", (param.name, value, result.reason)
    for bad, reason in (("", "instruction is empty"), ("x" * 300, "more than max_instruction_chars=256")):
        result = peer.set_param("vla_policy", "instruction", bad)
        assert not result.successful and reason in result.reason
    assert not peer.set_param("vla_policy", "backend_settings", "{unclosed").successful
    assert peer.set_param("vla_policy", "instruction", "pick up the cube").successful
    assert bringup.dead() == {}


def test_estop_and_reset_under_load_are_answered_within_limits(nodes):
    node = "vla_chunk_executor"
    bringup, peer, _ = nodes(policy_overrides={"instruction": "reach the red cube", "inference_period_s": 0.1})
    peer.q = HOME.copy()
    peer.start_robot(rate_hz=100)
    assert wait_until(lambda: len(peer.chunks) >= 2, 60)
    for _ in range(5):
        assert peer.trigger(f"/{node}/estop").success
        t = time.monotonic()
        time.sleep(0.3)
        assert peer.trigger(f"/{node}/reset_estop").success
        assert_within_limits([(s, c) for s, c in peer.commands if s > t - 0.05])
    assert bringup.dead() == {}
