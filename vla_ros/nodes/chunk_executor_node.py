"""`chunk_executor` (node `vla_chunk_executor`): action chunks -> limited position commands.

Subscribes `action_chunk` (JointTrajectory) and `joint_states`; publishes `commands` (the
`output` kind, in `joint_names` order) at `control_rate_hz` from a dedicated thread that sleeps
to absolute deadlines, `~/status` (DiagnosticStatus: state, active limits, plan left), `/diagnostics`
(counters, timing) and, in guided mode, `plan_prefix` (JointTrajectory: the plan ahead, for the
policy node). Services: `~/estop`, `~/reset_estop` (Trigger, latched), `~/enable` (SetBool:
disabled publishes nothing; enabling restarts at rest from the measured positions).
"""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory

from vla_ros.config import resolve_package_path
from vla_ros.core.executor import Command, ExecutorCore, ExecutorSettings
from vla_ros.core.observation import ObservationError, positions_by_name
from vla_ros.core.run_log import RunLog
from vla_ros.core.safety import ChunkRejected
from vla_ros.core.types import JointLimits
from vla_ros.core.workspace import Workspace, urdf_workspace
from vla_ros.nodes import conversions
from vla_ros.nodes.runner import run_node
from vla_ros.nodes.params import EXECUTOR_PARAMS, JOINT_LIMIT_KEYS, declare
from vla_ros.nodes.throttle import KeyedThrottle


def declare_joint_limits(node: Node, joints: tuple[str, ...]) -> JointLimits:
    """Declare `joint_limits.<joint>.<key>` (ros2_control names) and build JointLimits."""
    values = {k: [] for k in JOINT_LIMIT_KEYS}
    for j in joints:
        for k in JOINT_LIMIT_KEYS:
            v = node.declare_parameter(f"joint_limits.{j}.{k}", float("nan")).value
            if k in ("max_acceleration", "max_jerk") and np.isnan(v):
                v = float("inf")
            if np.isnan(v):
                raise ValueError(f"parameter joint_limits.{j}.{k} is not set (the robot config must give it)")
            values[k].append(v)
    return JointLimits(joints, *(np.array(values[k]) for k in JOINT_LIMIT_KEYS))


def workspace_from_parameters(p: dict, joints: tuple[str, ...]) -> Workspace | None:
    """The workspace the `workspace_*` parameters describe (None when `workspace_link` is empty)."""
    if not p["workspace_link"]:
        return None
    if not p["urdf_path"]:
        raise ValueError("parameter workspace_link is set but urdf_path is empty: the workspace check needs the URDF")
    keep_out = list(p["workspace_keep_out"])
    if len(keep_out) % 6:
        raise ValueError(f"parameter workspace_keep_out: needs 6 numbers per box, got {len(keep_out)}")
    boxes = tuple((keep_out[i : i + 3], keep_out[i + 3 : i + 6]) for i in range(0, len(keep_out), 6))
    return urdf_workspace(resolve_package_path(p["urdf_path"]), joints, p["workspace_link"], p["workspace_min"], p["workspace_max"], boxes)


class ChunkExecutorNode(Node):
    def __init__(self, **kwargs):
        super().__init__("vla_chunk_executor", **kwargs)
        self.p = declare(self, EXECUTOR_PARAMS)
        joints = tuple(j for j in self.p["joint_names"] if j)
        if not joints:
            raise ValueError("parameter joint_names is empty: set it from the robot config")
        limits = declare_joint_limits(self, joints)
        settings = ExecutorSettings(
            joint_state_timeout_s=self.p["joint_state_timeout_s"],
            plan_timeout_s=self.p["plan_timeout_s"],
            max_stamp_skew_s=self.p["max_stamp_skew_s"],
            position_margin_rad=self.p["position_margin_rad"],
            blend=self.p["blend_mode"],
            crossfade_s=self.p["crossfade_s"],
            ensemble_m=self.p["ensemble_m"],
            lookahead_s=self.p["lookahead_s"],
        )
        if self.p["output"] not in conversions.COMMAND_TYPES:
            raise ValueError(f"parameter output: unknown '{self.p['output']}' (one of {list(conversions.COMMAND_TYPES)})")
        self.core = ExecutorCore(limits, settings, workspace_from_parameters(self.p, joints))
        self.run_log = RunLog(limits) if self.p["record_path"] else None
        self._last_status: tuple | None = None  # (state, limits) last sent on ~/status
        self._last_command: Command | None = None
        self.lock = threading.Lock()  # the core is shared by callbacks and the control thread
        self.enabled = bool(self.p["start_enabled"])
        self.period_s = 1.0 / self.p["control_rate_hz"]
        self.tick_lateness_s: list[float] = []  # wake-up after the tick's deadline (seconds), last 1000
        self.tick_cpu_s: list[float] = []  # CPU time of a tick: core + publish (seconds), last 1000
        self.measured: np.ndarray | None = None
        self._throttle = KeyedThrottle(1.0)

        self.create_subscription(JointTrajectory, "action_chunk", self._on_chunk, 10)
        self.create_subscription(JointState, "joint_states", self._on_joint_state, 10)
        self.cmd_pub = self.create_publisher(conversions.COMMAND_TYPES[self.p["output"]], "commands", 10)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.status_pub = self.create_publisher(DiagnosticStatus, "~/status", 10)
        self.create_timer(1.0 / self.p["status_rate_hz"], lambda: self._publish_status(force=True))
        if settings.blend == "guided":
            self.prefix_pub = self.create_publisher(JointTrajectory, "plan_prefix", 10)
            self.create_timer(1.0 / self.p["plan_prefix_rate_hz"], self._publish_plan_prefix)
        self.create_service(Trigger, "~/estop", self._srv_estop)
        self.create_service(Trigger, "~/reset_estop", self._srv_reset_estop)
        self.create_service(SetBool, "~/enable", self._srv_enable)
        self.create_timer(self.p["diagnostics_period_s"], self._publish_diagnostics)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._control_loop, name="control", daemon=True)
        self._thread.start()
        self.get_logger().info(f"executing chunks for {list(joints)} at {self.p['control_rate_hz']} Hz")

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # --- inputs --------------------------------------------------------------------------
    def _on_joint_state(self, msg: JointState) -> None:
        try:
            q = positions_by_name(list(msg.name), list(msg.position), self.core.joint_names)
        except ObservationError as exc:
            if self._throttle.ready(f"joints:{str(exc).split(':')[0]}"):
                self.get_logger().error(f"ignoring joint state: {exc}")
            return
        with self.lock:
            self.measured = q
            self.core.on_joint_state(self._now_s(), q)
            if self.run_log is not None:
                self.run_log.add_measured(self._now_s(), q)

    def _on_chunk(self, msg: JointTrajectory) -> None:
        now = self._now_s()
        try:
            chunk = conversions.trajectory_to_chunk(msg, now)
            with self.lock:
                accepted = self.core.on_chunk(chunk, now)
                if self.run_log is not None:
                    self.run_log.add_chunk(accepted, now, self.core.last_switch_jump)
        except (ValueError, ChunkRejected) as exc:
            if not isinstance(exc, ChunkRejected):
                with self.lock:
                    self.core.counters["chunks_rejected"] += 1
            if self._throttle.ready(f"chunk:{type(exc).__name__}:{str(exc)[:40]}"):
                self.get_logger().error(f"rejected chunk: {exc}")

    # --- services ------------------------------------------------------------------------
    def _srv_estop(self, _req, res):
        with self.lock:
            self.core.estop()
        self.get_logger().warning("E-STOP latched: holding position until ~/reset_estop")
        res.success, res.message = True, "e-stop latched"
        return res

    def _srv_reset_estop(self, _req, res):
        with self.lock:
            self.core.reset_estop()
        res.success, res.message = True, "e-stop released; holding until the next chunk"
        return res

    def _srv_enable(self, req, res):
        with self.lock:
            if req.data and not self.enabled and self.measured is not None:
                self.core.resync(self.measured)  # start at rest from where the arm is now
            self.core.plan.clear()
            self.enabled = bool(req.data)
        res.success, res.message = True, "enabled" if req.data else "disabled: no commands are published"
        return res

    # --- control loop --------------------------------------------------------------------
    def _control_loop(self) -> None:
        deadline = time.monotonic()
        while not self._stop.is_set() and self.context.ok():
            deadline += self.period_s
            delay = deadline - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                deadline = time.monotonic()  # overran: do not try to catch up
            self.tick_lateness_s.append(time.monotonic() - deadline)
            del self.tick_lateness_s[:-1000]
            cpu_start = time.thread_time()
            with self.lock:
                if not self.enabled:
                    continue
                now = self._now_s()
                command = self.core.tick(now)
                if self.run_log is not None and command.positions is not None:
                    self.run_log.add_command(now, command.positions, self.core.limiter.acceleration)
            if command.positions is not None and self.context.ok():
                stamp = self.get_clock().now().to_msg()
                self.cmd_pub.publish(conversions.command_message(self.p["output"], self.core.joint_names, command.positions, stamp, self.period_s))
            self._last_command = command
            self._publish_status(force=False)
            self.tick_cpu_s.append(time.thread_time() - cpu_start)
            del self.tick_cpu_s[:-1000]

    def _publish_status(self, force: bool) -> None:
        """`~/status` on every change of state or active limits, and periodically (`force`)."""
        command = self._last_command
        state = (command.state if command else "waiting") if self.enabled else "disabled"
        limits = command.limits if command else ()
        key = (state, limits)
        if (not force and key == self._last_status) or not self.context.ok():
            return
        self._last_status = key
        with self.lock:
            plan_left = max(0.0, self.core.plan.end_time_s - self._now_s()) if not self.core.plan.empty else 0.0
            values = {"state": state, "active_limits": ",".join(limits), "plan_left_s": f"{plan_left:.3f}", "estop": self.core.estopped, "enabled": self.enabled}
        ok = state in ("tracking", "holding", "waiting") and "workspace" not in limits
        self.status_pub.publish(conversions.diagnostic_status(self.get_name(), state, values, ok))

    def _publish_plan_prefix(self) -> None:
        with self.lock:
            ahead = self.core.plan_ahead(self._now_s())
        if ahead is not None and self.context.ok():
            self.prefix_pub.publish(conversions.plan_to_trajectory(self.core.joint_names, *ahead))

    def _publish_diagnostics(self) -> None:
        with self.lock:
            counters = dict(self.core.counters)
            state = self.core.last_state if self.enabled else "disabled"
        late = np.array(self.tick_lateness_s or [0.0]) * 1e3
        cpu = np.array(self.tick_cpu_s or [0.0]) * 1e6
        values = {
            **counters,
            "tick_lateness_p50_ms": f"{np.percentile(late, 50):.3f}",
            "tick_lateness_p99_ms": f"{np.percentile(late, 99):.3f}",
            "tick_lateness_max_ms": f"{late.max():.3f}",
            "tick_cpu_p50_us": f"{np.percentile(cpu, 50):.1f}",
            "tick_cpu_p99_us": f"{np.percentile(cpu, 99):.1f}",
        }
        ok = state in ("tracking", "holding", "waiting")
        self.diag_pub.publish(conversions.diagnostic_array(f"{self.get_name()}: executor", state, values, self.get_clock().now().to_msg(), ok))

    def destroy_node(self):
        if hasattr(self, "_stop"):  # also called by rclpy.shutdown on a node whose __init__ failed
            self._stop.set()
            self._thread.join(timeout=2.0)
            if self.run_log is not None:
                path = self.run_log.save(self.p["record_path"])
                self.get_logger().info(f"run recorded to {path} (plot: vla-ros plot {path})")
        return super().destroy_node()


def main(args=None) -> int:
    return run_node(ChunkExecutorNode, "vla_chunk_executor", (ValueError,), args)  # KinematicsError is a ValueError


if __name__ == "__main__":
    sys.exit(main())
