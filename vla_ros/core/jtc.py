"""ros2_controllers' JointTrajectoryController (JTC), modelled ROS-free: its trajectory interpolation
and what it does with a trajectory that arrives on `~/joint_trajectory`.

The executor's plan streaming (core/plan_stream.py) checks every plan it sends by sampling it the
way JTC does (`sample`, `spline_state`), and the tests run the whole model (`JtcModel`) at the
controller's rate against the executor's messages. Each rule cites the source it comes from
(ros-controls/ros2_controllers, branch kilted, `joint_trajectory_controller/src/`; docs/real-robots.md
lists them with what the executor relies on):

- `trajectory.cpp` `interpolate_between_points`: per segment a linear (positions only), cubic (+
  velocities) or quintic (+ accelerations) polynomial through the two waypoints, in the seconds since
  the first; sampled outside a segment it clamps to it and drops the derivatives (`spline_state`).
- `trajectory.cpp` `sample`: a header stamp of zero starts the trajectory at its first sample; before
  the first waypoint it interpolates from the state it had when the trajectory arrived (`before`);
  in segment i for t0 <= t < t1; after the last waypoint, that waypoint (velocities and
  accelerations zero-filled if absent). Times are integer nanoseconds (rclcpp::Time / Duration).
- `joint_trajectory_controller.cpp` `validate_trajectory_msg`: rejects no joint names, joints that
  are not the controller's (all of them unless partial goals are allowed), no points, a last point
  with a velocity above float epsilon (unless `allow_nonzero_velocity_at_trajectory_end`), a non-zero
  stamp whose last point is already in the past, time_from_start not strictly increasing, positions
  missing or of the wrong size, velocities / accelerations of the wrong size, efforts.
- `joint_trajectory_controller.cpp` `topic_callback` / `update`: the newest valid message wins; it
  replaces the running trajectory at the next update (no splicing in kilted); on its first sample
  the state before it is the measured state at that update (or, with
  `interpolate_from_desired_state`, the last command at its time) and the trajectory time restarts
  at the update's time; afterwards it advances by each update's period; the command written is the
  sample one update period ahead (`traj_time_ + update_period_`).
- On activation it holds the measured position (a one-point trajectory with a zero stamp).
- ros2_controllers master (August 2026, PR #2491; the InferenceBridgeController folded into JTC):
  `positions_upsampling` (`upsample_positions`): before validation, a message with positions only gets
  `time_from_start` (i + 1) / policy_frequency when all of its points have none, and the knot
  velocities of a global cubic spline at rest at both ends (`preprocess_incoming_trajectory`,
  `synthesize_timing`, trajectory.cpp `fill_cubic_spline_velocities`); a message with velocities or
  accelerations passes unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NS = 1_000_000_000
FLOAT_EPSILON = float(np.finfo(np.float32).eps)  # std::numeric_limits<float>::epsilon() in validate_trajectory_msg


def s_to_ns(t_s: float) -> int:
    """Seconds (a float, maybe ~1e9) to integer nanoseconds, exact to 0.5 ns of the float's value."""
    whole = int(np.floor(t_s))
    return whole * NS + int(round((t_s - whole) * NS))


@dataclass(frozen=True)
class TimedTrajectory:
    """A trajectory_msgs/JointTrajectory without ROS: header stamp and time_from_start in integer
    nanoseconds, positions (K, D), velocities and accelerations (K, D) or None (not sent)."""

    stamp_ns: int
    joint_names: tuple[str, ...]
    offsets_ns: np.ndarray  # (K,) int64 time_from_start
    positions: np.ndarray
    velocities: np.ndarray | None = None
    accelerations: np.ndarray | None = None

    @property
    def times_ns(self) -> np.ndarray:
        """(K,) absolute times of the points (the stamp must be non-zero)."""
        return self.stamp_ns + self.offsets_ns

    @property
    def end_ns(self) -> int:
        return int(self.stamp_ns + self.offsets_ns[-1])


def spline_state(
    t0_ns: int, a: tuple[np.ndarray, ...], t1_ns: int, b: tuple[np.ndarray, ...], t_ns: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """JTC's `interpolate_between_points` for waypoint states a at t0 and b at t1 (each (positions,
    velocities or None, accelerations or None), (D,) arrays) sampled at t: (positions, velocities,
    accelerations) (D,). Outside [t0, t1] the time is clamped and only the linear form is used."""
    p0, v0, a0 = a
    p1, v1, a1 = b
    so_far, between = (t_ns - t0_ns) / NS, (t1_ns - t0_ns) / NS
    has_v = v0 is not None and v1 is not None
    has_a = a0 is not None and a1 is not None
    if so_far < 0.0:
        so_far, has_v, has_a = 0.0, False, False
    if so_far > between:
        so_far, has_v, has_a = between, False, False
    zeros = np.zeros_like(p0)
    if not has_v and not has_a:
        c1 = (p1 - p0) / between if between != 0.0 else zeros
        return p0 + so_far * c1, c1.copy(), zeros
    t = so_far ** np.arange(6)
    if has_v and not has_a:
        T = between ** np.arange(4)
        c2 = (-3.0 * p0 + 3.0 * p1 - 2.0 * v0 * T[1] - v1 * T[1]) / T[2] if between != 0.0 else zeros
        c3 = (2.0 * p0 - 2.0 * p1 + v0 * T[1] + v1 * T[1]) / T[3] if between != 0.0 else zeros
        return (
            p0 + t[1] * v0 + t[2] * c2 + t[3] * c3,
            v0 + t[1] * 2.0 * c2 + t[2] * 3.0 * c3,
            2.0 * c2 + t[1] * 6.0 * c3,
        )
    if not has_v:  # accelerations without velocities: JTC has no rule (its `else if` chain ends)
        return zeros, zeros, zeros
    c = quintic_coefficients(p0, v0, a0, p1, v1, a1, between)
    return (
        c[0] + t[1] * c[1] + t[2] * c[2] + t[3] * c[3] + t[4] * c[4] + t[5] * c[5],
        c[1] + t[1] * 2.0 * c[2] + t[2] * 3.0 * c[3] + t[3] * 4.0 * c[4] + t[4] * 5.0 * c[5],
        2.0 * c[2] + t[1] * 6.0 * c[3] + t[2] * 12.0 * c[4] + t[3] * 20.0 * c[5],
    )


def quintic_coefficients(p0, v0, a0, p1, v1, a1, duration_s) -> tuple:
    """(c0, ..., c5) power-series coefficients (seconds since the first waypoint) of JTC's quintic
    segment between two waypoints, as trajectory.cpp computes them; arrays broadcast (a zero duration
    leaves c3..c5 zero, as JTC does)."""
    T1 = np.asarray(duration_s, dtype=float)
    T2, T3, T4, T5 = T1**2, T1**3, T1**4, T1**5
    with np.errstate(divide="ignore", invalid="ignore"):
        c3 = (-20.0 * p0 + 20.0 * p1 - 3.0 * a0 * T2 + a1 * T2 - 12.0 * v0 * T1 - 8.0 * v1 * T1) / (2.0 * T3)
        c4 = (30.0 * p0 - 30.0 * p1 + 3.0 * a0 * T2 - 2.0 * a1 * T2 + 16.0 * v0 * T1 + 14.0 * v1 * T1) / (2.0 * T4)
        c5 = (-12.0 * p0 + 12.0 * p1 - a0 * T2 + a1 * T2 - 6.0 * v0 * T1 - 6.0 * v1 * T1) / (2.0 * T5)
    zero = T1 == 0.0
    c3, c4, c5 = (np.where(zero, 0.0, c) for c in (c3, c4, c5))
    return p0, v0, 0.5 * np.asarray(a0), c3, c4, c5


def sample_quintic(trajectory: TimedTrajectory, times_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions, velocities, accelerations (S, D) of a trajectory with all three fields (and a
    non-zero stamp) at times_ns (S,), as JTC samples it between its first and last point (JTC's
    formulas, vectorised); before the first point: the first point; after the last: the last point."""
    knots = trajectory.times_ns
    p, v, a = trajectory.positions, trajectory.velocities, trajectory.accelerations
    times_ns = np.asarray(times_ns, dtype=np.int64)
    if len(knots) < 2:
        n = len(times_ns)
        return np.repeat(p[:1], n, 0), np.repeat(v[:1], n, 0), np.repeat(a[:1], n, 0)
    seg = np.clip(np.searchsorted(knots, times_ns, side="right") - 1, 0, len(knots) - 2)
    durations = (np.diff(knots) / NS)[seg, None]  # (S, 1): the segment's (t1 - t0).seconds()
    c0, c1, c2, c3, c4, c5 = quintic_coefficients(p[seg], v[seg], a[seg], p[seg + 1], v[seg + 1], a[seg + 1], durations)
    tau = np.clip((times_ns - knots[seg]) / NS, 0.0, durations[:, 0])[:, None]  # (S, 1)
    pos = c0 + tau * (c1 + tau * (c2 + tau * (c3 + tau * (c4 + tau * c5))))
    vel = c1 + tau * (2.0 * c2 + tau * (3.0 * c3 + tau * (4.0 * c4 + tau * 5.0 * c5)))
    acc = 2.0 * c2 + tau * (6.0 * c3 + tau * (12.0 * c4 + tau * 20.0 * c5))
    before, after = (times_ns < knots[0])[:, None], (times_ns >= knots[-1])[:, None]
    pos = np.where(before, p[0], np.where(after, p[-1], pos))
    vel = np.where(before, v[0], np.where(after, v[-1], vel))
    acc = np.where(before, a[0], np.where(after, a[-1], acc))
    return pos, vel, acc


def upsample_positions(trajectory: TimedTrajectory, policy_frequency_hz: float = 0.0) -> TimedTrajectory:
    """JTC's `positions_upsampling` (ros2_controllers master, `preprocess_incoming_trajectory`) on a received
    message: positions only -> timing synthesised when no point has any (and policy_frequency_hz > 0), then
    the velocities of the global cubic spline through the positions with zero velocity at the first and last
    point (its Thomas solve, per joint); with velocities or accelerations, fewer than two points or times not
    strictly increasing: unchanged."""
    if trajectory.velocities is not None or trajectory.accelerations is not None or len(trajectory.offsets_ns) == 0:
        return trajectory
    offsets = trajectory.offsets_ns
    if policy_frequency_hz > 0.0 and not offsets.any():
        dt_ns = np.round(np.arange(1, len(offsets) + 1) / policy_frequency_hz * NS)  # Duration::from_seconds
        offsets = dt_ns.astype(np.int64)
    n = len(offsets)
    times = offsets / NS
    if n < 2 or (np.diff(times) <= 0.0).any():
        return TimedTrajectory(trajectory.stamp_ns, trajectory.joint_names, offsets, trajectory.positions)
    p = trajectory.positions
    lower, diagonal, upper = np.zeros(n), np.ones(n), np.zeros(n)
    rhs = np.zeros_like(p)
    before, after = np.diff(times)[:-1], np.diff(times)[1:]  # durations around each interior knot
    lower[1:-1], upper[1:-1] = 1.0 / before, 1.0 / after
    diagonal[1:-1] = 2.0 * (1.0 / before + 1.0 / after)
    rhs[1:-1] = 3.0 * ((p[2:] - p[1:-1]) / after[:, None] ** 2 + (p[1:-1] - p[:-2]) / before[:, None] ** 2)
    sweep, v = np.zeros(n), np.zeros_like(p)
    sweep[0], v[0] = upper[0] / diagonal[0], rhs[0] / diagonal[0]
    for i in range(1, n):
        pivot = diagonal[i] - lower[i] * sweep[i - 1]
        sweep[i] = upper[i] / pivot if i + 1 < n else 0.0
        v[i] = (rhs[i] - lower[i] * v[i - 1]) / pivot
    for i in range(n - 2, -1, -1):
        v[i] -= sweep[i] * v[i + 1]
    return TimedTrajectory(trajectory.stamp_ns, trajectory.joint_names, offsets, p, v)


def validate(
    trajectory: TimedTrajectory,
    joint_names: tuple[str, ...],
    now_ns: int,
    allow_partial_joints_goal: bool = False,
    allow_nonzero_velocity_at_trajectory_end: bool = False,
) -> str | None:
    """JTC's `validate_trajectory_msg` (kilted): None if accepted, else its reason."""
    names = trajectory.joint_names
    if not allow_partial_joints_goal and len(names) != len(joint_names):
        return "Joints on incoming trajectory don't match the controller joints."
    if not names:
        return "Empty joint names on incoming trajectory."
    if len(trajectory.offsets_ns) == 0:
        return "Empty trajectory received."
    for name in names:
        if name not in joint_names:
            return f"Incoming joint {name} doesn't match the controller's joints."
    if not allow_nonzero_velocity_at_trajectory_end and trajectory.velocities is not None:
        last = np.abs(trajectory.velocities[-1])
        if (last > FLOAT_EPSILON).any():
            i = int(np.argmax(last > FLOAT_EPSILON))
            value = trajectory.velocities[-1, i]
            return f"Velocity of last trajectory point of joint {names[i]} is not zero: {value:.15f}"
    if trajectory.stamp_ns != 0 and trajectory.end_ns < now_ns:
        return "Received trajectory with non-zero start time that ends in the past"
    offsets = trajectory.offsets_ns
    if len(offsets) > 1 and (np.diff(offsets) <= 0).any():
        i = int(np.argmax(np.diff(offsets) <= 0)) + 1
        return f"Time between points {i - 1} and {i} is not strictly increasing"
    k, d = len(offsets), len(names)
    if trajectory.positions is None or trajectory.positions.shape != (k, d):
        return "Mismatch between joint_names size and positions"
    for field in ("velocities", "accelerations"):
        value = getattr(trajectory, field)
        if value is not None and value.shape != (k, d):
            return f"Mismatch between joint_names size and {field}"
    return None


class JtcModel:
    """One JointTrajectoryController (kilted) on the topic interface, updated at `update_rate_hz`.

    `receive` is the subscription callback (validation, newest wins); `update(time_ns, measured)`
    is one control cycle: it installs a new message, samples the trajectory and returns the command
    it writes (positions, velocities, accelerations (D,)), the sample one period ahead."""

    def __init__(
        self,
        joint_names: tuple[str, ...],
        hold_position: np.ndarray,
        update_rate_hz: float = 1000.0,
        interpolate_from_desired_state: bool = False,
        allow_nonzero_velocity_at_trajectory_end: bool = False,
        positions_upsampling: bool = False,
        policy_frequency_hz: float = 0.0,
    ):
        """positions_upsampling, policy_frequency_hz: the master branch's `positions_upsampling.enable` and
        `.policy_frequency` (Hz; 0 = chunks must carry their own timing)."""
        self.joint_names = tuple(joint_names)
        self.positions_upsampling = positions_upsampling
        self.policy_frequency_hz = policy_frequency_hz
        self.update_period_ns = int(NS / update_rate_hz)  # rclcpp::Duration(0, 1e9 / rate), truncated
        self.interpolate_from_desired_state = interpolate_from_desired_state
        self.allow_nonzero_velocity_at_trajectory_end = allow_nonzero_velocity_at_trajectory_end
        d = len(self.joint_names)
        hold = np.asarray(hold_position, dtype=float)
        # on activation: hold the measured position (a trivial message, stamp zero)
        self.trajectory = TimedTrajectory(0, self.joint_names, np.zeros(1, np.int64), hold[None, :])
        self.pending: TimedTrajectory | None = None
        self.start_ns = 0
        self.sampled = False
        self.before: tuple[int, tuple] | None = None
        self.traj_time_ns = 0
        self.last_update_ns: int | None = None
        self.last_command = (hold.copy(), np.zeros(d), np.zeros(d))
        self.last_command_ns = 0
        self.rejected: list[str] = []  # reasons, for tests
        self.installed = 0  # messages installed so far

    def receive(self, trajectory: TimedTrajectory, now_ns: int) -> bool:
        if self.positions_upsampling:
            trajectory = upsample_positions(trajectory, self.policy_frequency_hz)
        reason = validate(
            trajectory,
            self.joint_names,
            now_ns,
            allow_nonzero_velocity_at_trajectory_end=self.allow_nonzero_velocity_at_trajectory_end,
        )
        if reason is not None:
            self.rejected.append(reason)
            return False
        order = [trajectory.joint_names.index(n) for n in self.joint_names]  # sort_to_local_joint_order
        self.pending = TimedTrajectory(
            trajectory.stamp_ns,
            self.joint_names,
            trajectory.offsets_ns,
            trajectory.positions[:, order],
            None if trajectory.velocities is None else trajectory.velocities[:, order],
            None if trajectory.accelerations is None else trajectory.accelerations[:, order],
        )
        return True

    def update(
        self, time_ns: int, measured: tuple[np.ndarray, np.ndarray | None, np.ndarray | None] | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One cycle at `time_ns`; `measured`: the state interfaces (positions, velocities or None,
        accelerations or None), default the last command (a perfectly tracking robot)."""
        period_ns = 0 if self.last_update_ns is None else time_ns - self.last_update_ns
        self.last_update_ns = time_ns
        if self.pending is not None:
            self.trajectory, self.pending = self.pending, None
            self.start_ns, self.sampled = self.trajectory.stamp_ns, False
            self.installed += 1
        if measured is None:
            measured = self.last_command
        if not self.sampled:
            if self.interpolate_from_desired_state:
                if self.last_command_ns == 0:
                    self.last_command_ns = time_ns
                self.before = (self.last_command_ns, self.last_command)
            else:
                self.before = (time_ns, measured)
            self.traj_time_ns = time_ns
            if self.start_ns == 0:  # a zero stamp: the trajectory starts at its first sample (traj_time_)
                self.start_ns = time_ns
            self.sampled = True
        else:
            self.traj_time_ns += period_ns
        command = self.sample(self.traj_time_ns + self.update_period_ns)
        self.last_command, self.last_command_ns = command, time_ns
        return command

    def update_many(self, times_ns: np.ndarray) -> np.ndarray:
        """`update` at each of times_ns (ascending, no message arriving in between) with a perfectly
        tracking robot; returns the commanded positions (S, D). Vectorised where the trajectory carries
        all three fields and the samples are past its first point (what `update` would compute)."""
        times_ns = np.asarray(times_ns, dtype=np.int64)
        out = np.empty((len(times_ns), len(self.joint_names)))
        i = 0
        while i < len(times_ns) and (
            self.pending is not None or not self.sampled or not self._vectorisable(times_ns[i])
        ):
            out[i] = self.update(int(times_ns[i]))[0]
            i += 1
        if i < len(times_ns):
            rest = times_ns[i:]
            periods = np.diff(np.concatenate([[self.last_update_ns], rest]))
            traj_times = self.traj_time_ns + np.cumsum(periods) + self.update_period_ns
            shifted = TimedTrajectory(self.start_ns, self.joint_names, self.trajectory.offsets_ns, *self._fields())
            p, v, a = sample_quintic(shifted, traj_times)
            out[i:] = p
            self.traj_time_ns = int(traj_times[-1] - self.update_period_ns)
            self.last_update_ns = int(rest[-1])
            self.last_command, self.last_command_ns = (p[-1], v[-1], a[-1]), int(rest[-1])
        return out

    def _vectorisable(self, t_ns: int) -> bool:
        t = self.trajectory
        return (
            t.velocities is not None
            and t.accelerations is not None
            and len(t.offsets_ns) > 1
            and self.traj_time_ns + (t_ns - self.last_update_ns) + self.update_period_ns
            >= self.start_ns + t.offsets_ns[0]
        )

    def _fields(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t = self.trajectory
        return t.positions, t.velocities, t.accelerations

    def sample(self, t_ns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """trajectory.cpp `sample` at t_ns, once `update` has started the trajectory."""
        traj = self.trajectory
        first_ns = self.start_ns + int(traj.offsets_ns[0])
        d = len(self.joint_names)
        if t_ns < first_ns:
            before_ns, state = self.before
            p, v, a = state
            # set_point_before_trajectory_msg: missing derivatives become zeros where the first point has them
            v = np.zeros(d) if v is None and traj.velocities is not None else v
            a = np.zeros(d) if a is None and traj.accelerations is not None else a
            return spline_state(before_ns, (p, v, a), first_ns, self._point(0), t_ns)
        times = self.start_ns + traj.offsets_ns
        i = int(np.searchsorted(times, t_ns, side="right")) - 1
        if i < len(times) - 1:
            return spline_state(int(times[i]), self._point(i), int(times[i + 1]), self._point(i + 1), t_ns)
        p, v, a = self._point(len(times) - 1)
        return p.copy(), np.zeros(d) if v is None else v.copy(), np.zeros(d) if a is None else a.copy()

    def _point(self, i: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        t = self.trajectory
        return (
            t.positions[i],
            None if t.velocities is None else t.velocities[i],
            None if t.accelerations is None else t.accelerations[i],
        )
