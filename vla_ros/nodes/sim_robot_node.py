"""`sim_robot` (node `vla_sim_robot`): a MuJoCo robot as a ROS robot, in real time.

By default the tabletop arm: publishes `joint_states`, `camera/image_raw` (front) and
`wrist_camera/image_raw`; follows `commands` (Float64MultiArray, joint order of the sim). Episodes:
`~/reset` (Trigger) starts the episode of parameter `episode_seed` and answers with its instruction;
`~/task` and `~/outcome` (std_msgs/String, latched) say what the episode asks and whether it is
running, succeeded or failed.

With parameter `robot_config` (a robot config's name or path): that robot built from its URDF
(`vla_ros.sim.urdf_robot`), with the config's joint names (joint_states, and the order and length of
`commands`) and one camera per config camera, published on the config's camera topic (a topic ending
in /compressed carries JPEG sensor_msgs/CompressedImage). Its episodes have a fixed instruction and
no success criterion: the outcome is `none`.
"""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import Trigger

from vla_ros.core.images import encode_compressed
from vla_ros.nodes import conversions
from vla_ros.nodes.params import declare
from vla_ros.nodes.runner import run_node
from vla_ros.params import SIM
from vla_ros.sim.tabletop import JOINT_NAMES, TabletopSim

PHYSICS_CHUNK_S = 0.005  # physics advanced in 5 ms slices, paced by the wall clock
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
CAMERA_TOPICS = {"front": "camera/image_raw", "wrist": "wrist_camera/image_raw"}


class SimRobotNode(Node):
    def __init__(self, **kwargs):
        super().__init__("vla_sim_robot", **kwargs)
        self.p = declare(self, SIM)
        image_size = (self.p["image_height"], self.p["image_width"])
        if self.p["robot_config"]:
            from vla_ros.sim.urdf_robot import UrdfRobotSim

            self.sim = UrdfRobotSim(self.p["robot_config"], image_size, self.p["initial_positions"] or None)
            self.joint_names = self.sim.joint_names
            camera_topics = {c.name: c.topic for c in self.sim.config.cameras}
            self.get_logger().info(
                f"URDF sim of {self.sim.config.source}: joints {list(self.joint_names)}, cameras {camera_topics}"
            )
        else:
            self.sim = TabletopSim(image_size=image_size)
            self.joint_names = JOINT_NAMES
            camera_topics = CAMERA_TOPICS
        self.lock = threading.Lock()
        self.episode_start_s = 0.0
        self.js_pub = self.create_publisher(JointState, "joint_states", 10)
        # cameras as camera drivers publish them: sensor-data QoS (best effort, keep last 5)
        self.image_pubs = {
            cam: (
                self.create_publisher(
                    CompressedImage if topic.endswith("/compressed") else Image, topic, qos_profile_sensor_data
                ),
                topic.endswith("/compressed"),
            )
            for cam, topic in camera_topics.items()
        }
        self.task_pub = self.create_publisher(String, "~/task", LATCHED)
        self.outcome_pub = self.create_publisher(String, "~/outcome", LATCHED)
        self.create_subscription(Float64MultiArray, "commands", self._on_command, 10)
        self.create_service(Trigger, "~/reset", self._srv_reset)
        self._reset_episode(self.p["episode_seed"])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="physics", daemon=True)
        self._thread.start()

    def _on_command(self, msg: Float64MultiArray) -> None:
        if len(msg.data) != len(self.joint_names) or not np.all(np.isfinite(msg.data)):
            self.get_logger().error(
                f"ignoring command: need {len(self.joint_names)} finite values, got {list(msg.data)}",
                throttle_duration_sec=2.0,
            )
            return
        with self.lock:
            self.sim.set_command(np.asarray(msg.data))

    def _reset_episode(self, seed: int) -> str:
        with self.lock:
            task = self.sim.reset(seed)
            self.episode_start_s = self.sim.time_s
            outcome = self.sim.outcome  # "running" (the tabletop's tasks) or "none" (a URDF robot: no task)
        self.task_pub.publish(String(data=task.instruction))
        self.outcome_pub.publish(String(data=outcome))
        return task.instruction

    def _srv_reset(self, _req, res):
        seed = self.get_parameter("episode_seed").value
        instruction = self._reset_episode(seed)
        res.success, res.message = True, instruction
        self.get_logger().info(f"episode seed {seed}: '{instruction}'")
        return res

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            self.sim.close()  # the GL context belongs to this thread

    def _loop(self) -> None:
        """Advance physics in step with the wall clock; publish joint states and images."""
        js_period = 1.0 / self.p["joint_state_rate_hz"]
        cam_period = 1.0 / self.p["camera_rate_hz"]
        next_js = next_cam = deadline = time.monotonic()
        while not self._stop.is_set() and self.context.ok():
            deadline += PHYSICS_CHUNK_S
            delay = deadline - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -0.1:
                deadline = time.monotonic()  # fell far behind (e.g. CPU starved): drop the debt
            with self.lock:
                before = self.sim.outcome
                self.sim.advance(PHYSICS_CHUNK_S)
                if (
                    self.sim.outcome == "running"
                    and self.sim.time_s - self.episode_start_s > self.get_parameter("max_episode_s").value
                ):
                    self.sim.outcome = "failure"
                outcome = self.sim.outcome
                q, dq = self.sim.joint_positions(), self.sim.joint_velocities()
            if outcome != before:
                self.outcome_pub.publish(String(data=outcome))
            now = time.monotonic()
            stamp = self.get_clock().now().to_msg()
            if now >= next_js:
                next_js += js_period
                self.js_pub.publish(
                    JointState(
                        header=_header(stamp), name=list(self.joint_names), position=q.tolist(), velocity=dq.tolist()
                    )
                )
            if now >= next_cam:
                next_cam = max(next_cam + cam_period, now)
                for cam, (pub, compressed) in self.image_pubs.items():
                    with self.lock:
                        rgb = self.sim.render(cam)
                    if compressed:
                        pub.publish(_compressed_msg(rgb, stamp, f"{cam}_camera"))
                    else:
                        pub.publish(conversions.rgb_to_image_msg(rgb, stamp, f"{cam}_camera"))

    def destroy_node(self):
        if hasattr(self, "_stop"):
            self._stop.set()
            self._thread.join(timeout=2.0)
        return super().destroy_node()


def _header(stamp):
    msg = JointState().header
    msg.stamp = stamp
    return msg


def _compressed_msg(rgb: np.ndarray, stamp, frame_id: str) -> CompressedImage:
    msg = CompressedImage(format="jpeg")
    msg.data = encode_compressed(rgb, "jpeg", 90)
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    return msg


def main(args=None) -> int:
    return run_node(SimRobotNode, "vla_sim_robot", (ValueError,), args)


if __name__ == "__main__":
    sys.exit(main())
