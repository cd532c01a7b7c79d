"""`policy_node` (node `vla_policy`): camera frames + joint states + instruction -> action chunks.

Topics: subscribes each camera topic (Image, or CompressedImage for `.../compressed`),
`joint_states`, `instruction` (std_msgs/String) and `plan_prefix` (the executor's plan ahead, in
guided mode); publishes `action_chunk` (trajectory_msgs/JointTrajectory, header.stamp = the
observation's stamp). Services: `~/start`, `~/stop`, `~/reset` (std_srvs/Trigger). The
`instruction` parameter is validated in a set-parameters callback. Inference runs in its own
thread, scheduled from the measured latency (core/scheduling.py).
"""

from __future__ import annotations

import sys
import threading
from collections import deque

import numpy as np

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from vla_ros.backends.base import BackendError, load_backend
from vla_ros.config import resolve_package_path
from vla_ros.core.images import ImageFormatError
from vla_ros.core.observation import ObservationBuffer, ObservationError
from vla_ros.core.scheduling import InferenceScheduler, LatencyEstimate
from vla_ros.core.types import PlanPrefix
from vla_ros.nodes import conversions
from vla_ros.nodes.runner import run_node
from vla_ros.nodes.params import POLICY_PARAMS, declare
from vla_ros.nodes.throttle import KeyedThrottle


class PolicyNode(Node):
    def __init__(self, **kwargs):
        super().__init__("vla_policy", **kwargs)
        self.p = declare(self, POLICY_PARAMS)
        cameras, topics = tuple(self.p["camera_names"]), tuple(self.p["camera_topics"])
        joints = tuple(j for j in self.p["joint_names"] if j)
        if len(cameras) != len(topics) or not cameras:
            raise ValueError(f"camera_names {list(cameras)} and camera_topics {list(topics)} must be non-empty and the same length")
        if not joints:
            raise ValueError("parameter joint_names is empty: set it from the robot config")
        model_path = resolve_package_path(self.p["model_path"])
        self.backend = load_backend(
            self.p["backend"], model_path, device=self.p["device"], seed=self.p["seed"], num_threads=self.p["num_threads"], max_guidance=self.p["max_guidance"]
        )
        if tuple(self.backend.joint_names) != joints:
            raise BackendError(f"model {model_path} acts on joints {list(self.backend.joint_names)}, the robot config has {list(joints)}")
        missing = [c for c in self.backend.camera_names if c not in cameras]
        if missing:
            raise BackendError(f"model {model_path} needs cameras {missing}, configured cameras are {list(cameras)}")
        self.buffer = ObservationBuffer(cameras, joints)
        self.instruction = ""
        self.running = threading.Event()
        self.inference_count = 0
        self.frame_to_chunk_s: deque[float] = deque(maxlen=10_000)  # oldest frame used -> chunk published
        self.inference_s: deque[float] = deque(maxlen=10_000)
        self.scheduler = InferenceScheduler(self.p["inference_period_s"], self.p["schedule_margin_s"])
        self.snapshot_to_publish = LatencyEstimate()  # how long after its observation a chunk takes effect
        self._prefix_msg: tuple[float, JointTrajectory] | None = None  # (received at, plan_prefix)
        self.guided_count = 0
        self._throttle = KeyedThrottle(2.0)

        for cam, topic in zip(cameras, topics):
            if topic.endswith("/compressed"):
                self.create_subscription(CompressedImage, topic, lambda m, c=cam: self._on_image(c, m, conversions.compressed_msg_to_rgb), qos_profile_sensor_data)
            else:
                self.create_subscription(Image, topic, lambda m, c=cam: self._on_image(c, m, conversions.image_msg_to_rgb), qos_profile_sensor_data)
        self.create_subscription(JointState, "joint_states", self._on_joint_state, 10)
        self.create_subscription(String, "instruction", self._on_instruction_topic, 10)
        if self.p["use_plan_prefix"] and self.backend.supports_prefix:
            self.create_subscription(JointTrajectory, "plan_prefix", self._on_plan_prefix, 10)
        self.chunk_pub = self.create_publisher(JointTrajectory, "action_chunk", 10)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.create_service(Trigger, "~/start", self._srv_start)
        self.create_service(Trigger, "~/stop", self._srv_stop)
        self.create_service(Trigger, "~/reset", self._srv_reset)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(1.0, self._publish_diagnostics)
        initial = self.p["instruction"]
        if initial:
            reason = self._instruction_problem(initial)
            if reason:
                raise ValueError(f"parameter instruction: {reason}")
            self._accept_instruction(initial)
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._inference_loop, name="inference", daemon=True)
        self._worker.start()
        self.get_logger().info(f"backend '{self.p['backend']}' loaded from {model_path}; cameras {dict(zip(cameras, topics))}; waiting for an instruction")

    # --- inputs --------------------------------------------------------------------------
    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_image(self, camera: str, msg, convert) -> None:
        try:
            rgb = convert(msg)
        except ImageFormatError as exc:
            self._error(f"image:{camera}:{msg.encoding if hasattr(msg, 'encoding') else msg.format}:{len(msg.data)}", f"dropping frame from camera '{camera}': {exc}")
            return
        self.buffer.add_image(camera, conversions.stamp_to_s(msg.header.stamp), rgb)

    def _on_joint_state(self, msg: JointState) -> None:
        try:
            self.buffer.add_joint_state(conversions.stamp_to_s(msg.header.stamp), list(msg.name), list(msg.position))
        except ObservationError as exc:
            self._error(f"joints:{str(exc).split(':')[0]}", f"dropping joint state: {exc}")

    def _on_plan_prefix(self, msg: JointTrajectory) -> None:
        self._prefix_msg = (self._now_s(), msg)

    def _plan_prefix(self, now_s: float) -> PlanPrefix | None:
        """The executor's plan ahead, if fresh: the part before the new chunk can arrive is committed."""
        if self._prefix_msg is None or now_s - self._prefix_msg[0] > self.p["max_observation_age_s"]:
            return None
        committed_until = now_s + self.snapshot_to_publish.value(default=0.0)
        try:
            return conversions.trajectory_to_prefix(self._prefix_msg[1], self.buffer.joint_names, committed_until)
        except ValueError as exc:
            self._error("prefix", f"ignoring plan prefix: {exc}")
            return None

    def _error(self, key: str, text: str) -> None:
        if self._throttle.ready(key):
            self.get_logger().error(text)

    def _instruction_problem(self, text: str) -> str | None:
        if not text.strip():
            return "instruction is empty"
        if len(text) > self.p["max_instruction_chars"]:
            return f"instruction has {len(text)} characters, more than max_instruction_chars={self.p['max_instruction_chars']}"
        return None

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        for param in params:
            if param.name == "instruction":
                if param.type_ != Parameter.Type.STRING:
                    return SetParametersResult(successful=False, reason="instruction must be a string")
                reason = self._instruction_problem(param.value)
                if reason:
                    return SetParametersResult(successful=False, reason=reason)
                self._accept_instruction(param.value)
            elif param.name == "auto_start" and param.value and self.instruction:
                self.running.set()
        return SetParametersResult(successful=True)

    def _accept_instruction(self, text: str) -> None:
        self.instruction = text
        self.get_logger().info(f"instruction: '{text}'")
        if self.get_parameter("auto_start").value:
            self.running.set()

    def _on_instruction_topic(self, msg: String) -> None:
        result = self.set_parameters([Parameter("instruction", Parameter.Type.STRING, msg.data)])[0]
        if not result.successful:
            self.get_logger().error(f"instruction topic: rejected: {result.reason}")

    # --- services ------------------------------------------------------------------------
    def _srv_start(self, _req, res):
        if not self.instruction:
            res.success, res.message = False, "no instruction set (set the 'instruction' parameter or publish on 'instruction')"
        else:
            self.running.set()
            res.success, res.message = True, f"running: '{self.instruction}'"
        return res

    def _srv_stop(self, _req, res):
        self.running.clear()
        res.success, res.message = True, "stopped"
        return res

    def _srv_reset(self, _req, res):
        self.running.clear()
        self.buffer.clear()
        self.backend.reset()
        res.success, res.message = True, "stopped; observation buffer and backend state cleared"
        return res

    # --- inference -----------------------------------------------------------------------
    def _inference_loop(self) -> None:
        """Infer as soon as every camera has a frame captured after the cycle started (the chunk
        comes from frames as fresh as the cameras allow), then wait until the scheduler's next start."""
        while not self._stop.is_set() and self.context.ok():
            if not self.running.wait(timeout=0.1):
                continue
            started = self._now_s()
            # no fresh frames within max_observation_age_s: snapshot() says what is stale
            self.buffer.wait_for_frames(started, timeout_s=self.get_parameter("max_observation_age_s").value)
            chunk_end = self._infer_once()
            self.scheduler.period_s = self.get_parameter("inference_period_s").value
            self.scheduler.on_cycle(self._now_s() - started, chunk_end)
            self._stop.wait(max(0.0, self.scheduler.next_start_s(started) - self._now_s()))

    def _infer_once(self) -> float | None:
        """Infer and publish one chunk from the newest observation, unless it is stale.

        Returns the time of the published chunk's last point (None if nothing was published).
        """
        max_age = self.get_parameter("max_observation_age_s").value
        try:
            obs = self.buffer.snapshot(self._now_s(), max_age, self.instruction)
        except ObservationError as exc:
            self.get_logger().warning(f"not inferring: {exc}", throttle_duration_sec=2.0)
            return None
        prefix = self._plan_prefix(self._now_s()) if self.backend.supports_prefix else None
        try:
            chunk = self.backend.predict(obs, prefix=prefix)
        except Exception as exc:  # noqa: BLE001 - a failing model must not kill the node
            self.get_logger().error(f"backend failed: {exc!r}", throttle_duration_sec=2.0)
            return None
        delay = self.get_parameter("inference_delay_s").value
        if delay > 0:
            self._stop.wait(delay)
        age = self._now_s() - obs.stamp_s
        if not self.running.is_set() or not self.context.ok():
            return None
        if age > max_age:
            self.get_logger().warning(f"dropping chunk: its observation is {age:.3f} s old (> max_observation_age_s={max_age})", throttle_duration_sec=2.0)
            return None
        self.chunk_pub.publish(conversions.chunk_to_trajectory(chunk))
        self.inference_count += 1
        self.guided_count += prefix is not None
        self.inference_s.append(chunk.inference_s)
        self.snapshot_to_publish.add(age)
        self.frame_to_chunk_s.append(self._now_s() - min(obs.image_stamps_s.values()))
        return float(chunk.times_s()[-1])

    def _publish_diagnostics(self) -> None:
        def ms(values, q):
            return f"{np.percentile(np.asarray(values), q) * 1e3:.2f}" if values else "nan"

        f2c, inf = list(self.frame_to_chunk_s), list(self.inference_s)
        state = "running" if self.running.is_set() else "idle"
        values = {
            "instruction": self.instruction,
            "chunks_published": self.inference_count,
            "chunks_guided": self.guided_count,
            "latency_estimate_ms": f"{self.scheduler.latency.value() * 1e3:.1f}",
            "frame_to_chunk_p50_ms": ms(f2c, 50),
            "frame_to_chunk_p99_ms": ms(f2c, 99),
            "inference_p50_ms": ms(inf, 50),
            "inference_p99_ms": ms(inf, 99),
        }
        self.diag_pub.publish(conversions.diagnostic_array(f"{self.get_name()}: policy", state, values, self.get_clock().now().to_msg()))

    def destroy_node(self):
        if hasattr(self, "_stop"):  # also called by rclpy.shutdown on a node whose __init__ failed
            self._stop.set()
            self._worker.join(timeout=2.0)
        return super().destroy_node()


def main(args=None) -> int:
    return run_node(PolicyNode, "vla_policy", (BackendError, ValueError, FileNotFoundError), args)


if __name__ == "__main__":
    sys.exit(main())
