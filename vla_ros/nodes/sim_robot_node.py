"""`sim_robot` (node `vla_sim_robot`): a MuJoCo robot as a ROS robot, in real time.

By default the tabletop arm: publishes `joint_states`, `camera/image_raw` (front) and
`wrist_camera/image_raw`; follows `commands` as parameter `controller` says: `forward_position`
(Float64MultiArray of joint positions in the sim's joint order, each held until the next, as
ros2_control's forward position controller) or `joint_trajectory` (JointTrajectory, run as ros2_control's
JointTrajectoryController runs it: core/jtc.py's model updated at every physics step, 500 Hz, with the
measured positions and velocities as its state interfaces and `positions_upsampling` on: a
positions-only message of several points, the policy's chunk with bypass_executor, gets its cubic
spline's velocities; `~/commanded` (JointState) carries its last command, positions and velocities,
stamped with that update's time, with every joint state; rejected messages are logged, and counted in
`/diagnostics` once a second: `trajectories_received`, `trajectories_rejected`, `last_rejection`, and
`command_speed_max_rad_s`, the largest change of a joint's command from one update to the next divided
by the time between them, since start, each reset excluded).
Episodes: `~/reset` (Trigger) starts the episode of parameter `episode_seed` and answers with its instruction;
`~/task` and `~/outcome` (std_msgs/String, latched) say what the episode asks and whether it is
running, succeeded or failed.

With parameter `robot_config` (a robot config's name or path): that robot built from its URDF
(`vla_ros.sim.urdf_robot`), with the config's joint names (joint_states, and the order and length of
`commands`) and one camera per config camera, published on the config's camera topic (a topic ending
in /compressed carries JPEG sensor_msgs/CompressedImage). Its episodes have a fixed instruction and
no success criterion: the outcome is `none`.

Time: the physics is advanced in slices of whole timesteps (4 ms), each as soon as the wall clock has
passed its end; the controller updates of a slice are at the ROS times of its steps, the last at the
slice's end.
"""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from vla_ros.core.images import encode_compressed
from vla_ros.core.jtc import NS, JtcModel
from vla_ros.nodes import conversions
from vla_ros.nodes.params import declare
from vla_ros.nodes.runner import run_node
from vla_ros.params import SIM
from vla_ros.sim.tabletop import JOINT_NAMES, TabletopSim

PHYSICS_SLICE_S = 0.004  # physics advanced in slices of whole timesteps this long, paced by the wall clock
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
        self.jtc: JtcModel | None = None  # controller joint_trajectory: the JTC model (made at each reset)
        self.jtc_received = 0  # trajectories received, rejected (validation or malformed), the last reason
        self.jtc_rejected = 0
        self.jtc_last_rejection = ""
        self.jtc_speed_max = 0.0  # rad/s: the largest change of a joint's command between two updates / their gap
        self.jtc_command: tuple[int, np.ndarray, np.ndarray] | None = None  # (update time ns, positions, velocities)
        if self.p["controller"] == "joint_trajectory":
            self.create_subscription(JointTrajectory, "commands", self._on_trajectory, 10)
            self.commanded_pub = self.create_publisher(JointState, "~/commanded", 10)
            self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
            self.create_timer(1.0, self._publish_diagnostics)
        else:
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

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        """controller joint_trajectory: JTC's subscription callback (validation; the newest valid message wins)."""
        now_ns = self.get_clock().now().nanoseconds
        self.jtc_received += 1
        try:
            trajectory = conversions.trajectory_message_to_timed(msg)
        except ValueError as exc:
            reason = str(exc)
        else:
            with self.lock:
                before = len(self.jtc.rejected)
                self.jtc.receive(trajectory, now_ns)
                reason = self.jtc.rejected[-1] if len(self.jtc.rejected) > before else None
        if reason is not None:
            self.jtc_rejected += 1
            self.jtc_last_rejection = reason
            self.get_logger().error(
                f"trajectory rejected ({self.jtc_rejected} so far): {reason}", throttle_duration_sec=2.0
            )

    def _publish_diagnostics(self) -> None:
        """controller joint_trajectory: what the controller received and rejected and its fastest command (all time)."""
        values = {
            "trajectories_received": self.jtc_received,
            "trajectories_rejected": self.jtc_rejected,
            "last_rejection": self.jtc_last_rejection,
            "command_speed_max_rad_s": f"{self.jtc_speed_max:.4f}",
        }
        stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(conversions.diagnostic_array(f"{self.get_name()}: controller", "ok", values, stamp))

    def _reset_episode(self, seed: int) -> str:
        with self.lock:
            task = self.sim.reset(seed)
            self.episode_start_s = self.sim.time_s
            if self.p["controller"] == "joint_trajectory":  # the controller (re)activated: it holds where the arm is
                step_hz = 1.0 / self.sim.model.opt.timestep
                self.jtc = JtcModel(
                    self.joint_names, self.sim.joint_positions(), update_rate_hz=step_hz, positions_upsampling=True
                )
                self.jtc_command = None  # the arm was moved: no step from the last episode's command
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
        step_s = float(self.sim.model.opt.timestep)
        steps = max(1, round(PHYSICS_SLICE_S / step_s))
        next_js = next_cam = deadline = time.monotonic()
        while not self._stop.is_set() and self.context.ok():
            deadline += steps * step_s
            delay = deadline - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -0.1:
                deadline = time.monotonic()  # fell far behind (e.g. CPU starved): drop the debt
            end_ns = self._ros_time_ns(deadline)  # the slice ends at its deadline: its steps' times precede it
            with self.lock:
                before = self.sim.outcome
                for k in range(steps):
                    if self.jtc is not None:
                        self._update_controller(end_ns - (steps - 1 - k) * int(round(step_s * NS)))
                    self.sim.advance(step_s)
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
                command = self.jtc_command  # (a reset may clear it meanwhile)
                if command is not None:
                    self._publish_commanded(*command)
            if now >= next_cam:
                next_cam = max(next_cam + cam_period, now)
                for cam, (pub, compressed) in self.image_pubs.items():
                    with self.lock:
                        rgb = self.sim.render(cam)
                    if compressed:
                        pub.publish(_compressed_msg(rgb, stamp, f"{cam}_camera"))
                    else:
                        pub.publish(conversions.rgb_to_image_msg(rgb, stamp, f"{cam}_camera"))

    def _ros_time_ns(self, monotonic_s: float) -> int:
        """The ROS time (ns) of a moment on the monotonic clock (seconds), at most this moment."""
        return self.get_clock().now().nanoseconds - int((time.monotonic() - monotonic_s) * NS)

    def _update_controller(self, t_ns: int) -> None:
        """JTC's update at t_ns (ROS time, after the last update's: one at or before it is left out) from the
        measured state; its command goes to the actuators."""
        last = self.jtc_command
        if last is not None and t_ns <= last[0]:
            return
        measured = (self.sim.joint_positions(), self.sim.joint_velocities(), None)
        positions, velocities, _ = self.jtc.update(t_ns, measured)
        self.sim.set_command(positions)
        if last is not None:
            speed = float(np.abs(positions - last[1]).max()) * NS / (t_ns - last[0])
            self.jtc_speed_max = max(self.jtc_speed_max, speed)
        self.jtc_command = (t_ns, positions, velocities)

    def _publish_commanded(self, t_ns: int, positions: np.ndarray, velocities: np.ndarray) -> None:
        """`~/commanded`: the controller's command written at the update of time t_ns (ROS time, ns)."""
        header = _header(JointState().header.stamp)
        header.stamp.sec, header.stamp.nanosec = divmod(t_ns, NS)
        msg = JointState(header=header, name=list(self.joint_names))
        msg.position, msg.velocity = positions.tolist(), velocities.tolist()
        self.commanded_pub.publish(msg)

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
