"""One episode of a bag as arrays on a fixed frame grid: what a LeRobotDataset stores per frame.

Topics come from the robot config (`RecordingTopics.from_robot_config`): its cameras' topics,
`joint_states`, `commands` (the executor's `output` kind), `action_chunk` and `instruction`
(remapped by the config's `topics:`), the sim's `~/task` and `~/outcome`, and the policy node's
`instruction` parameter (from `/parameter_events`). Relative names resolve in the root namespace.

The grid: frame k is at t_k = s0 + k / fps, where s0 is the stamp of the first frame of the first
camera once every camera, the joint states and the commands have started. Per frame:
- each camera: the frame whose stamp is nearest t_k (the latest one before t_k + 0.5 / fps);
- `observation.state`: the robot config's joints from the latest joint state stamped at or before t_k;
- `action`: the latest command received at or before t_k (joint positions in the config's order for
  `position_array`, `joint_trajectory`, `joint_state`; velocities for `joint_velocity`; the pose
  x y z qx qy qz qw or twist for Cartesian outputs; a `joint_trajectory_plan` sampled at t_k);
- `action.chunk` (H, D): the latest chunk received at or before t_k, its points in the config's
  joint order (joints the chunk lacks held at the state), padded with its last point to H;
  `action.chunk_time` (H,): each point's time relative to t_k (s); `action.chunk_length`: its real
  points (0 before the first chunk: the chunk is then the state, held);
- the task: the latest said at t_k of the instruction (topic or parameter) and the sim's task.
Stamps are header stamps where a message has a non-zero one (cameras, joint states), else the time
the recorder received it (commands, chunks, instructions).
"""

from __future__ import annotations

import bisect
import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vla_ros.recording.bag import BagError, BagMessage, QoS, read_bag

OUTCOMES = ("success", "failure", "interrupted", "unknown")
EPISODE_MARKER_TOPIC = "/vla_recorder/episode"  # std_msgs/String JSON the recorder writes last in each bag
COMMAND_NAMES = {"joint_velocity": "velocity"}
CARTESIAN_NAMES = {"pose": ("x", "y", "z", "qx", "qy", "qz", "qw"), "twist": ("vx", "vy", "vz", "wx", "wy", "wz")}


def _absolute(topic: str) -> str:
    return topic if topic.startswith("/") else "/" + topic


@dataclass(frozen=True)
class RecordingTopics:
    """What to record and where a LeRobotDataset's features come from, by absolute topic name."""

    robot: str
    joint_names: tuple[str, ...]
    cameras: dict[str, str]  # camera -> topic
    joint_states: str = "/joint_states"
    commands: str = "/commands"
    command_kind: str = "position_array"  # the executor's `output`
    action_chunk: str = "/action_chunk"
    instruction: str = "/instruction"
    outcome: str = "/vla_sim_robot/outcome"  # "" = none (operator services only)
    task: str = "/vla_sim_robot/task"
    policy_node: str = "/vla_policy"  # whose `instruction` parameter is the task
    extra: dict[str, str] = field(default_factory=dict)  # topic -> type, recorded only (diagnostics, status)

    @classmethod
    def from_robot_config(
        cls, robot, outcome: str | None = None, task: str | None = None, executor_output: str = ""
    ) -> RecordingTopics:
        """From a robot config (name, path or RobotConfig); `outcome`/`task` override the sim's topics,
        `executor_output` the config's executor `output` (the type and meaning of `commands`)."""
        from vla_ros.config import RobotConfig, load_robot_config
        from vla_ros.launch_description import executor_parameters

        cfg = robot if isinstance(robot, RobotConfig) else load_robot_config(robot)

        def topic(name: str) -> str:
            return _absolute(cfg.topics.get(name, name))

        output = executor_output or executor_parameters(cfg).get("output", "position_array")
        return cls(
            robot=cfg.name,
            joint_names=tuple(cfg.joint_names),
            cameras={c.name: _absolute(c.topic) for c in cfg.cameras},
            joint_states=topic("joint_states"),
            commands=_absolute("dry_run/commands") if cfg.executor.get("dry_run") else topic("commands"),
            command_kind=output,
            action_chunk=topic("action_chunk"),
            instruction=topic("instruction"),
            outcome="/vla_sim_robot/outcome" if outcome is None else outcome,
            task="/vla_sim_robot/task" if task is None else task,
            extra={
                "/diagnostics": "diagnostic_msgs/msg/DiagnosticArray",
                "/vla_chunk_executor/status": "diagnostic_msgs/msg/DiagnosticStatus",
                _absolute("plan_prefix"): "trajectory_msgs/msg/JointTrajectory",
            },
        )

    def command_type(self) -> str:
        return {
            "position_array": "std_msgs/msg/Float64MultiArray",
            "joint_velocity": "std_msgs/msg/Float64MultiArray",
            "joint_trajectory": "trajectory_msgs/msg/JointTrajectory",
            "joint_trajectory_plan": "trajectory_msgs/msg/JointTrajectory",
            "joint_state": "sensor_msgs/msg/JointState",
            "pose": "geometry_msgs/msg/PoseStamped",
            "twist": "geometry_msgs/msg/TwistStamped",
        }[self.command_kind]

    def action_names(self) -> list[str]:
        if self.command_kind in CARTESIAN_NAMES:
            return list(CARTESIAN_NAMES[self.command_kind])
        suffix = COMMAND_NAMES.get(self.command_kind)
        return [f"{j}.{suffix}" if suffix else j for j in self.joint_names]

    def subscriptions(self) -> list[tuple[str, str, QoS, bool]]:
        """(topic, type, QoS, is_frame) of everything the recorder subscribes to (parameter events aside)."""
        image = {True: "sensor_msgs/msg/CompressedImage", False: "sensor_msgs/msg/Image"}
        subs = [(t, image[t.endswith("/compressed")], QoS(False, depth=5), True) for t in self.cameras.values()]
        subs += [
            (self.joint_states, "sensor_msgs/msg/JointState", QoS(), False),
            (self.commands, self.command_type(), QoS(), False),
            (self.action_chunk, "trajectory_msgs/msg/JointTrajectory", QoS(), False),
            (self.instruction, "std_msgs/msg/String", QoS(), False),
        ]
        latched = QoS(transient_local=True, depth=1)
        subs += [(t, "std_msgs/msg/String", latched, False) for t in (self.outcome, self.task) if t]
        subs += [(t, ty, QoS(), False) for t, ty in self.extra.items()]
        return subs


# --- message fields -----------------------------------------------------------------------------


def _stamp_ns(msg, fallback_ns: int) -> int:
    header = getattr(msg, "header", None)
    if header is None:
        return fallback_ns
    ns = int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)
    return ns or fallback_ns


def decode_frame(msg, type_name: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a sensor_msgs/Image or CompressedImage as decoded from a bag."""
    from vla_ros.core import images

    if type_name.endswith("CompressedImage"):
        return images.decode_compressed(bytes(msg.data), msg.format)
    return images.image_msg_fields_to_rgb8(
        bytes(msg.data), msg.height, msg.width, msg.encoding, msg.step, msg.is_bigendian, copy=True
    )


def _by_name(names, values, wanted: tuple[str, ...], what: str) -> np.ndarray:
    index = {n: i for i, n in enumerate(names)}
    missing = [j for j in wanted if j not in index]
    if missing:
        raise BagError(f"{what} lacks joints {missing} (has {list(names)})")
    return np.array([values[index[j]] for j in wanted], dtype=np.float64)


def _duration_s(d) -> float:
    return int(d.sec) + int(d.nanosec) * 1e-9


def _command_vector(msg, topics: RecordingTopics, t_ns: int) -> np.ndarray:
    kind, joints = topics.command_kind, topics.joint_names
    if kind in ("position_array", "joint_velocity"):
        if len(msg.data) != len(joints):
            raise BagError(f"{topics.commands}: {len(msg.data)} values for {len(joints)} joints")
        return np.asarray(msg.data, dtype=np.float64)
    if kind == "joint_state":
        return _by_name(msg.name, msg.position, joints, topics.commands)
    if kind == "joint_trajectory":
        return _by_name(msg.joint_names, msg.points[0].positions, joints, topics.commands)
    if kind == "joint_trajectory_plan":  # the plan sampled at t (linear between its points)
        t0 = _stamp_ns(msg, 0) * 1e-9
        times = np.array([t0 + _duration_s(p.time_from_start) for p in msg.points])
        q = np.array([_by_name(msg.joint_names, p.positions, joints, topics.commands) for p in msg.points])
        return np.array([np.interp(t_ns * 1e-9, times, q[:, j]) for j in range(len(joints))])
    if kind == "pose":
        p, o = msg.pose.position, msg.pose.orientation
        return np.array([p.x, p.y, p.z, o.x, o.y, o.z, o.w])
    if kind == "twist":
        v, w = msg.twist.linear, msg.twist.angular
        return np.array([v.x, v.y, v.z, w.x, w.y, w.z])
    raise BagError(f"command kind {kind!r} is not recorded as an action")


# --- episodes in a bag --------------------------------------------------------------------------


@dataclass(frozen=True)
class EpisodeSpan:
    start_ns: int
    end_ns: int
    outcome: str
    info: dict = field(default_factory=dict)  # the recorder's marker, when the bag has one


def episode_spans(messages: list[BagMessage], topics: RecordingTopics) -> list[EpisodeSpan]:
    """Episodes of a bag: the recorder's markers if it has them, else the outcome topic's runs
    (`running`/`none` starts one; `success`/`failure` ends it; a new start or the bag's end
    interrupts it), else the whole bag with outcome `unknown`."""
    if not messages:
        return []
    first, last = messages[0].log_time_ns, messages[-1].log_time_ns
    markers = [m for m in messages if m.topic == EPISODE_MARKER_TOPIC]
    if markers:
        spans = []
        for m in markers:
            info = json.loads(m.message.data)
            spans.append(EpisodeSpan(int(info["start_ns"]), int(info["end_ns"]), info["outcome"], info))
        return spans
    outcomes = [(m.log_time_ns, m.message.data) for m in messages if topics.outcome and m.topic == topics.outcome]
    if not outcomes:
        return [EpisodeSpan(first, last, "unknown")]
    spans, start = [], None
    for t, value in outcomes:
        if value in ("running", "none"):
            if start is not None:
                spans.append(EpisodeSpan(start, t, "interrupted"))
            start = t
        elif value in ("success", "failure"):
            if start is None and not spans:
                start = first  # the bag began inside the episode
            if start is not None:
                spans.append(EpisodeSpan(start, t, value))
            start = None
    if start is not None:
        spans.append(EpisodeSpan(start, last, "interrupted"))
    return [s for s in spans if s.end_ns > s.start_ns]


@dataclass
class Episode:
    """One episode on the frame grid (module docstring); camera frames are read from the bag on demand."""

    bag: Path
    topics: RecordingTopics
    fps: float
    outcome: str
    grid_ns: np.ndarray  # (N,) int64: t_k
    state: np.ndarray  # (N, D) float32
    action: np.ndarray  # (N, A) float32
    chunk: np.ndarray | None  # (N, H, D) float32
    chunk_time: np.ndarray | None  # (N, H) float32
    chunk_length: np.ndarray | None  # (N,) int64
    tasks: list[str]
    frame_sizes: dict[str, tuple[int, int]]  # camera -> (H, W)
    frame_source: dict[str, np.ndarray]  # camera -> (N,) index into that camera's messages of the span
    span: EpisodeSpan
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.grid_ns)

    @property
    def timestamps(self) -> np.ndarray:
        return (np.arange(len(self)) / self.fps).astype(np.float32)

    def frames(self) -> Iterator[dict[str, np.ndarray]]:
        """{camera: (H, W, 3) uint8} per grid frame, in order, decoded from a second pass over the bag
        (only the frames the grid picked; each held until every camera has passed it)."""
        by_topic = {t: c for c, t in self.topics.cameras.items()}
        needed = {c: set(s.tolist()) for c, s in self.frame_source.items()}
        pending: dict[str, dict[int, np.ndarray]] = {c: {} for c in by_topic.values()}
        seen = dict.fromkeys(by_topic.values(), -1)
        k, n = 0, len(self)
        for m in read_bag(self.bag, by_topic):
            if not self.span.start_ns <= m.log_time_ns <= self.span.end_ns:
                continue
            cam = by_topic[m.topic]
            seen[cam] += 1
            if seen[cam] in needed[cam]:
                pending[cam][seen[cam]] = decode_frame(m.message, m.type_name)
            while k < n and all(int(s[k]) in pending[c] for c, s in self.frame_source.items()):
                yield {c: pending[c][int(s[k])] for c, s in self.frame_source.items()}
                k += 1
                for c, s in self.frame_source.items():
                    if k < n:
                        for i in [i for i in pending[c] if i < s[k]]:
                            del pending[c][i]
            if k == n:
                return
        if k < n:
            raise BagError(f"{self.bag}: the second pass found frames for {k} of {n} grid times")


def load_episodes(
    bag: str | Path, topics: RecordingTopics, fps: float, horizon: int | None = None, default_task: str = ""
) -> list[Episode]:
    """Every episode of `bag` on a grid at `fps`; `horizon`: the chunk length to pad/truncate to
    (None: the first chunk's; 0: no chunk feature)."""
    bag = Path(bag)
    cams = {t: c for c, t in topics.cameras.items()}
    wanted = {*cams, topics.joint_states, topics.commands, topics.action_chunk, topics.instruction}
    wanted |= {t for t in (topics.outcome, topics.task, "/parameter_events", EPISODE_MARKER_TOPIC) if t}
    messages = list(_light_messages(bag, wanted, cams))
    topics = with_bag_command_kind(topics, messages)
    episodes = []
    for span in episode_spans(messages, topics):
        ep = _build(bag, topics, fps, horizon, default_task, span, messages, cams)
        if ep is not None:
            horizon = ep.chunk.shape[1] if ep.chunk is not None else horizon
            episodes.append(ep)
    return episodes


COMMAND_KIND_OF_TYPE = {  # the command kind a bag's `commands` type is read as when it is not the configured one
    "trajectory_msgs/msg/JointTrajectory": "joint_trajectory_plan",  # a one-point trajectory: that point
    "std_msgs/msg/Float64MultiArray": "position_array",
    "sensor_msgs/msg/JointState": "joint_state",
    "geometry_msgs/msg/PoseStamped": "pose",
    "geometry_msgs/msg/TwistStamped": "twist",
}


def with_bag_command_kind(topics: RecordingTopics, messages: list[BagMessage]) -> RecordingTopics:
    """`topics` with the command kind of the bag's `commands` type where the configured kind has another type
    (a bag recorded with the executor's `output` set other than in the robot config)."""
    type_name = next((m.type_name for m in messages if m.topic == topics.commands), None)
    if type_name is None or type_name == topics.command_type() or type_name not in COMMAND_KIND_OF_TYPE:
        return topics
    return dataclasses.replace(topics, command_kind=COMMAND_KIND_OF_TYPE[type_name])


def _light_messages(bag: Path, wanted: set[str], cams: dict[str, str]) -> Iterator[BagMessage]:
    """The bag's messages of `wanted`, camera frames reduced to (stamp, size): the pixels are read later."""
    for m in read_bag(bag, wanted):
        if m.topic in cams:
            size = (
                decode_frame(m.message, m.type_name).shape[:2]
                if m.type_name.endswith("CompressedImage")
                else (int(m.message.height), int(m.message.width))
            )
            frame = (_stamp_ns(m.message, m.log_time_ns), size)
            yield BagMessage(m.topic, m.type_name, m.log_time_ns, m.publish_time_ns, frame)
        else:
            yield m


def _build(bag, topics, fps, horizon, default_task, span, messages, cams) -> Episode | None:
    inside = [m for m in messages if span.start_ns <= m.log_time_ns <= span.end_ns]
    frames = {c: [m.message for m in inside if m.topic == t] for t, c in cams.items()}  # (stamp, size)
    joints = [(_stamp_ns(m.message, m.log_time_ns), m.message) for m in inside if m.topic == topics.joint_states]
    commands = [(m.log_time_ns, m.message) for m in inside if m.topic == topics.commands]
    chunks = [(m.log_time_ns, m.message) for m in inside if m.topic == topics.action_chunk]
    if not commands or not joints or any(not f for f in frames.values()):
        return None  # nothing was commanded (or a sensor never spoke): no frame to make
    for c, f in frames.items():
        sizes = {s for _, s in f}
        if len(sizes) > 1:
            raise BagError(f"{bag}: camera {c} changes size within an episode: {sorted(sizes)}")
    begin = max(frames[c][0][0] for c in frames)
    begin = max(begin, joints[0][0], commands[0][0])
    primary = [t for t, _ in frames[next(iter(topics.cameras))] if t >= begin]
    if not primary:
        return None
    period_ns = int(round(1e9 / fps))
    n = int((span.end_ns - primary[0]) // period_ns) + 1
    grid = primary[0] + period_ns * np.arange(n, dtype=np.int64)
    source = {}
    for c, f in frames.items():
        stamps = [t for t, _ in f]
        source[c] = np.array([bisect.bisect_right(stamps, t + period_ns // 2) - 1 for t in grid])
    if n <= 0:
        return None

    def latest(series, t):
        i = bisect.bisect_right([s for s, _ in series], t) - 1
        return series[i][1] if i >= 0 else None

    joint_stamps = [s for s, _ in joints]
    command_stamps = [s for s, _ in commands]
    state = np.empty((n, len(topics.joint_names)), np.float32)
    action = np.empty((n, len(topics.action_names())), np.float32)
    for k, t in enumerate(grid):
        js = joints[max(0, bisect.bisect_right(joint_stamps, t) - 1)][1]
        state[k] = _by_name(js.name, js.position, topics.joint_names, topics.joint_states)
        cmd = commands[max(0, bisect.bisect_right(command_stamps, t) - 1)][1]
        action[k] = _command_vector(cmd, topics, int(t))
    chunk = chunk_time = chunk_length = None
    if horizon is None:
        horizon = max((len(m.points) for _, m in chunks), default=0)
    if horizon:
        chunk, chunk_time, chunk_length = _chunks(chunks, grid, state, topics, horizon)
    tasks = _tasks(messages, topics, grid, default_task)
    return Episode(
        bag=bag,
        topics=topics,
        fps=fps,
        outcome=span.outcome,
        grid_ns=grid,
        state=state,
        action=action,
        chunk=chunk,
        chunk_time=chunk_time,
        chunk_length=chunk_length,
        tasks=tasks,
        frame_sizes={c: f[0][1] for c, f in frames.items()},
        frame_source=source,
        span=span,
        info=dict(span.info),
    )


def _chunks(chunks, grid, state, topics: RecordingTopics, horizon: int):
    n, d = len(grid), len(topics.joint_names)
    out = np.repeat(state[:, None, :], horizon, axis=1).astype(np.float32)
    times = np.zeros((n, horizon), np.float32)
    lengths = np.zeros(n, np.int64)
    stamps = [t for t, _ in chunks]
    for k, t in enumerate(grid):
        i = bisect.bisect_right(stamps, t) - 1
        if i < 0 or not chunks[i][1].points:
            continue
        msg = chunks[i][1]
        index = {name: j for j, name in enumerate(msg.joint_names)}
        pts = msg.points[:horizon]
        t0 = _stamp_ns(msg, chunks[i][0])
        for h, p in enumerate(pts):
            for j in range(d):
                name = topics.joint_names[j]
                if name in index:
                    out[k, h, j] = p.positions[index[name]]
            times[k, h] = (t0 + _duration_s(p.time_from_start) * 1e9 - t) * 1e-9
        out[k, len(pts) :] = out[k, len(pts) - 1]
        times[k, len(pts) :] = times[k, len(pts) - 1]
        lengths[k] = len(pts)
    return out, times, lengths


def _tasks(messages: list[BagMessage], topics: RecordingTopics, grid: np.ndarray, default_task: str) -> list[str]:
    """The task at each grid time: the latest said of the instruction (topic or the policy's parameter) and the
    sim's task (an episode's new task replaces the previous episode's instruction), else `default_task`."""
    said = []  # (receive time ns, text)
    for m in messages:
        if m.topic == topics.instruction or (topics.task and m.topic == topics.task):
            said.append((m.log_time_ns, m.message.data))
        elif m.topic == "/parameter_events" and m.message.node == topics.policy_node:
            for p in [*m.message.new_parameters, *m.message.changed_parameters]:
                if p.name == "instruction":
                    said.append((m.log_time_ns, p.value.string_value))
    said.sort(key=lambda s: s[0])  # stable: callback order within a receive time
    out = []
    for t in grid:
        latest = [v for s, v in said if s <= t and v]
        out.append(latest[-1] if latest else default_task)
    if not all(out):
        raise BagError(
            f"no instruction for some frames (topics {topics.instruction}, {topics.task}, parameter events of "
            f"{topics.policy_node}): give a default task"
        )
    return out
