"""MCAP bags (rosbag2 layout, ROS 2 CDR) written and read back; the recorder's drop queue; episode spans."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import yaml
from builtin_interfaces.msg import Duration
from rcl_interfaces.msg import Parameter, ParameterEvent, ParameterValue
from rclpy.serialization import serialize_message
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray, String
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from vla_ros.recording.bag import BagWriter, bag_topics, message_definition, read_bag, type_name_of
from vla_ros.recording.drop_queue import DropQueue
from vla_ros.recording.episode import EpisodeSpan, RecordingTopics, episode_spans, load_episodes

JOINTS = ("a", "b")


def _stamp(ns: int):
    from builtin_interfaces.msg import Time

    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def test_every_recorded_type_has_a_definition_mcap_ros2_parses():
    from mcap_ros2._dynamic import generate_dynamic

    topics = RecordingTopics.from_robot_config("sim")
    types = {t for _, t, _, _ in topics.subscriptions()} | {"rcl_interfaces/msg/ParameterEvent"}
    for type_name in types | {"geometry_msgs/msg/PoseStamped", "sensor_msgs/msg/CompressedImage"}:
        text = message_definition(type_name)
        assert type_name in generate_dynamic(type_name, text), type_name


def test_bag_round_trip_keeps_messages_counts_and_order(tmp_path):
    w = BagWriter(tmp_path / "ep", compression="zstd")
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8)
    msgs = [
        ("/camera/image_raw", Image(height=2, width=3, encoding="rgb8", step=9, data=rgb.tobytes())),
        ("/joint_states", JointState(name=list(JOINTS), position=[1.0, 2.0])),
        ("/commands", Float64MultiArray(data=[0.5, 0.25])),
        ("/camera/image_raw", Image(height=2, width=3, encoding="rgb8", step=9, data=rgb[::-1].tobytes())),
    ]
    for i, (topic, m) in enumerate(msgs):
        w.add_topic(topic, type_name_of(type(m)))
        w.write(topic, serialize_message(m), 1_000 + i, 900 + i)
    folder = w.close({"k": "v"})
    assert bag_topics(folder) == {
        "/camera/image_raw": "sensor_msgs/msg/Image",
        "/joint_states": "sensor_msgs/msg/JointState",
        "/commands": "std_msgs/msg/Float64MultiArray",
    }
    back = list(read_bag(folder))
    assert [m.topic for m in back] == [t for t, _ in msgs]
    assert [m.log_time_ns for m in back] == [1000, 1001, 1002, 1003]
    assert [m.publish_time_ns for m in back] == [900, 901, 902, 903]
    assert back[0].message.data == rgb.tobytes() and back[3].message.data == rgb[::-1].tobytes()
    assert list(back[1].message.position) == [1.0, 2.0] and list(back[2].message.data) == [0.5, 0.25]
    info = yaml.safe_load((folder / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert info["storage_identifier"] == "mcap" and info["message_count"] == 4 and info["custom_data"] == {"k": "v"}
    counts = {t["topic_metadata"]["name"]: t["message_count"] for t in info["topics_with_message_count"]}
    assert counts == {"/camera/image_raw": 2, "/joint_states": 1, "/commands": 1}
    assert info["relative_file_paths"] == ["ep_0.mcap"] and (folder / "ep_0.mcap").is_file()
    hashes = [t["topic_metadata"]["type_description_hash"] for t in info["topics_with_message_count"]]
    assert all(h.startswith("RIHS01_") for h in hashes)
    assert "&id" not in (folder / "metadata.yaml").read_text()  # no YAML aliases


def test_drop_queue_drops_frames_past_its_bound_never_blocks_and_keeps_room_for_the_rest():
    q = DropQueue(max_frames=3, max_messages=10)
    accepted = [q.offer("/cam", i, frame=True) for i in range(5)]
    assert accepted == [True, True, True, False, False] and q.dropped["/cam"] == 2
    assert all(q.offer("/joint_states", i) for i in range(7))  # the other messages still fit
    assert not q.offer("/joint_states", 99) and q.dropped["/joint_states"] == 1
    assert q.offer("__control__", "stop", force=True)
    started = time.perf_counter()
    for _ in range(10_000):  # a full queue answers at once
        q.offer("/cam", 0, frame=True)
    assert (time.perf_counter() - started) / 10_000 < 1e-4
    got = [q.take(0.1) for _ in range(len(q))]
    assert [t for t, _ in got][:3] == ["/cam"] * 3 and got[-1] == ("__control__", "stop")
    assert q.take(0.01) is None


def test_drop_queue_hands_items_to_a_waiting_writer_thread():
    q = DropQueue()
    out = []
    t = threading.Thread(target=lambda: out.append(q.take(5.0)))
    t.start()
    time.sleep(0.05)
    q.offer("/x", 1)
    t.join(2.0)
    assert out == [("/x", 1)]


def _outcome(t, value):
    from vla_ros.recording.bag import BagMessage

    return BagMessage("/vla_sim_robot/outcome", "std_msgs/msg/String", t, t, String(data=value))


def test_episode_spans_follow_the_outcome_topic():
    topics = RecordingTopics("r", JOINTS, {"front": "/cam"})
    msgs = [_outcome(0, "running"), _outcome(10, "success"), _outcome(20, "running"), _outcome(30, "running")]
    msgs += [_outcome(35, "failure"), _outcome(40, "running"), _outcome(50, "x")]
    assert episode_spans(msgs, topics) == [
        EpisodeSpan(0, 10, "success"),
        EpisodeSpan(20, 30, "interrupted"),
        EpisodeSpan(30, 35, "failure"),
        EpisodeSpan(40, 50, "interrupted"),  # the bag ended inside it
    ]
    assert episode_spans([_outcome(5, "success"), _outcome(9, "x")], topics) == [EpisodeSpan(5, 5, "success")][:0]


def test_a_foreign_bag_becomes_episodes_on_the_frame_grid(tmp_path):
    """A bag as `ros2 bag record` would leave it: two episodes on the outcome topic, the instruction set
    as the policy's parameter, the sim's task at the second, chunks shorter than the horizon; every grid
    value checked."""
    w = BagWriter(tmp_path / "b")
    topics = RecordingTopics("r", JOINTS, {"front": "/cam"})
    for t, ty, *_ in topics.subscriptions():
        w.add_topic(t, ty)
    w.add_topic("/parameter_events", "rcl_interfaces/msg/ParameterEvent")
    ms = 1_000_000
    base = 1_000_000_000_000

    def put(topic, msg, t):
        w.write(topic, serialize_message(msg), base + t)

    put("/vla_sim_robot/outcome", String(data="running"), 0)
    event = ParameterEvent(
        node="/vla_policy",
        changed_parameters=[Parameter(name="instruction", value=ParameterValue(type=4, string_value="go left"))],
    )
    put("/parameter_events", event, 1 * ms)
    for k in range(30):  # 100 ms frames, 10 ms joint states and commands
        t = k * 100 * ms + 3 * ms
        frame = np.full((4, 6, 3), k, np.uint8)
        img = Image(height=4, width=6, encoding="rgb8", step=18, data=frame.tobytes())
        img.header.stamp = _stamp(base + t)
        put("/cam", img, t + 2 * ms)
        for j in range(10):
            tj = t + j * 10 * ms
            js = JointState(name=["b", "a", "extra"], position=[float(tj), -float(tj), 0.0])
            js.header.stamp = _stamp(base + tj)
            put("/joint_states", js, tj + ms)
            put("/commands", Float64MultiArray(data=[k + 0.5, float(j)]), tj + 2 * ms)
        if k % 3 == 0:
            chunk = JointTrajectory(joint_names=["a"], points=[])
            chunk.header.stamp = _stamp(base + t)
            for i in range(2):
                chunk.points.append(
                    JointTrajectoryPoint(positions=[k * 10.0 + i], time_from_start=Duration(nanosec=(i + 1) * 100 * ms))
                )
            put("/action_chunk", chunk, t + 50 * ms)
        if k == 14:
            put("/vla_sim_robot/outcome", String(data="success"), t + 60 * ms)
        if k == 16:  # the sim's reset: its new task, then running
            put("/vla_sim_robot/task", String(data="go up"), t - ms)
            put("/vla_sim_robot/outcome", String(data="running"), t)
        if k == 19:
            put("/instruction", String(data="go right"), t + 20 * ms)
    put("/vla_sim_robot/outcome", String(data="failure"), 2_990 * ms)
    w.close()

    eps = load_episodes(tmp_path / "b", topics, fps=10, horizon=4)
    assert [e.outcome for e in eps] == ["success", "failure"]
    first, second = eps
    # the first grid frame: the first camera frame once commands run (commands start 2 ms after frame 0)
    assert (first.grid_ns[0] - base) // ms == 103 and len(first) == 14
    frames = list(first.frames())
    assert [int(f["front"][0, 0, 0]) for f in frames] == list(range(1, 15))
    # state: the joints of the config's order from the latest joint state at or before t_k
    t0 = first.grid_ns[0] - base
    assert first.state[0].tolist() == pytest.approx([-float(t0 - 0 * ms), float(t0)], rel=1e-6)
    assert first.action[0].tolist() == [0.5, 9.0]  # frame 0's last command before t_k (frame 1 at 103 ms)
    # chunk: joint a from the chunk, b held at the state; padded with its last point to 4; times relative
    assert first.chunk.shape == (14, 4, 2) and first.chunk_length[0] == 2
    assert (
        first.chunk[0, :, 0].tolist() == [0.0, 1.0, 1.0, 1.0]
        and first.chunk[0, :, 1].tolist() == [pytest.approx(first.state[0, 1])] * 4
    )
    assert first.chunk_time[0].tolist() == pytest.approx([0.0, 0.1, 0.1, 0.1], abs=1e-6)
    assert first.tasks == ["go left"] * 14
    # the second episode: the sim's new task replaces the first episode's instruction until the topic's
    assert second.tasks[:3] == ["go up"] * 3 and second.tasks[3:] == ["go right"] * (len(second) - 3)
