"""ROS messages of a run -> rerun entities, the same for a live run and a recorded bag.

Entities (timeline `time`: the message's header stamp, else its receive time, in seconds):
    cameras/<camera>                      rr.Image per frame
    joints/<joint>/measured               joint_states positions
    joints/<joint>/commanded              the executor's commands (joint outputs)
    joints/<joint>/planned                each chunk's points at the times they are due
    limit_margin/<joint>                  distance of the command to the nearer position limit (rad)
    executor/state                        rr.TextLog on every change (tracking, holding, stopping, estop, ...)
    executor/estop                        1 while the executor is in e-stop, else 0
    latency/<node>/<value>                the `*_ms` values of the nodes' /diagnostics (frame->chunk, inference,
                                          tick lateness, ...)
    task, outcome                         rr.TextLog of the instruction / the sim's task and the episode outcome
Messages are the decoded objects of rclpy or of mcap-ros2-support (the same attribute names).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vla_ros.recording.episode import RecordingTopics, decode_frame, with_bag_command_kind

DIAGNOSTICS = "/diagnostics"
STATUS = "/vla_chunk_executor/status"
PARAMETER_EVENTS = "/parameter_events"


def _stamp_s(msg, fallback_s: float) -> float:
    header = getattr(msg, "header", None)
    if header is None:
        return fallback_s
    t = int(header.stamp.sec) + int(header.stamp.nanosec) * 1e-9
    return t or fallback_s


class RunLogger:
    """Logs one run's messages to a rerun RecordingStream (not thread-safe: rerun's time is per thread)."""

    def __init__(self, rec, topics: RecordingTopics, limits=None):
        self.rec = rec
        self.topics = topics
        self.limits = limits  # JointLimits of the robot config (limit margins), or None
        self.cameras = {t: c for c, t in topics.cameras.items()}
        self._state = None
        self.logged: dict[str, int] = {}
        rec.send_blueprint(blueprint(topics))

    def _log(self, path: str, t_s: float, value) -> None:
        self.rec.set_time("time", timestamp=t_s)
        self.rec.log(path, value)
        self.logged[path] = self.logged.get(path, 0) + 1

    def _scalar(self, path: str, t_s: float, value: float) -> None:
        import rerun as rr

        self._log(path, t_s, rr.Scalars(float(value)))

    def message(self, topic: str, type_name: str, recv_s: float, msg) -> None:
        import rerun as rr

        t = _stamp_s(msg, recv_s)
        top = self.topics
        if topic in self.cameras:
            self._log(f"cameras/{self.cameras[topic]}", t, rr.Image(decode_frame(msg, type_name)))
        elif topic == top.joint_states:
            index = {n: i for i, n in enumerate(msg.name)}
            for j in top.joint_names:
                if j in index and index[j] < len(msg.position):
                    self._scalar(f"joints/{j}/measured", t, msg.position[index[j]])
        elif topic == top.commands:
            self._command(msg, recv_s)
        elif topic == top.action_chunk:
            t0 = _stamp_s(msg, recv_s)
            index = {n: i for i, n in enumerate(msg.joint_names)}
            for p in msg.points:
                due = t0 + int(p.time_from_start.sec) + int(p.time_from_start.nanosec) * 1e-9
                for j in top.joint_names:
                    if j in index:
                        self._scalar(f"joints/{j}/planned", due, p.positions[index[j]])
        elif topic == STATUS:
            self._status(msg.message, recv_s)
        elif topic == DIAGNOSTICS:
            for status in msg.status:
                node = status.name.split(":")[0].strip("/ ") or "node"
                for kv in status.values:
                    if kv.key.endswith("_ms"):
                        try:
                            self._scalar(f"latency/{node}/{kv.key}", t, float(kv.value))
                        except ValueError:
                            pass
                if "executor" in status.name:
                    self._status(status.message, t)
        elif topic in (top.instruction, top.task):
            self._log("task", recv_s, rr.TextLog(msg.data))
        elif topic == top.outcome:
            self._log("outcome", recv_s, rr.TextLog(msg.data))
        elif topic == PARAMETER_EVENTS and msg.node == top.policy_node:
            for p in [*msg.new_parameters, *msg.changed_parameters]:
                if p.name == "instruction":
                    self._log("task", recv_s, rr.TextLog(p.value.string_value))

    def _command(self, msg, recv_s: float) -> None:
        from vla_ros.recording.episode import _command_vector

        kind = self.topics.command_kind
        if kind in ("pose", "twist"):
            return  # Cartesian commands: not joint positions
        q = _command_vector(msg, self.topics, int(recv_s * 1e9))
        names = self.topics.joint_names
        for j, name in enumerate(names):
            self._scalar(f"joints/{name}/commanded", recv_s, q[j])
        if self.limits is not None and kind != "joint_velocity":
            lo, hi = np.asarray(self.limits.min_position), np.asarray(self.limits.max_position)
            margin = np.minimum(q - lo, hi - q)
            for j, name in enumerate(names):
                self._scalar(f"limit_margin/{name}", recv_s, margin[j])

    def _status(self, state: str, t: float) -> None:
        import rerun as rr

        if state and state != self._state:
            self._state = state
            self._log("executor/state", t, rr.TextLog(state))
            self._scalar("executor/estop", t, 1.0 if state == "estop" else 0.0)


def blueprint(topics: RecordingTopics):
    """The viewer's layout: cameras and the events log on the left; per joint, one plot of planned,
    commanded and measured positions; the limit margins, the executor's e-stop and the latencies."""
    import rerun.blueprint as rrb

    joints = [
        rrb.TimeSeriesView(
            origin=f"joints/{j}", contents=["$origin/planned", "$origin/commanded", "$origin/measured"], name=j
        )
        for j in topics.joint_names
    ]
    return rrb.Blueprint(
        rrb.Horizontal(
            rrb.Vertical(
                *[rrb.Spatial2DView(origin=f"cameras/{c}", name=c) for c in topics.cameras],
                rrb.TextLogView(origin="/", name="task, outcome, executor state"),
            ),
            rrb.Grid(*joints),
            rrb.Vertical(
                rrb.TimeSeriesView(origin="limit_margin", name="limit margins (rad)"),
                rrb.TimeSeriesView(origin="executor/estop", name="e-stop"),
                rrb.TimeSeriesView(origin="latency", name="latencies (ms)"),
            ),
            column_shares=[1, 3, 1],
        ),
        collapse_panels=True,
    )


def open_stream(target: str, application: str = "vla_ros"):
    """A RecordingStream to `target`: a path ending in .rrd (saved), a rerun gRPC address
    (rerun+http://host:port/proxy), or '' (spawn a local viewer)."""
    import rerun as rr

    rec = rr.RecordingStream(application)
    if target.endswith(".rrd"):
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        rec.save(target)
    elif target:
        rec.connect_grpc(target)
    else:
        rec.spawn()
    return rec


def bags_to_rrd(bags: list[Path], out: Path, robot: str = "sim") -> dict[str, int]:
    """Every message of the bags logged into `out` (.rrd); entity -> rows logged."""
    from vla_ros.config import load_robot_config
    from vla_ros.recording.bag import read_bag

    cfg = load_robot_config(robot)
    topics = RecordingTopics.from_robot_config(cfg)
    rec = open_stream(str(out), "vla_ros")
    logger = RunLogger(rec, topics, cfg.limits)
    for bag in bags:
        logger.topics = topics
        for m in read_bag(bag):
            if m.topic == topics.commands:  # the bag's command type decides its kind (recording/episode.py)
                logger.topics = with_bag_command_kind(topics, [m])
            logger.message(m.topic, m.type_name, m.log_time_ns * 1e-9, m.message)
    rec.flush()
    rec.disconnect()
    return logger.logged
