"""`policy_node` (managed node `vla_policy`): camera frames + joint states + instruction -> action chunks.

Lifecycle (rclpy.lifecycle, the standard `~/change_state` / `~/get_state` services):
  configure   load and validate the backend (settings: backends/settings.py), check it against the
              robot's joints and cameras, run one warm-up inference; a failure is logged with the
              reason and the node stays `unconfigured`
  activate    infer and publish `action_chunk` whenever an instruction is set
  deactivate  stop inferring and publishing
  cleanup     free the model (and its GPU memory)

Topics: each camera topic (Image, or CompressedImage for `.../compressed`), `joint_states`,
`instruction` (std_msgs/String), `plan_prefix` (the executor's plan ahead, guided mode) in;
`action_chunk` (trajectory_msgs/JointTrajectory, header.stamp = the observation's stamp) and
`/diagnostics` out. Services (Trigger): `~/reset` clears the observation buffer, the backend's episode
state and the task; `~/clear_task` clears the task alone.
The task survives a restart of the process (nodes/policy_task.py); `~/heartbeat` says the node still
answers (the lifecycle manager restarts one that stops). Cameras: nodes/policy_cameras.py.
Model actions become joint targets through the checkpoint's action space on this robot
(backends/action_output.py; parameters urdf_path, end_effector_link, base_link, gripper_joint,
action_space); a chunk cut short (a non-finite value, an unreachable pose) is published up to the
cut, one with no convertible point is not published; both are counted in /diagnostics and logged.
The loop itself (observation buffer, when to infer, the backend call, checks, counters) is the ROS-free
PolicyCore (vla_ros/policy_core.py); this node translates messages and parameters into its calls.
Inference runs in its own thread, scheduled from the measured latency. /diagnostics also carries
where each chunk's time went (`stage_<name>_p50_ms` / `_p99_ms`, core/stage_times.py). The node spins
rclpy's EventsExecutor (`VLA_ROS_POLICY_EXECUTOR=single`: the single-threaded one).
"""

from __future__ import annotations

import os
import sys
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from vla_ros.backends.action_output import RobotBody
from vla_ros.backends.base import BackendError
from vla_ros.backends.settings import SettingsError, parse_overrides
from vla_ros.core.allocator import keep_freed_memory
from vla_ros.core.observation import ObservationError
from vla_ros.core.types import ActionChunk
from vla_ros.nodes import conversions
from vla_ros.nodes.params import declare
from vla_ros.nodes.policy_cameras import PolicyCameras
from vla_ros.nodes.policy_task import PolicyTask
from vla_ros.nodes.runner import destroy_entities, run_node
from vla_ros.nodes.supervision import Heartbeat, process_token
from vla_ros.nodes.throttle import ThrottledLog
from vla_ros.params import POLICY
from vla_ros.paths import resolve_package_path
from vla_ros.policy_core import PolicyCore

SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE
CONFIGURE_ERRORS = (BackendError, SettingsError, ValueError, FileNotFoundError, OSError)


class PolicyNode(LifecycleNode):
    def __init__(self, **kwargs):
        super().__init__("vla_policy", **kwargs)
        self.p = declare(self, POLICY)
        cameras, topics = tuple(self.p["camera_names"]), tuple(self.p["camera_topics"])
        joints = tuple(j for j in self.p["joint_names"] if j)
        if len(cameras) != len(topics) or not cameras:
            raise ValueError(
                f"camera_names {list(cameras)} and camera_topics {list(topics)} must be non-empty and the same length"
            )
        if not joints:
            raise ValueError("parameter joint_names is empty: set it from the robot config")
        self.log = ThrottledLog(self.get_logger())
        self.core = PolicyCore(
            cameras, joints, self._param, self._now_s, self.log, schedule_margin_s=self.p["schedule_margin_s"]
        )
        self.cameras = PolicyCameras(self, self.core, topics, self.log, lambda: self._worker is not None)
        self._io: list = []  # subscriptions, publishers and timers made at configure
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._chunk_writer = conversions.ChunkMessageWriter()
        self.chunk_pub = None
        process = process_token()
        self.task = PolicyTask(self, process, self.core.instruction_problem, self._apply_instruction)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.create_service(Trigger, "~/reset", self._srv_reset)
        self.heartbeat = Heartbeat(self, process, self.cameras.hearing)
        if self.p["instruction"]:
            self.task.start_with(self.p["instruction"])
        self.get_logger().info(
            "unconfigured: waiting for the configure transition (the lifecycle manager sends it when autostart is on)"
        )

    def _param(self, name: str):
        """A parameter's current value (run-time changes included)."""
        return self.get_parameter(name).value

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # --- lifecycle -----------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self.heartbeat.busy():  # loading a model is slow, not a hang
            return self._configure(state)

    def _configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            path = self._param("model_path")
            overrides = parse_overrides(self._param("backend_settings"))
            if self._param("device"):
                overrides["device"] = self._param("device")
            self.core.load(
                self._param("backend"),
                resolve_package_path(path) if path else None,
                overrides,
                self._robot_body(),
                seed=self.p["seed"],
                num_threads=self.p["num_threads"],
            )
            if self.p["warmup"]:
                self.core.warm_up()
        except CONFIGURE_ERRORS as exc:
            self.get_logger().error(f"configure failed: {exc}")
            self._release()
            return FAILURE
        self._make_io()
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.task.on_activate()
        self.core.forget_plan()  # a plan from before activation is not the plan this run continues
        self.core.watch_cameras_from_now()
        self._stop.clear()
        self._worker = threading.Thread(
            target=self.core.run, args=(self._publish, self._stop, self.context.ok), name="inference", daemon=True
        )
        self._worker.start()
        instruction = self.core.instruction
        self.get_logger().info(
            "active: " + (f"inferring for '{instruction}'" if instruction else "waiting for an instruction")
        )
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self.heartbeat.busy():  # waits for the inference in progress
            self._stop_worker()
        self.core.forget_plan()  # the next activation starts a new run (e.g. an episode after a reset)
        self.get_logger().info("inactive: not inferring")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self.heartbeat.busy():
            self._release()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self.heartbeat.busy():
            self._release()
        return SUCCESS

    def _robot_body(self) -> RobotBody:
        """The robot side of the action space, from the parameters (ValueError naming a bad one)."""
        block = parse_overrides(self._param("action_space"), "parameter action_space", "{preset: bridge_ee_delta}")
        urdf = self._param("urdf_path")
        return RobotBody(
            joint_names=self.core.joints,
            camera_names=self.core.cameras,
            urdf=str(resolve_package_path(urdf)) if urdf else "",
            ee_link=self._param("end_effector_link"),
            base_link=self._param("base_link"),
            gripper_joint=self._param("gripper_joint"),
            action_space=block or None,
            source="policy_node parameters",
        )

    def _make_io(self) -> None:
        self.cameras.subscribe()
        self._io.append(self.create_subscription(JointState, "joint_states", self._on_joint_state, 10))
        self._io.append(self.create_subscription(String, "instruction", self._on_instruction_topic, 10))
        if self.p["use_plan_prefix"]:  # RTC guidance, and where cumulative deltas start
            self._io.append(self.create_subscription(JointTrajectory, "plan_prefix", self._on_plan_prefix, 10))
        self.chunk_pub = self.create_lifecycle_publisher(JointTrajectory, "action_chunk", 10)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._io += [self.diag_pub, self.create_timer(1.0, self._publish_diagnostics)]
        self.core.reset_stats()

    def _release(self) -> None:
        """Stop inferring, drop the I/O made at configure and free the model."""
        self._stop_worker()
        self.cameras.unsubscribe()
        destroy_entities(self, self._io)
        if self.chunk_pub is not None:
            self.destroy_lifecycle_publisher(self.chunk_pub)
            self.chunk_pub = None
        self.core.release()

    def _stop_worker(self) -> None:
        self._stop.set()
        if self._worker is not None:
            self._worker.join(timeout=10.0)
            self._worker = None

    # --- inputs --------------------------------------------------------------------------
    def _on_joint_state(self, msg: JointState) -> None:
        try:
            stamp_s = conversions.stamp_to_s(msg.header.stamp)
            self.core.buffer.add_joint_state(stamp_s, list(msg.name), list(msg.position))
        except ObservationError as exc:
            self.log.error(f"dropping joint state: {exc}", key=f"joints:{str(exc).split(':')[0]}")

    def _on_plan_prefix(self, msg: JointTrajectory) -> None:
        """Hold the executor's newest plan ahead; one with no points says it has no plan (holding, braking)."""
        if not msg.points or self.core.backend is None:
            self.core.set_prefix(self._now_s(), None, None)
            return
        try:
            prefix = conversions.trajectory_to_prefix(msg, self.core.backend.joint_names, 0.0)
        except ValueError as exc:
            self.log.error(f"ignoring plan prefix: {exc}", key="prefix")
            return
        self.core.set_prefix(self._now_s(), prefix, conversions.trajectory_end_s(msg))

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        for param in params:
            if param.name == "instruction" and param.type_ == Parameter.Type.STRING:
                reason = self.task.on_parameter(param.value)
                if reason:
                    return SetParametersResult(successful=False, reason=reason)
            elif param.name == "backend_settings" and param.type_ == Parameter.Type.STRING:
                try:
                    parse_overrides(param.value)
                except SettingsError as exc:
                    return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def _apply_instruction(self, text: str) -> None:
        self.core.instruction = text

    def _on_instruction_topic(self, msg: String) -> None:
        result = self.set_parameters([Parameter("instruction", Parameter.Type.STRING, msg.data)])[0]
        if not result.successful:
            self.get_logger().error(f"instruction topic: rejected: {result.reason}")

    # --- services ------------------------------------------------------------------------
    def _srv_reset(self, _req, res):
        self.core.reset()
        was = self.task.clear()
        res.success = True
        res.message = (
            f"observation buffer, backend episode state and the task ('{was}') cleared: set an instruction to go on"
        )
        return res

    # --- outputs -------------------------------------------------------------------------
    def _publish(self, chunk: ActionChunk) -> tuple[float, float]:
        """Publish a chunk the core accepted; (message build s, publish s)."""
        message_start = time.perf_counter()
        msg = self._chunk_writer.message(chunk)  # reused: only the inference thread writes and publishes it
        publish_start = time.perf_counter()
        self.chunk_pub.publish(msg)
        return publish_start - message_start, time.perf_counter() - publish_start

    def _publish_diagnostics(self) -> None:
        values = self.core.diagnostics()
        values.update(self.task.diagnostics())
        state = "active" if self._worker is not None else "inactive"
        ok = values.get("link_state", "connected") == "connected"
        self.diag_pub.publish(
            conversions.diagnostic_array(
                f"{self.get_name()}: policy", state, values, self.get_clock().now().to_msg(), ok
            )
        )

    def shutdown_gracefully(self) -> None:
        """On SIGINT/SIGTERM: stop inferring and free the model before the process exits."""
        self._release()


EXECUTOR_VARIABLE = "VLA_ROS_POLICY_EXECUTOR"  # `events` (default) or `single`: rclpy executor of the policy node


def main(args=None) -> int:
    # 0.5 ms GIL switch interval: the inference thread, woken by a frame, runs without waiting out
    # the executor thread's 5 ms default (frame -> chunk p50 11.8 -> 4.6 ms in benchmarks.pipeline).
    # rclpy's EventsExecutor: a frame reaches its callback without a wait set rebuilt in Python per wake.
    # Large buffers stay in the heap: a 0.9 MB frame's buffers are not page-faulted in anew per message.
    keep_freed_memory()
    events = os.environ.get(EXECUTOR_VARIABLE, "events") != "single"
    return run_node(PolicyNode, "vla_policy", (ValueError,), args, switch_interval_s=0.0005, events_executor=events)


if __name__ == "__main__":
    sys.exit(main())
