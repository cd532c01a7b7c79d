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
`/diagnostics` out. Service `~/reset` (Trigger): clear the observation buffer and the backend's
episode state. Model actions become joint targets through the checkpoint's action space on this
robot (backends/action_output.py; parameters urdf_path, end_effector_link, base_link, gripper_joint,
action_space); a chunk cut short (a non-finite value, an unreachable pose) is published up to the
cut, one with no convertible point is not published; both are counted in /diagnostics and logged.
Inference runs in its own thread, scheduled from the measured latency. /diagnostics also carries
where each chunk's time went (`stage_<name>_p50_ms` / `_p99_ms`, core/stage_times.py). The node spins
rclpy's EventsExecutor (`VLA_ROS_POLICY_EXECUTOR=single`: the single-threaded one).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter, deque

import numpy as np
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from vla_ros.backends.action_output import RobotBody
from vla_ros.backends.base import Backend, BackendError, load_backend
from vla_ros.backends.settings import SettingsError, describe, parse_overrides
from vla_ros.core.allocator import keep_freed_memory
from vla_ros.core.images import ImageFormatError
from vla_ros.core.observation import ObservationBuffer, ObservationError
from vla_ros.core.safety import ChunkRejected, check_policy_chunk
from vla_ros.core.scheduling import InferenceScheduler, LatencyEstimate
from vla_ros.core.stage_times import StageTimes
from vla_ros.core.types import ActionChunk, Observation, PlanPrefix
from vla_ros.nodes import conversions
from vla_ros.nodes.params import declare
from vla_ros.nodes.runner import destroy_entities, run_node
from vla_ros.nodes.throttle import KeyedThrottle
from vla_ros.params import POLICY
from vla_ros.paths import resolve_package_path

SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE
CONFIGURE_ERRORS = (BackendError, SettingsError, ValueError, FileNotFoundError, OSError)
CAMERA_SILENT_S = 5.0  # seconds active without a usable frame from a camera before it is reported (and again)
PREFIX_WAIT_S = 0.15  # longest wait for the executor's plan_prefix to include the last chunk (3 periods at 20 Hz)


class PolicyNode(LifecycleNode):
    def __init__(self, **kwargs):
        super().__init__("vla_policy", **kwargs)
        self.p = declare(self, POLICY)
        self.cameras, self.topics = tuple(self.p["camera_names"]), tuple(self.p["camera_topics"])
        self.joints = tuple(j for j in self.p["joint_names"] if j)
        if len(self.cameras) != len(self.topics) or not self.cameras:
            raise ValueError(
                f"camera_names {list(self.cameras)} and camera_topics {list(self.topics)} must be non-empty and the "
                "same length"
            )
        if not self.joints:
            raise ValueError("parameter joint_names is empty: set it from the robot config")
        self.instruction = ""
        self.backend: Backend | None = None
        self.buffer = ObservationBuffer(self.cameras, self.joints)
        self._io: list = []  # subscriptions, publishers and timers made at configure
        self._worker: threading.Thread | None = None
        self._camera_subs: dict = {}  # camera -> its image subscription (made at configure)
        self._camera_silent_since: dict[str, float] = {}  # camera -> perf_counter since when it is watched
        self._stop = threading.Event()
        self._prefix_ready = threading.Condition()  # a plan_prefix arrived
        self._throttle = KeyedThrottle(2.0)
        self._chunk_writer = conversions.ChunkMessageWriter()
        self._reset_stats()
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.create_service(Trigger, "~/reset", self._srv_reset)
        if self.p["instruction"]:
            reason = self._instruction_problem(self.p["instruction"])
            if reason:
                raise ValueError(f"parameter instruction: {reason}")
            self._accept_instruction(self.p["instruction"])
        self.get_logger().info(
            "unconfigured: waiting for the configure transition (the lifecycle manager sends it when autostart is on)"
        )

    def _reset_stats(self) -> None:
        self.inference_count = 0
        self.faults: Counter[str] = (
            Counter()
        )  # backend_errors, outputs_rejected, chunks_dropped_stale, frames_out_of_order, camera_silences
        self.last_fault = ""  # the newest of them, in words (for /diagnostics)
        self.guided_count = 0
        self.truncated_count = 0  # chunks published shorter than predicted
        self.rejected_count = 0  # chunks with no convertible point (not published)
        self.ik_failure_count = 0  # of those two, cut by an unreachable pose
        self.last_truncation = ""
        self.frame_to_chunk_s: deque[float] = deque(maxlen=10_000)  # oldest frame used -> chunk published
        self.inference_s: deque[float] = deque(maxlen=10_000)
        self.stage_times = StageTimes()  # per chunk: receive, convert, wait, predict, message, publish (s)
        # camera -> (frame stamp s, stamp -> callback s, conversion s, perf_counter when stored) of its newest frame
        self._frame_timing: dict[str, tuple[float, float, float, float]] = {}
        self.scheduler = InferenceScheduler(self.get_parameter("inference_period_s").value, self.p["schedule_margin_s"])
        self.snapshot_to_publish = LatencyEstimate()  # how long after its observation a chunk takes effect
        self._prefix_msg: tuple[float, JointTrajectory] | None = None  # (received at, plan_prefix)
        self._prefix_seen = False  # the executor publishes its plan (guided mode)
        self._last_chunk_end_s: float | None = None  # time of the last point of the last chunk published

    def _param(self, name: str):
        """A parameter's current value (run-time changes included)."""
        return self.get_parameter(name).value

    # --- lifecycle -----------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.backend = self._load_backend()
            self._warm_up()
        except CONFIGURE_ERRORS as exc:
            self.get_logger().error(f"configure failed: {exc}")
            self._release()
            return FAILURE
        self._make_io()
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._forget_plan()  # a plan from before activation is not the plan this run continues
        self._camera_silent_since.clear()  # cameras are watched from now on
        self._stop.clear()
        self._worker = threading.Thread(target=self._inference_loop, name="inference", daemon=True)
        self._worker.start()
        self.get_logger().info(
            "active: " + (f"inferring for '{self.instruction}'" if self.instruction else "waiting for an instruction")
        )
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        self._forget_plan()  # the next activation starts a new run (e.g. an episode after a reset)
        self.get_logger().info("inactive: not inferring")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return SUCCESS

    def _load_backend(self) -> Backend:
        name, path = self._param("backend"), self._param("model_path")
        model_path = resolve_package_path(path) if path else None
        overrides = parse_overrides(self._param("backend_settings"))
        if self._param("device"):
            overrides["device"] = self._param("device")
        started = time.monotonic()
        backend = load_backend(
            name,
            model_path,
            overrides,
            seed=self.p["seed"],
            num_threads=self.p["num_threads"],
            robot=self._robot_body(),
        )
        missing_joints = [j for j in backend.joint_names if j not in self.joints]
        missing_cams = [c for c in backend.camera_names if c not in self.cameras]
        if missing_joints or missing_cams:
            backend.close()
            raise BackendError(
                f"model {model_path} does not fit the robot: joints {missing_joints} and cameras {missing_cams} are "
                "not in the robot "
                f"config (joints {list(self.joints)}, cameras {list(self.cameras)})"
            )
        self.get_logger().info(
            f"backend '{name}' loaded from {model_path} in {time.monotonic() - started:.1f} s; joints "
            f"{list(backend.joint_names)}, "
            f"cameras {list(backend.camera_names)}, horizon {backend.horizon} x {backend.dt_s} s"
        )
        if backend.settings is not None:
            self.get_logger().info(
                f"effective backend settings: {describe(backend.settings, backend.settings_sources)}"
            )
        if backend.provenance:
            self.get_logger().info(
                "from the checkpoint: " + ", ".join(f"{k} <- {v}" for k, v in backend.provenance.items())
            )
        out = backend.output
        self.get_logger().info(
            f"action space '{out.space.name}' ({', '.join(g.type for g in out.space.groups)}; {out.action_dim} values "
            f"per point, state {out.state_dim}) from {out.source}"
        )
        return backend

    def _robot_body(self) -> RobotBody:
        """The robot side of the action space, from the parameters (ValueError naming a bad one)."""
        text = self._param("action_space")
        try:
            block = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as exc:
            raise ValueError(f"parameter action_space: not a YAML mapping ({exc})") from exc
        if block is not None and not isinstance(block, dict):
            raise ValueError(
                f"parameter action_space: must be a mapping such as '{{preset: bridge_ee_delta}}', got {text!r}"
            )
        urdf = self._param("urdf_path")
        return RobotBody(
            joint_names=self.joints,
            camera_names=tuple(self.cameras),
            urdf=str(resolve_package_path(urdf)) if urdf else "",
            ee_link=self._param("end_effector_link"),
            base_link=self._param("base_link"),
            gripper_joint=self._param("gripper_joint"),
            action_space=block,
            source="policy_node parameters",
        )

    def _warm_up(self) -> None:
        """One inference on a synthetic observation (black images, joints at zero): the first real
        inference is then not slowed by lazy initialisation."""
        if not self.p["warmup"]:
            return
        images = {c: np.zeros((224, 224, 3), np.uint8) for c in self.cameras}
        obs = Observation(0.0, images, self.joints, np.zeros(len(self.joints)), "warm up")
        started = time.monotonic()
        self.backend.predict(obs)
        self.backend.reset()
        self.get_logger().info(f"warm-up inference took {(time.monotonic() - started) * 1e3:.0f} ms")

    def _make_io(self) -> None:
        self._camera_subs = {cam: self._subscribe_camera(cam, topic) for cam, topic in zip(self.cameras, self.topics)}
        self._camera_silent_since = {}
        self._io.append(self.create_timer(1.0, self._watch_cameras))
        self._io.append(self.create_subscription(JointState, "joint_states", self._on_joint_state, 10))
        self._io.append(self.create_subscription(String, "instruction", self._on_instruction_topic, 10))
        if self.p["use_plan_prefix"]:  # RTC guidance, and where cumulative deltas start
            self._io.append(self.create_subscription(JointTrajectory, "plan_prefix", self._on_plan_prefix, 10))
        self.chunk_pub = self.create_lifecycle_publisher(JointTrajectory, "action_chunk", 10)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._io += [self.diag_pub, self.create_timer(1.0, self._publish_diagnostics)]
        self._reset_stats()

    def _subscribe_camera(self, camera: str, topic: str):
        if topic.endswith("/compressed"):
            msg_type, convert = CompressedImage, conversions.compressed_msg_to_rgb
        else:
            msg_type, convert = Image, conversions.image_msg_to_rgb
        return self.create_subscription(
            msg_type, topic, lambda m, c=camera: self._on_image(c, m, convert), qos_profile_sensor_data
        )

    def _watch_cameras(self) -> None:
        """While active: a camera with no usable frame for `CAMERA_SILENT_S` is reported (once per
        `CAMERA_SILENT_S` while it lasts) with the publishers its subscription is matched with and those
        in the ROS graph: none means the camera (or discovery) is gone; some means they send nothing
        this node receives."""
        if self._worker is None:
            self._camera_silent_since.clear()
            return
        now = time.perf_counter()
        for cam, topic in zip(self.cameras, self.topics):
            timing = self._frame_timing.get(cam)
            last = timing[3] if timing is not None else None
            since = self._camera_silent_since.setdefault(cam, now)
            if last is not None and last > since:
                self._camera_silent_since[cam] = last
                continue
            if now - since < CAMERA_SILENT_S:
                continue
            matched = self._camera_subs[cam].get_publisher_count()
            self.faults["camera_silences"] += 1
            self.get_logger().warning(
                f"camera '{cam}': no usable frame on '{topic}' for {now - since:.1f} s while active (subscription "
                f"matched with {matched} publisher(s), {self.count_publishers(topic)} in the ROS graph; "
                f"camera_silences: {self.faults['camera_silences']})"
            )
            self._camera_silent_since[cam] = now

    def _release(self) -> None:
        """Stop inferring, drop the I/O made at configure and free the model."""
        self._stop_worker()
        destroy_entities(self, self._io + list(self._camera_subs.values()))
        self._camera_subs = {}
        if getattr(self, "chunk_pub", None) is not None:
            self.destroy_lifecycle_publisher(self.chunk_pub)
            self.chunk_pub = None
        if self.backend is not None:
            self.backend.close()
            self.backend = None
        self.buffer.clear()

    def _stop_worker(self) -> None:
        self._stop.set()
        if self._worker is not None:
            self._worker.join(timeout=10.0)
            self._worker = None

    # --- inputs --------------------------------------------------------------------------
    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_image(self, camera: str, msg, convert) -> None:
        entered_s, entered = self._now_s(), time.perf_counter()
        try:
            rgb = convert(msg)
        except ImageFormatError as exc:
            fmt = msg.encoding if hasattr(msg, "encoding") else msg.format
            self._error(f"image:{camera}:{fmt}:{len(msg.data)}", f"dropping frame from camera '{camera}': {exc}")
            return
        stamp_s = conversions.stamp_to_s(msg.header.stamp)
        if self.buffer.add_image(camera, stamp_s, rgb):
            stored = time.perf_counter()
            self._frame_timing[camera] = (stamp_s, entered_s - stamp_s, stored - entered, stored)
        else:
            self.faults["frames_out_of_order"] += 1
            self._error(
                f"order:{camera}",
                f"dropping frame from camera '{camera}': stamped no later than the frame held (out of order or a "
                "duplicated stamp)",
            )

    def _on_joint_state(self, msg: JointState) -> None:
        try:
            self.buffer.add_joint_state(conversions.stamp_to_s(msg.header.stamp), list(msg.name), list(msg.position))
        except ObservationError as exc:
            self._error(f"joints:{str(exc).split(':')[0]}", f"dropping joint state: {exc}")

    def _on_plan_prefix(self, msg: JointTrajectory) -> None:
        """Hold the executor's newest plan ahead; one with no points says it has no plan (holding, braking)."""
        with self._prefix_ready:
            self._prefix_msg = (self._now_s(), msg) if msg.points else None
            self._prefix_seen |= bool(msg.points)
            self._prefix_ready.notify_all()

    def _forget_plan(self) -> None:
        with self._prefix_ready:
            self._prefix_msg, self._last_chunk_end_s = None, None

    def _wait_for_current_prefix(self) -> None:
        """Wait (at most PREFIX_WAIT_S) until the held plan prefix reaches the last published chunk's end,
        i.e. the executor has merged that chunk: the next chunk must continue the plan that runs, not the one
        the last chunk replaced (or no plan at all, right after the first chunk)."""
        end_s = self._last_chunk_end_s
        if end_s is None or not self._prefix_seen:
            return

        def current() -> bool:
            held = self._prefix_msg
            return self._stop.is_set() or (held is not None and conversions.trajectory_end_s(held[1]) >= end_s - 1e-6)

        with self._prefix_ready:
            self._prefix_ready.wait_for(current, timeout=PREFIX_WAIT_S)

    def _plan_prefix(self, now_s: float, stamp_s: float) -> PlanPrefix | None:
        """The executor's plan ahead, if fresh, for a chunk of the observation stamped `stamp_s`: the part
        before the chunk can take effect (the stamp + the observation-to-publish latency, p90) is committed."""
        if self._prefix_msg is None or now_s - self._prefix_msg[0] > self._param("max_observation_age_s"):
            return None
        committed_until = stamp_s + self.snapshot_to_publish.value(default=0.0)
        try:
            return conversions.trajectory_to_prefix(self._prefix_msg[1], self.backend.joint_names, committed_until)
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
            limit = self.p["max_instruction_chars"]
            return f"instruction has {len(text)} characters, more than max_instruction_chars={limit}"
        return None

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        for param in params:
            if param.name == "instruction" and param.type_ == Parameter.Type.STRING:
                reason = self._instruction_problem(param.value)
                if reason:
                    return SetParametersResult(successful=False, reason=reason)
                self._accept_instruction(param.value)
            elif param.name == "backend_settings" and param.type_ == Parameter.Type.STRING:
                try:
                    parse_overrides(param.value)
                except SettingsError as exc:
                    return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def _accept_instruction(self, text: str) -> None:
        self.instruction = text
        self.get_logger().info(f"instruction: '{text}'")

    def _on_instruction_topic(self, msg: String) -> None:
        result = self.set_parameters([Parameter("instruction", Parameter.Type.STRING, msg.data)])[0]
        if not result.successful:
            self.get_logger().error(f"instruction topic: rejected: {result.reason}")

    # --- services ------------------------------------------------------------------------
    def _srv_reset(self, _req, res):
        self.buffer.clear()
        self._forget_plan()
        if self.backend is not None:
            self.backend.reset()
        res.success, res.message = True, "observation buffer and backend episode state cleared"
        return res

    # --- inference -----------------------------------------------------------------------
    def _inference_loop(self) -> None:
        """While active: infer as soon as every camera has a frame captured after the cycle started
        (chunks from frames as fresh as the cameras allow), then wait for the scheduler's next start."""
        while not self._stop.is_set() and self.context.ok():
            if not self.instruction:
                self._stop.wait(0.05)
                continue
            started = self._now_s()
            self._wait_for_current_prefix()
            # no fresh frames within max_observation_age_s: snapshot() says what is stale
            self.buffer.wait_for_frames(started, timeout_s=self._param("max_observation_age_s"))
            chunk_end = self._infer_once()
            if chunk_end is not None:
                self._last_chunk_end_s = chunk_end
            self.scheduler.period_s = self._param("inference_period_s")
            self.scheduler.on_cycle(self._now_s() - started, chunk_end)
            self._stop.wait(max(0.0, self.scheduler.next_start_s(started) - self._now_s()))

    def _infer_once(self) -> float | None:
        """Infer and publish one chunk from the newest observation, unless it is stale.

        Returns the time of the published chunk's last point (None if nothing was published).
        """
        max_age = self._param("max_observation_age_s")
        try:
            obs = self.buffer.snapshot(self._now_s(), max_age, self.instruction)
        except ObservationError as exc:
            self.get_logger().warning(f"not inferring: {exc}", throttle_duration_sec=2.0)
            return None
        woke = time.perf_counter()
        prefix = self._plan_prefix(self._now_s(), obs.stamp_s)
        try:
            chunk = self.backend.predict(obs, prefix=prefix)
        except Exception as exc:  # noqa: BLE001 - a failing model must not kill the node
            self._fault("backend_errors", f"backend failed, no chunk for this observation: {exc!r}")
            return None
        if isinstance(chunk, ActionChunk) and not self._count_truncation(chunk):
            return None  # the action space left no point (e.g. NaN model output): counted with the reason
        try:
            chunk = check_policy_chunk(chunk, self.backend.joint_names)
        except ChunkRejected as exc:
            self._fault("outputs_rejected", f"not publishing: {exc}")
            return None
        delay = self._param("inference_delay_s")
        if delay > 0:
            self._stop.wait(delay)
        age = self._now_s() - obs.stamp_s
        if self._stop.is_set() or not self.context.ok():
            return None
        if age > max_age:
            self._fault(
                "chunks_dropped_stale",
                f"dropping chunk: its observation is {age:.3f} s old (> max_observation_age_s={max_age}): inference "
                "is too slow",
            )
            return None
        message_start = time.perf_counter()
        msg = self._chunk_writer.message(chunk)  # reused: only the inference thread writes and publishes it
        publish_start = time.perf_counter()
        self.chunk_pub.publish(msg)
        published = time.perf_counter()
        self._record_stages(obs, woke, message_start - woke, publish_start - message_start, published - publish_start)
        self.inference_count += 1
        self.guided_count += prefix is not None and self.backend.supports_prefix
        self.inference_s.append(chunk.inference_s)
        self.snapshot_to_publish.add(age)
        self.frame_to_chunk_s.append(self._now_s() - min(obs.image_stamps_s.values()))
        return float(chunk.times_s()[-1])

    def _record_stages(self, obs: Observation, woke: float, predict_s: float, message_s: float, publish_s: float):
        """Stage durations of a published chunk, from the frame that completed its observation (the last stored)."""
        timings = [self._frame_timing.get(c) for c in obs.image_stamps_s]
        if any(t is None or t[0] != obs.image_stamps_s[c] for t, c in zip(timings, obs.image_stamps_s)):
            return  # a newer frame replaced one in between: nothing to attribute
        _, receive_s, convert_s, stored = max(timings, key=lambda t: t[3])
        self.stage_times.add((receive_s, convert_s, woke - stored, predict_s, message_s, publish_s))

    def _count_truncation(self, chunk) -> bool:
        """Count and log (throttled) a chunk cut short by the action space; False if nothing is left to publish."""
        if not chunk.truncated_reason:
            return True
        self.ik_failure_count += chunk.ik_failed
        self.last_truncation = chunk.truncated_reason
        if chunk.horizon == 0:
            self.rejected_count += 1
            self._error("chunk:rejected", f"chunk not published: no point could be converted: {chunk.truncated_reason}")
            return False
        self.truncated_count += 1
        self._error("chunk:truncated", f"chunk cut to {chunk.horizon} points: {chunk.truncated_reason}")
        return True

    def _fault(self, counter: str, text: str) -> None:
        """Count a chunk not published and log why (throttled per counter)."""
        self.faults[counter] += 1
        self.last_fault = text
        self._error(counter, f"{text} ({counter}: {self.faults[counter]})")

    def _publish_diagnostics(self) -> None:
        def ms(values, q):
            return f"{np.percentile(np.asarray(values), q) * 1e3:.2f}" if values else "nan"

        f2c, inf = list(self.frame_to_chunk_s), list(self.inference_s)
        state = "active" if self._worker is not None else "inactive"
        values = {
            "instruction": self.instruction,
            "chunks_published": self.inference_count,
            "chunks_guided": self.guided_count,
            "chunks_truncated": self.truncated_count,
            "chunks_rejected": self.rejected_count,
            "ik_failures": self.ik_failure_count,
            "last_truncation": self.last_truncation,
            "latency_estimate_ms": f"{self.scheduler.latency.value() * 1e3:.1f}",
            "frame_to_chunk_p50_ms": ms(f2c, 50),
            "frame_to_chunk_p99_ms": ms(f2c, 99),
            "inference_p50_ms": ms(inf, 50),
            "inference_p99_ms": ms(inf, 99),
            **{f"stage_{k}_p50_ms": f"{v:.3f}" for k, v in self.stage_times.percentiles_ms(50).items()},
            **{f"stage_{k}_p99_ms": f"{v:.3f}" for k, v in self.stage_times.percentiles_ms(99).items()},
            **{
                k: self.faults[k]
                for k in (
                    "backend_errors",
                    "outputs_rejected",
                    "chunks_dropped_stale",
                    "frames_out_of_order",
                    "camera_silences",
                )
            },
            "last_fault": self.last_fault,
        }
        if self.backend is not None:
            values.update(self.backend.diagnostics())  # e.g. a remote backend's link state and timing
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
