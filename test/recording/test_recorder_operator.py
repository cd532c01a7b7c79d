"""The recorder without a sim: episodes started and ended by the operator's services; a robot config with a
JPEG camera (franka: CompressedImage wrist camera, remapped joint_states and commands) through export."""

from __future__ import annotations

import threading
import time

import numpy as np
from rclpy.serialization import serialize_message

from vla_ros.recording.bag import BagWriter, read_bag
from vla_ros.recording.episode import RecordingTopics, decode_frame
from vla_ros.recording.lerobot import read_dataset

JOINTS = ("shoulder_pan", "shoulder_lift", "elbow", "wrist_1", "wrist_2", "wrist_3", "gripper")


def _robot(node, stop: threading.Event) -> None:
    """Plays the sim arm's topics: 100 Hz joint states and commands, 10 Hz frames, a chunk every 300 ms."""
    from sensor_msgs.msg import Image, JointState
    from std_msgs.msg import Float64MultiArray
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    js = node.create_publisher(JointState, "joint_states", 10)
    cmd = node.create_publisher(Float64MultiArray, "commands", 10)
    chunk = node.create_publisher(JointTrajectory, "action_chunk", 10)
    cams = [node.create_publisher(Image, t, 5) for t in ("camera/image_raw", "wrist_camera/image_raw")]
    k = 0
    while not stop.is_set():
        stamp = node.get_clock().now().to_msg()
        q = [0.01 * k] * len(JOINTS)
        msg = JointState(name=list(JOINTS), position=q)
        msg.header.stamp = stamp
        js.publish(msg)
        cmd.publish(Float64MultiArray(data=q))
        if k % 10 == 0:
            for i, pub in enumerate(cams):
                img = Image(height=8, width=8, encoding="rgb8", step=24, data=bytes([(k // 10 + i) % 256] * 192))
                img.header.stamp = stamp
                pub.publish(img)
        if k % 30 == 0:
            c = JointTrajectory(joint_names=list(JOINTS), points=[JointTrajectoryPoint(positions=q)])
            c.header.stamp = stamp
            chunk.publish(c)
        k += 1
        time.sleep(0.01)


def test_operator_services_start_and_end_episodes_and_shutdown_finishes_them(ros_env, tmp_path):
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from std_srvs.srv import Trigger

    from vla_ros.bringup import Bringup
    from vla_ros.launch_description import node_specs

    out = tmp_path / "rec"
    (spec,) = [
        s
        for s in node_specs("sim", use_sim=False, record=True, overrides={"vla_recorder": {"output_dir": str(out)}})
        if s.name == "vla_recorder"
    ]
    spec.parameters.update(outcome_topic="", task_topic="", default_task="tidy up")
    rclpy.init(args=[])
    node = rclpy.create_node("test_operator")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()
    stop = threading.Event()
    try:
        with Bringup([spec], log_dir=tmp_path / "logs", env=ros_env):
            clients = {
                o: node.create_client(Trigger, f"/vla_recorder/{o}") for o in ("start", "success", "interrupted")
            }
            assert all(c.wait_for_service(timeout_sec=30) for c in clients.values())
            robot = threading.Thread(target=_robot, args=(node, stop), daemon=True)
            robot.start()
            time.sleep(1.0)  # discovery

            def call(name):
                return clients[name].call(Trigger.Request(), timeout_sec=10)

            assert not call("success").success  # nothing recording yet
            assert call("start").success
            time.sleep(1.5)
            assert call("success").success
            time.sleep(0.3)
            assert call("start").success
            time.sleep(1.0)  # this one is still open at shutdown: interrupted
        stop.set()
    finally:
        stop.set()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    bags = sorted((out / "bags").iterdir())
    assert [b.name for b in bags] == ["episode_000000", "episode_000001"]
    data = read_dataset(out / "lerobot")
    assert [e["outcome"] for e in data.episodes] == ["success", "interrupted"]
    assert data.tasks == ["tidy up"] and data.episodes[0]["length"] >= 10
    assert data.columns["action.chunk_length"].max() == 1


def test_export_of_a_franka_bag_with_a_jpeg_camera(tmp_path):
    """A bag as `ros2 bag record` leaves it on the franka (no outcome topic): one episode, outcome unknown; its
    commands are the executor's output kind of the config (a streamed plan is sampled at each frame's time)."""
    import cv2
    from builtin_interfaces.msg import Duration, Time
    from sensor_msgs.msg import CompressedImage, Image, JointState
    from std_msgs.msg import Float64MultiArray
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    from vla_ros.cli import main

    topics = RecordingTopics.from_robot_config("franka")
    joints = topics.joint_names
    assert topics.command_kind in ("position_array", "joint_trajectory_plan"), topics.command_kind

    def command(value: float, sent_ns: int):
        if topics.command_kind == "position_array":
            return Float64MultiArray(data=[value] * len(joints))
        plan = JointTrajectory(joint_names=list(joints))  # value now, value + 1 one second later
        plan.header.stamp = Time(sec=sent_ns // 10**9, nanosec=sent_ns % 10**9)
        plan.points = [
            JointTrajectoryPoint(positions=[value + i] * len(joints), time_from_start=Duration(sec=i)) for i in (0, 1)
        ]
        return plan

    w = BagWriter(tmp_path / "session")
    for t, ty, *_ in topics.subscriptions():
        w.add_topic(t, ty)
    base = 1_800_000_000_000_000_000
    rng = np.random.default_rng(0)
    for k in range(20):
        t = base + k * 100_000_000
        stamp = Time(sec=t // 10**9, nanosec=t % 10**9)
        img = Image(height=6, width=10, encoding="rgb8", step=30, data=bytes([k] * 180))
        img.header.stamp = stamp
        w.write(topics.cameras["front"], serialize_message(img), t + 1)
        jpeg = cv2.imencode(".jpg", rng.integers(0, 255, (6, 10, 3), dtype=np.uint8))[1].tobytes()
        comp = CompressedImage(format="jpeg", data=jpeg)
        comp.header.stamp = stamp
        w.write(topics.cameras["wrist"], serialize_message(comp), t + 2)
        for j in range(10):
            tj = t + j * 10**7
            js = JointState(name=list(joints), position=[float(k)] * len(joints))
            js.header.stamp = Time(sec=tj // 10**9, nanosec=tj % 10**9)
            w.write(topics.joint_states, serialize_message(js), tj + 3)
            w.write(topics.commands, serialize_message(command(k + 0.5, tj + 4)), tj + 4)
    w.close()
    args = ["export", str(tmp_path / "session"), "--lerobot", str(tmp_path / "ds"), "--robot", "franka"]
    assert main([*args, "--task", "wipe the table"]) == 0
    data = read_dataset(tmp_path / "ds")
    assert data.episodes[0]["outcome"] == "unknown" and data.tasks == ["wipe the table"]
    assert data.info["robot_type"] == "franka" and "action.chunk" not in data.info["features"]
    assert data.info["features"]["observation.state"]["names"] == list(joints)
    wrist = [decode_frame(m.message, m.type_name) for m in read_bag(tmp_path / "session", [topics.cameras["wrist"]])]
    frames = data.frames("wrist", 0)
    assert len(frames) == data.episodes[0]["length"] >= 15
    for k, f in enumerate(frames):  # the decoded JPEG frames, losslessly in the video
        assert any(np.array_equal(f, w_) for w_ in wrist), k
    # frame k at t_k: state k (the joint state stamped t_k); the command sent 10 ms before, (k - 1) + 0.5,
    # and a plan sent then is sampled 10 ms into it
    ahead = 0.0 if topics.command_kind == "position_array" else 0.01
    state, action = data.columns["observation.state"][:, 0], data.columns["action"][:, 0]
    np.testing.assert_allclose(action, state - 0.5 + ahead, atol=1e-5)
