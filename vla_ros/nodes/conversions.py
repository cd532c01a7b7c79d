"""The one place that knows both ROS messages and core types."""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Duration, Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped, TwistStamped
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from vla_ros.core import images
from vla_ros.core.jtc import NS, TimedTrajectory
from vla_ros.core.types import ActionChunk, PlanPrefix

COMMAND_TYPES = {
    "position_array": Float64MultiArray,
    "joint_trajectory": JointTrajectory,
    "joint_trajectory_plan": JointTrajectory,
    "joint_velocity": Float64MultiArray,
    "joint_state": JointState,
    "pose": PoseStamped,
    "twist": TwistStamped,
}

try:  # ROS's cv_bridge where a ROS install provides it; the built-in conversion otherwise
    from cv_bridge import CvBridge

    _BRIDGE = CvBridge()
except ImportError:
    _BRIDGE = None


def stamp_to_s(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def s_to_stamp(t_s: float) -> Time:
    sec = int(np.floor(t_s))
    return Time(sec=sec, nanosec=min(int(round((t_s - sec) * 1e9)), 999_999_999))


def s_to_duration(t_s: float) -> Duration:
    sec = int(np.floor(t_s))
    return Duration(sec=sec, nanosec=min(int(round((t_s - sec) * 1e9)), 999_999_999))


def image_msg_to_rgb(msg: Image) -> np.ndarray:
    """(H, W, 3) uint8 RGB; raises images.ImageFormatError on a malformed image.

    An rgb8 frame is a read-only view of the received message's buffer (rclpy hands every
    callback a message of its own): no copy; other encodings are converted once.
    """
    if _BRIDGE is not None and msg.encoding in ("rgb8", "bgr8", "rgba8", "bgra8", "mono8"):
        return _BRIDGE.imgmsg_to_cv2(msg, desired_encoding="rgb8")
    return images.image_msg_fields_to_rgb8(
        msg.data, msg.height, msg.width, msg.encoding, msg.step, msg.is_bigendian, copy=False
    )


def compressed_msg_to_rgb(msg: CompressedImage) -> np.ndarray:
    return images.decode_compressed(msg.data, msg.format)


def rgb_to_image_msg(rgb: np.ndarray, stamp: Time, frame_id: str) -> Image:
    fields = images.encode_image(rgb, "rgb8")
    msg = Image(height=fields["height"], width=fields["width"], encoding="rgb8", is_bigendian=0, step=fields["step"])
    msg.data = fields["data"]
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    return msg


def trajectory_points(positions: np.ndarray, offsets_s: np.ndarray) -> list[JointTrajectoryPoint]:
    """JointTrajectoryPoints of positions (N, D) at time_from_start offsets_s (N,) seconds (rounded to 1 ns).

    The offsets are split into sec / nanosec in one vectorised step and each point's fields are
    set from plain lists (half the time of building them value by value: a 50-point chunk is
    published on every inference).
    """
    sec, nanosec = np.divmod(np.round(np.asarray(offsets_s, dtype=float) * 1e9).astype(np.int64), 1_000_000_000)
    points = []
    for row, s, ns in zip(np.asarray(positions, dtype=float).tolist(), sec.tolist(), nanosec.tolist()):
        point = JointTrajectoryPoint()
        point.positions = row
        point.time_from_start.sec, point.time_from_start.nanosec = s, ns
        points.append(point)
    return points


def chunk_to_trajectory(chunk: ActionChunk) -> JointTrajectory:
    """header.stamp = observation stamp; point i at time_from_start = (i + 1) * dt."""
    msg = JointTrajectory(joint_names=list(chunk.joint_names))
    msg.header.stamp = s_to_stamp(chunk.t0_s)
    msg.points = trajectory_points(chunk.positions, chunk.times_s() - chunk.t0_s)
    return msg


class ChunkMessageWriter:
    """`chunk_to_trajectory` into one reused message: while joint names and point times stay the same
    (every chunk of a backend), only the stamp and the positions are written, no new points built.
    The message is valid until the next call: publish it (rclpy copies it at publish()) before."""

    def __init__(self):
        self._msg: JointTrajectory | None = None
        self._layout: tuple | None = None  # (joint names, point offsets in ns) of the message held

    def message(self, chunk: ActionChunk) -> JointTrajectory:
        offsets_ns = np.round((chunk.times_s() - chunk.t0_s) * 1e9).astype(np.int64)
        layout = (tuple(chunk.joint_names), offsets_ns.tobytes())
        if layout != self._layout:
            self._msg, self._layout = chunk_to_trajectory(chunk), layout
            return self._msg
        self._msg.header.stamp = s_to_stamp(chunk.t0_s)
        for point, row in zip(self._msg.points, np.asarray(chunk.positions, dtype=float).tolist()):
            point.positions = row
        return self._msg


def command_message(
    kind: str,
    names: tuple[str, ...],
    positions: np.ndarray,
    stamp: Time,
    period_s: float,
    velocities: np.ndarray | None = None,
):
    """A command as the `output` kind: position_array, joint_velocity (the `velocities`), joint_trajectory
    or joint_state."""
    if kind == "position_array":
        return Float64MultiArray(data=positions.tolist())
    if kind == "joint_velocity":
        return Float64MultiArray(data=np.asarray(velocities, dtype=float).tolist())
    if kind == "joint_trajectory":
        msg = JointTrajectory(joint_names=list(names))
        msg.header.stamp = stamp
        msg.points = [JointTrajectoryPoint(positions=positions.tolist(), time_from_start=s_to_duration(period_s))]
        return msg
    if kind == "joint_state":
        msg = JointState(name=list(names), position=positions.tolist())
        msg.header.stamp = stamp
        return msg
    raise ValueError(f"unknown output '{kind}' (one of {list(COMMAND_TYPES)})")


def timed_trajectory_message(trajectory: TimedTrajectory) -> JointTrajectory:
    """A TimedTrajectory (core/jtc.py: stamp and time_from_start in ns; positions, velocities,
    accelerations) as a JointTrajectory; the fields of each point set from plain lists."""
    msg = JointTrajectory(joint_names=list(trajectory.joint_names))
    sec, nanosec = divmod(int(trajectory.stamp_ns), NS)
    msg.header.stamp.sec, msg.header.stamp.nanosec = sec, nanosec
    secs, nanosecs = np.divmod(np.asarray(trajectory.offsets_ns, dtype=np.int64), NS)
    fields = [trajectory.positions.tolist()]
    for extra in (trajectory.velocities, trajectory.accelerations):
        fields.append(None if extra is None else extra.tolist())
    points = []
    for i, (s, ns) in enumerate(zip(secs.tolist(), nanosecs.tolist())):
        point = JointTrajectoryPoint()
        point.positions = fields[0][i]
        if fields[1] is not None:
            point.velocities = fields[1][i]
        if fields[2] is not None:
            point.accelerations = fields[2][i]
        point.time_from_start.sec, point.time_from_start.nanosec = s, ns
        points.append(point)
    msg.points = points
    return msg


def trajectory_message_to_timed(msg: JointTrajectory) -> TimedTrajectory:
    """A received JointTrajectory as a TimedTrajectory (velocities / accelerations None when the points
    carry none); ValueError for ragged points."""
    names = tuple(msg.joint_names)
    offsets = np.array([p.time_from_start.sec * NS + p.time_from_start.nanosec for p in msg.points], dtype=np.int64)

    def field(name: str, optional: bool) -> np.ndarray | None:
        rows = [list(getattr(p, name)) for p in msg.points]
        if optional and all(len(r) == 0 for r in rows):
            return None
        if any(len(r) != len(names) for r in rows):
            raise ValueError(f"trajectory points have {name} of another size than its {len(names)} joints")
        return np.array(rows, dtype=float).reshape(len(rows), len(names))

    stamp = msg.header.stamp.sec * NS + msg.header.stamp.nanosec
    return TimedTrajectory(
        stamp, names, offsets, field("positions", False), field("velocities", True), field("accelerations", True)
    )


def pose_message(position: np.ndarray, quat_xyzw: np.ndarray, frame_id: str, stamp: Time) -> PoseStamped:
    """PoseStamped of a position (3,) metres and quaternion (4,) x, y, z, w in `frame_id`."""
    msg = PoseStamped()
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in position)
    o = msg.pose.orientation
    o.x, o.y, o.z, o.w = (float(v) for v in quat_xyzw)
    return msg


def twist_message(twist: np.ndarray, frame_id: str, stamp: Time) -> TwistStamped:
    """TwistStamped (MoveIt Servo's command) of (6,) linear m/s and angular rad/s in `frame_id`."""
    msg = TwistStamped()
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = (float(v) for v in twist[:3])
    msg.twist.angular.x, msg.twist.angular.y, msg.twist.angular.z = (float(v) for v in twist[3:])
    return msg


def diagnostic_status(name: str, message: str, values: dict, ok: bool = True) -> DiagnosticStatus:
    """A DiagnosticStatus (OK or WARN) with `values` as key/value strings."""
    status = DiagnosticStatus(
        level=DiagnosticStatus.OK if ok else DiagnosticStatus.WARN, name=name, message=message, hardware_id="vla_ros"
    )
    status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
    return status


def diagnostic_array(name: str, message: str, values: dict, stamp: Time, ok: bool = True) -> DiagnosticArray:
    """/diagnostics message holding one `diagnostic_status`."""
    msg = DiagnosticArray(status=[diagnostic_status(name, message, values, ok)])
    msg.header.stamp = stamp
    return msg


def plan_to_trajectory(names: tuple[str, ...], times_s: np.ndarray, positions: np.ndarray) -> JointTrajectory:
    """The executor's plan ahead: header.stamp = times_s[0], points at their offsets from it."""
    msg = JointTrajectory(joint_names=list(names))
    msg.header.stamp = s_to_stamp(float(times_s[0]))
    msg.points = trajectory_points(positions, np.asarray(times_s, dtype=float) - float(times_s[0]))
    return msg


def trajectory_to_prefix(msg: JointTrajectory, joint_names: tuple[str, ...], committed_until_s: float) -> PlanPrefix:
    """A `plan_prefix` message as a PlanPrefix in `joint_names` order (ValueError if it does not fit)."""
    chunk = trajectory_to_chunk(msg, 0.0)
    return PlanPrefix(chunk.times_s(), chunk.positions, chunk.joint_names, committed_until_s).in_joint_order(
        tuple(joint_names)
    )


def trajectory_end_s(msg: JointTrajectory) -> float:
    """Absolute time (seconds) of a stamped trajectory's last point (its stamp if it has none)."""
    last = msg.points[-1].time_from_start if msg.points else None
    return stamp_to_s(msg.header.stamp) + (last.sec + last.nanosec * 1e-9 if last is not None else 0.0)


def trajectory_to_chunk(msg: JointTrajectory, now_s: float) -> ActionChunk:
    """ActionChunk with explicit offsets; a zero header stamp means "now" (JTC semantics).

    Raises ValueError for ragged points, a joint-name/position size mismatch or non-increasing times.
    """
    names = tuple(msg.joint_names)
    if len(set(names)) != len(names):
        raise ValueError(f"trajectory has duplicate joint names {list(names)}")
    rows = []
    for i, p in enumerate(msg.points):
        if len(p.positions) != len(names):
            raise ValueError(f"trajectory point {i} has {len(p.positions)} positions for {len(names)} joints")
        rows.append(np.asarray(p.positions, dtype=float))
    if not rows:
        raise ValueError("trajectory has no points")
    offsets = np.array([p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points])
    t0 = stamp_to_s(msg.header.stamp) or now_s
    dt = float(offsets[0]) if offsets[0] > 0 else 1.0
    return ActionChunk(t0, dt, names, np.vstack(rows), offsets_s=offsets)


def writer_id(info) -> str | None:
    """A short id of the publisher of a received message, from rclpy's MessageInfo (None if unknown)."""
    gid = (info or {}).get("publisher_gid")
    data = gid.get("data") if isinstance(gid, dict) else gid
    return None if data is None else "publisher " + bytes(data).hex()
