"""`rerun_viz` (node `vla_rerun`): the run, live, in rerun (`viz:=rerun` on the bring-up).

Subscribes to what the recorder records (the robot config's cameras, `joint_states`, `commands`,
`action_chunk`, `instruction`, the sim's task and outcome, `/diagnostics`, the executor's
`~/status`, `/parameter_events`) and logs each message as vla_ros/viz/rerun_log.py says: cameras,
planned vs commanded vs measured per joint, limit margins, the executor's state and e-stop, latencies.
Parameter `target`: a path ending in .rrd (written; `vla-ros view` opens it), a rerun gRPC address
(`rerun+http://host:9876/proxy`: a viewer started with `rerun`), or '' (spawn a local viewer).
A separate process: the robot's nodes never wait for it; rerun batches and sends on its own thread.
"""

from __future__ import annotations

import sys

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_parameter_events

from vla_ros.nodes.params import declare
from vla_ros.nodes.recorder_node import _msg_class
from vla_ros.nodes.runner import run_node
from vla_ros.recording.episode import RecordingTopics
from vla_ros.viz.params import RERUN
from vla_ros.viz.rerun_log import RunLogger, open_stream


class RerunNode(Node):
    def __init__(self, **kwargs):
        super().__init__("vla_rerun", **kwargs)
        from vla_ros.config import load_robot_config

        self.p = declare(self, RERUN)
        cfg = load_robot_config(self.p["robot_config"])
        self.topics = RecordingTopics.from_robot_config(
            cfg, self.p["outcome_topic"], self.p["task_topic"], self.p["executor_output"]
        )
        self.rec = open_stream(self.p["target"], "vla_ros")
        self.logger = RunLogger(self.rec, self.topics, cfg.limits)
        subs = [(t, ty, q) for t, ty, q, _ in self.topics.subscriptions()]
        for topic, type_name, qos in subs:
            profile = QoSProfile(
                depth=qos.depth,
                reliability=ReliabilityPolicy.RELIABLE if qos.reliable else ReliabilityPolicy.BEST_EFFORT,
                durability=DurabilityPolicy.TRANSIENT_LOCAL if qos.transient_local else DurabilityPolicy.VOLATILE,
            )
            self._subscribe(topic, type_name, profile)
        self._subscribe("/parameter_events", "rcl_interfaces/msg/ParameterEvent", qos_profile_parameter_events)
        self.get_logger().info(f"rerun: {len(subs) + 1} topics of {cfg.name} to {self.p['target'] or 'a new viewer'}")

    def _subscribe(self, topic: str, type_name: str, qos) -> None:
        def on_message(msg, info) -> None:
            recv_s = (info.get("received_timestamp") or self.get_clock().now().nanoseconds) * 1e-9
            try:
                self.logger.message(topic, type_name, recv_s, msg)
            except Exception as exc:  # noqa: BLE001 - a message the viewer cannot show must not stop the others
                self.get_logger().warning(f"rerun: {topic}: {exc}", throttle_duration_sec=5.0)

        self.create_subscription(_msg_class(type_name), topic, on_message, qos)

    def shutdown_gracefully(self) -> None:
        self.rec.flush(timeout_sec=10.0)
        self.rec.disconnect()


def main(args=None) -> int:
    return run_node(RerunNode, "vla_rerun", (ValueError,), args)


if __name__ == "__main__":
    sys.exit(main())
