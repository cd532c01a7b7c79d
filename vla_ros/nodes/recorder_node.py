"""`recorder` (node `vla_recorder`): every episode as an MCAP bag and a LeRobotDataset episode.

Subscribes, as raw CDR (nothing decoded), to the robot config's cameras, `joint_states`,
`commands`, `action_chunk`, `instruction`, the sim's `~/task` and `~/outcome`, `/diagnostics`,
the executor's `~/status`, `plan_prefix` and `/parameter_events` (recording/episode.py says which).
Callbacks only append to a bounded queue (recording/drop_queue.py): a full queue drops the message
and counts it, a callback never waits. The process runs at nice 10 (it yields to the robot's nodes
on a busy CPU); one writer thread (`writer_nice`, 15) owns the bag; a converter thread (as niced)
turns each finished bag into a LeRobotDataset episode between episodes (pausing while one records,
unless `convert_while_recording`).

Episodes: `running` (or `none`) on `outcome_topic` starts one, `success` / `failure` ends it; the
operator's `~/start`, `~/success`, `~/failure`, `~/interrupted` (std_srvs/Trigger) do the same by
hand. A start while recording ends the open episode as `interrupted`, and so does the node's
shutdown. An episode in which the policy published no chunk is discarded unless
`keep_episodes_without_chunks` (teleoperation). Each bag starts with the last task, instruction and
instruction parameter event seen before it, and ends with a `/vla_recorder/episode` message
(std_msgs/String, JSON: index, outcome, start/end, messages dropped).

Output (`output_dir`): `bags/episode_NNNNNN/` (rosbag2 folders: metadata.yaml + .mcap) and
`lerobot/` (meta/, data/, videos/). `/diagnostics` (`vla_recorder: recorder`): episodes, frames
dropped per topic, queue high-water mark.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_parameter_events
from rclpy.serialization import deserialize_message, serialize_message
from std_msgs.msg import String
from std_srvs.srv import Trigger

from vla_ros.nodes import conversions
from vla_ros.nodes.params import declare
from vla_ros.nodes.runner import run_node
from vla_ros.recording.bag import BagWriter, QoS
from vla_ros.recording.drop_queue import DropQueue
from vla_ros.recording.episode import EPISODE_MARKER_TOPIC, RecordingTopics
from vla_ros.recording.params import RECORDER

CONTROL = "__control__"
PROCESS_NICE = 10  # the whole recorder (callbacks, DDS threads) yields to the robot's nodes on a busy CPU
PARAMETER_EVENTS = "/parameter_events"


def _msg_class(type_name: str):
    import importlib

    pkg, _, name = type_name.split("/")
    return getattr(importlib.import_module(f"{pkg}.msg"), name)


def _ros_qos(q: QoS) -> QoSProfile:
    return QoSProfile(
        depth=q.depth,
        reliability=ReliabilityPolicy.RELIABLE if q.reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if q.transient_local else DurabilityPolicy.VOLATILE,
    )


class RecorderNode(Node):
    def __init__(self, **kwargs):
        super().__init__("vla_recorder", **kwargs)
        self.p = declare(self, RECORDER)
        self.topics = RecordingTopics.from_robot_config(
            self.p["robot_config"], self.p["outcome_topic"], self.p["task_topic"], self.p["executor_output"]
        )
        out = self.p["output_dir"] or str(Path("runs") / time.strftime("recording-%Y%m%d-%H%M%S", time.gmtime()))
        self.out = Path(out).resolve()
        (self.out / "bags").mkdir(parents=True, exist_ok=True)
        self.queue = DropQueue(self.p["max_queued_frames"], self.p["max_queued_messages"])
        self.types: dict[str, str] = {}
        self.latched = {t for t in (self.topics.outcome, self.topics.task, self.topics.instruction) if t}
        self.recording = False  # read by the service callbacks; the writer thread owns the episode
        self._idle = threading.Event()  # set while no episode records (the converter waits for it)
        self._idle.set()
        self.episodes = {"recorded": 0, "discarded": 0, "converted": 0, "conversion_failed": 0}
        self._subs = []
        for topic, type_name, qos, frame in self.topics.subscriptions():
            self._subscribe(topic, type_name, _ros_qos(qos), frame)
        self._subscribe(PARAMETER_EVENTS, "rcl_interfaces/msg/ParameterEvent", qos_profile_parameter_events, False)
        for outcome in ("start", "success", "failure", "interrupted"):
            self.create_service(Trigger, f"~/{outcome}", self._operator(outcome))
        from diagnostic_msgs.msg import DiagnosticArray

        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(1.0, self._publish_diagnostics)
        self._convert_jobs: queue.Queue[Path | None] = queue.Queue()
        self._writer = threading.Thread(target=self._write_loop, name="recorder-writer", daemon=True)
        self._converter = threading.Thread(target=self._convert_loop, name="recorder-converter", daemon=True)
        self._stop = threading.Event()
        self._writer.start()
        if self.p["lerobot"]:
            self._converter.start()
        self.get_logger().info(
            f"recording {len(self.types)} topics of {self.topics.robot} to {self.out} "
            f"(episodes from {self.topics.outcome or 'the operator services'})"
        )

    # --- callbacks: enqueue only ----------------------------------------------------------------
    def _subscribe(self, topic: str, type_name: str, qos: QoSProfile, frame: bool) -> None:
        self.types[topic] = type_name
        last = [0]  # the topic's last receive time: a sample the middleware delivers after a later-received one
        # (a reliable retransmission) is logged at that time, so each topic's log times never go back

        def on_message(data: bytes, info: dict) -> None:
            received = max(info.get("received_timestamp") or time.time_ns(), last[0])
            last[0] = received
            self.queue.offer(topic, (data, received, info.get("source_timestamp")), frame)

        self._subs.append(self.create_subscription(_msg_class(type_name), topic, on_message, qos, raw=True))

    def _operator(self, outcome: str):
        def handle(_req, res):
            if outcome != "start" and not self.recording:
                res.success, res.message = False, "no episode is being recorded"
                return res
            self.queue.offer(CONTROL, (outcome, time.time_ns()), force=True)
            res.success, res.message = True, f"{outcome}: requested"
            return res

        return handle

    def _publish_diagnostics(self) -> None:
        values = {
            "recording": str(self.recording).lower(),
            **{f"episodes_{k}": str(v) for k, v in self.episodes.items()},
            "queued": str(len(self.queue)),
            "queue_high_water": str(self.queue.high_water),
            "dropped_total": str(sum(self.queue.dropped.values())),
            **{f"dropped {t}": str(n) for t, n in sorted(self.queue.dropped.items())},
            "output_dir": str(self.out),
        }
        ok = not self.queue.dropped
        self.diag_pub.publish(
            conversions.diagnostic_array(
                f"{self.get_name()}: recorder",
                "recording" if self.recording else "idle",
                values,
                self.get_clock().now().to_msg(),
                ok,
            )
        )

    # --- the writer thread ----------------------------------------------------------------------
    def _write_loop(self) -> None:
        _nice(self.p["writer_nice"])
        writer = _EpisodeWriter(self)
        while True:
            item = self.queue.take(0.2)
            if item is None:
                if self._stop.is_set():
                    break
                continue
            topic, payload = item
            if topic == CONTROL and payload[0] == "shutdown":
                break
            try:
                if topic == CONTROL:
                    writer.control(*payload)
                else:
                    writer.message(topic, *payload)
            except Exception as exc:  # noqa: BLE001 - a write that fails (disk full) must not end the recording
                self.get_logger().error(f"recording {topic}: {exc}", throttle_duration_sec=5.0)
        try:
            writer.end("interrupted", time.time_ns())
        finally:
            self._convert_jobs.put(None)

    def _convert_loop(self) -> None:
        _nice(self.p["writer_nice"])
        from vla_ros.recording.episode import load_episodes
        from vla_ros.recording.lerobot import LeRobotWriter

        try:
            dataset = LeRobotWriter(self.out / "lerobot", self.p["fps"], self.topics.robot, self.p["video_codec"])
        except ValueError as exc:  # e.g. an existing dataset recorded at another fps
            self.get_logger().error(f"no LeRobotDataset conversion: {exc} (the bags are still written)")
            return
        while (bag := self._convert_jobs.get()) is not None:
            self._pause()
            try:
                started = time.monotonic()
                eps = load_episodes(bag, self.topics, self.p["fps"], dataset.horizon(), self.p["default_task"])
                for ep in eps:
                    row = dataset.add_episode(ep, pause=self._pause)
                    self.get_logger().info(
                        f"{bag.name} -> LeRobotDataset episode {row['episode_index']} ({row['length']} frames, "
                        f"{ep.outcome}) in {time.monotonic() - started:.1f} s"
                    )
                self.episodes["converted"] += len(eps)
            except Exception as exc:  # noqa: BLE001 - one bad episode must not stop the recording
                self.episodes["conversion_failed"] += 1
                self.get_logger().error(f"converting {bag} to the LeRobotDataset failed: {exc}")

    def _pause(self) -> None:
        """Between two frames of a conversion: wait while an episode records (unless convert_while_recording)."""
        if not self.p["convert_while_recording"]:
            self._idle.wait()

    def set_recording(self, recording: bool) -> None:
        self.recording = recording
        if recording:
            self._idle.clear()
        else:
            self._idle.set()

    def shutdown_gracefully(self) -> None:
        """End the open episode (interrupted), finish its bag and the conversions in progress."""
        self.queue.offer(CONTROL, ("shutdown", time.time_ns()), force=True)
        self._writer.join(timeout=30.0)
        if self._converter.is_alive():
            self._converter.join(timeout=120.0)


class _EpisodeWriter:
    """The open episode's bag and the last state messages (task, instruction) a new bag starts with."""

    def __init__(self, node: RecorderNode):
        self.node = node
        self.bag: BagWriter | None = None
        self.start_ns = 0
        self.state: dict[str, tuple[str, tuple]] = {}  # key -> (topic, payload) of the last state messages
        self.index = len(list((node.out / "bags").glob("episode_*")))
        self.dropped_at_start: Counter[str] = Counter()

    def message(self, topic: str, data: bytes, recv_ns: int, src_ns: int | None) -> None:
        node = self.node
        if topic == PARAMETER_EVENTS:
            event = deserialize_message(data, _msg_class(node.types[topic]))
            if event.node == node.topics.policy_node and any(
                p.name == "instruction" for p in [*event.new_parameters, *event.changed_parameters]
            ):
                self.state["instruction_parameter"] = (topic, (data, recv_ns, src_ns))
        elif topic in node.latched and topic != node.topics.outcome:
            self.state[topic] = (topic, (data, recv_ns, src_ns))
        if topic == node.topics.outcome:
            value = deserialize_message(data, String).data
            if value in ("running", "none"):
                self.start(recv_ns)
            if self.bag is not None:
                self.bag.write(topic, data, recv_ns, src_ns)
            if value in ("success", "failure"):
                self.end(value, recv_ns)
            return
        if self.bag is not None:
            self.bag.write(topic, data, recv_ns, src_ns)

    def control(self, what: str, t_ns: int) -> None:
        if what == "start":
            self.start(t_ns)
        else:
            self.end(what, t_ns)

    def start(self, t_ns: int) -> None:
        node = self.node
        self.end("interrupted", t_ns)
        self.bag = BagWriter(node.out / "bags" / f"episode_{self.index:06d}", compression=node.p["compression"])
        for topic, type_name in node.types.items():
            self.bag.add_topic(topic, type_name, _bag_qos(node, topic))
        self.bag.add_topic(EPISODE_MARKER_TOPIC, "std_msgs/msg/String", QoS(transient_local=True, depth=1))
        for topic, (data, recv_ns, src_ns) in sorted(self.state.values(), key=lambda s: s[1][1]):
            self.bag.write(topic, data, recv_ns, src_ns)
        self.start_ns = t_ns
        self.dropped_at_start = Counter(node.queue.dropped)
        node.set_recording(True)

    def end(self, outcome: str, t_ns: int) -> None:
        if self.bag is None:
            return
        node = self.node
        counts = self.bag.counts()
        dropped = {t: n - self.dropped_at_start.get(t, 0) for t, n in node.queue.dropped.items()}
        dropped = {t: n for t, n in dropped.items() if n}
        marker = {
            "episode": self.index,
            "outcome": outcome,
            "start_ns": self.start_ns,
            "end_ns": t_ns,
            "messages": counts,
            "dropped": dropped,
            "robot": node.topics.robot,
        }
        self.bag.write(EPISODE_MARKER_TOPIC, serialize_message(String(data=json.dumps(marker))), t_ns)
        folder = self.bag.close({"vla_ros.outcome": outcome, "vla_ros.dropped": json.dumps(dropped)})
        self.bag = None
        node.set_recording(False)
        if not counts.get(node.topics.action_chunk) and not node.p["keep_episodes_without_chunks"]:
            shutil.rmtree(folder, ignore_errors=True)
            node.episodes["discarded"] += 1
            return
        self.index += 1
        node.episodes["recorded"] += 1
        node.get_logger().info(
            f"episode {folder.name}: {outcome}, {sum(counts.values())} messages, "
            f"{sum(dropped.values())} dropped ({(t_ns - self.start_ns) * 1e-9:.1f} s)"
        )
        if node.p["lerobot"]:
            node._convert_jobs.put(folder)


def _bag_qos(node: RecorderNode, topic: str) -> QoS:
    for t, _, qos, _ in node.topics.subscriptions():
        if t == topic:
            return qos
    return QoS()


def _nice(value: int) -> None:
    """Lower this thread's scheduling priority (Linux: a thread's nice value is its own)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), value)
    except (OSError, AttributeError):
        pass


def main(args=None) -> int:
    try:  # before rclpy starts its threads: they inherit it
        os.nice(PROCESS_NICE)
    except OSError:
        pass
    return run_node(RecorderNode, "vla_recorder", (ValueError,), args)


if __name__ == "__main__":
    sys.exit(main())
