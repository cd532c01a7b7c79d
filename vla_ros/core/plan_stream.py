"""Plan streaming (`output: joint_trajectory_plan`): the executor's limited plan, sent as one
multi-point trajectory to ros2_control's JointTrajectoryController (JTC), which interpolates it at
its own rate.

What is sent is exactly what the per-tick executor would command if nothing new arrived: at every
change (an accepted chunk, an e-stop, stale joints, a deactivation, the horizon running out) the
executor runs its own control loop ahead in time (`forecast`: ExecutorCore's `_command` on the tick
grid, its state restored afterwards) until the arm is at rest. Between two ticks that motion is
made of polynomial pieces of degree <= 5 (the tracker's plan + blend, or ruckig's constant-jerk
phases), and every point where a piece ends is a waypoint with its position, velocity and
acceleration. JTC's quintic through two waypoints reproduces any polynomial of degree <= 5 between
them, so JTC's interpolation *is* the executor's motion (to rounding), not an approximation of it.

Joining the running trajectory (docs/real-robots.md has JTC's rules and where they are in its
source): JTC (kilted) replaces the running trajectory by a new message at its next update and samples
the new one at that update's time, without interpolating from its current state when the message's
first point is already due. So every message starts with the waypoints of the running trajectory
from the last one due at the time it is sent, unchanged, up to `join`, a tick of the running
trajectory at least `plan_start_delay_s` (plus the time this computation takes: a change whose
computation overruns that is made again with a later join) ahead; the new
motion leaves the old one at `join`, continuous in position, velocity and acceleration (it starts
from the running trajectory's state there). Whenever JTC receives it before `join` - one controller
period ahead of `join`, as JTC commands one period ahead - it replaces the running trajectory by an
identical one up to `join`: no jump of any kind. A message sent while nothing is running (the arm at
rest) starts at `join` itself, stamped absolutely: JTC interpolates to it from where it holds.

Before a message is published it is checked as JTC will run it (`check`): sampled at the
controller's rate (`controller_rate_hz`) with JTC's own interpolation formulas (core/jtc.py), every
sample's position, velocity and acceleration, the finite differences of the positions (velocity,
acceleration, jerk: what a robot like the Franka checks at 1 kHz) and each segment's jerk within the
limits, and the link inside the workspace (proven along the whole motion with the workspace's
clearance where that suffices, else at every sample). A message that fails is not sent: the running
trajectory is stopped instead (a brake from `join`, checked the same way); if even that failed, the
running trajectory (checked when it was sent, and ending at rest) is left to run out.
"""

from __future__ import annotations

import time
from bisect import bisect_left, bisect_right
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from vla_ros.core.jtc import NS, TimedTrajectory, quintic_coefficients, s_to_ns, sample_quintic, validate

# The ExecutorCore that owns a stream (core/executor.py, which imports this module: not imported back here)
ExecutorCore = Any

MIN_KNOT_SPACING_NS = 1  # waypoints at the same nanosecond are merged (a piece left out of a segment
# changes its jerk by about 9 x its length / the segment's: a microsecond left out of a 1 ms segment already
# moves the segment's jerk by 1 % of the jump). Two joints' phases may end nanoseconds apart: in so short a
# segment JTC's sampled acceleration is rounding (~60 x 4e-16 rad / T^2), its position and velocity are not
SHORT_SEGMENT_S = 1e-5  # JTC's sampled acceleration inside a shorter segment is not checked (rounding), the
# waypoints' own accelerations are
STEP_LIMIT_S = 30.0  # a forecast that is not at rest this long after the horizon is cut (and fails the check)
RELATIVE_SLACK = 1e-6  # of each limit, for rounding in the check
JERK_CHECK_MIN_SEGMENT_S = 1e-4  # a segment's own jerk is checked when it is at least this long (rounding)
STOP_STATES = ("estop", "stale_joints", "stopping")
# (3, 6) position, velocity, acceleration rows of a quintic's power basis: factors and powers of tau
_POWERS = np.array([[max(k - r, 0) for k in range(6)] for r in range(3)])
_DERIVATIVES = np.array([[np.prod(np.arange(k - r + 1, k + 1)) if k >= r else 0.0 for k in range(6)] for r in range(3)])
INITIAL_COMPUTE_S = 0.02  # what computing a change is expected to take before any was measured
MIN_COMPUTE_BUDGET_S = 0.002
LATE_RETRIES = 3  # a change computed too late for its join is made again this often with a later join


@dataclass
class Forecast:
    """The executor's motion from its join: waypoints (times ns after the join (K,), states (K, 3, D)),
    the ticks (ns after the join, states (3, D)) and per tick after the first (state, active limits,
    command mode)."""

    knots_ns: list[int] = field(default_factory=list)
    knot_states: list[np.ndarray] = field(default_factory=list)
    ticks_ns: list[int] = field(default_factory=list)
    tick_states: list[np.ndarray] = field(default_factory=list)
    labels: list[tuple[str, tuple[str, ...], str]] = field(default_factory=list)
    at_rest: bool = True
    moves: bool = False  # some tick differs from the first

    def add_knot(self, t_ns: int, state: np.ndarray, tick: bool) -> None:
        """Append a waypoint; one closer than MIN_KNOT_SPACING_NS to the last is left out (a tick
        replaces a breakpoint that close before it)."""
        if self.knots_ns and t_ns - self.knots_ns[-1] < MIN_KNOT_SPACING_NS:
            if not tick or len(self.knots_ns) == 1 or self.knots_ns[-2] > t_ns - MIN_KNOT_SPACING_NS:
                return
            self.knots_ns.pop()
            self.knot_states.pop()
        self.knots_ns.append(t_ns)
        self.knot_states.append(state)


class PlanStream:
    """What the executor has sent to the controller and when its next message goes out.

    Owned by an ExecutorCore whose settings say `stream_plan`; the core calls `change` for a chunk,
    `tick` every control period, `reset` on activation. `take` hands the node the message to
    publish (a TimedTrajectory, absolute stamp), at most one per change. Times of what was sent are
    integer nanoseconds (ROS time), as in the messages."""

    def __init__(self, core: ExecutorCore, clock: Callable[[], float] = time.perf_counter):
        s = core.settings
        self.core = core
        self.period_ns = int(round(s.control_period_s * NS))
        self.controller_period_ns = int(NS / s.controller_rate_hz)
        self.start_delay_s = s.plan_start_delay_s
        self.horizon_s = s.plan_horizon_s
        self.clock = clock
        self.compute_s: deque[float] = deque([INITIAL_COMPUTE_S], maxlen=10)  # time the last changes took
        self.checked = 0  # messages checked, failed (all time)
        self.failed = 0
        self.last_failure = ""
        self.reset()

    def reset(self) -> None:
        """Nothing sent (activation: the controller holds where the arm is, so does the executor)."""
        self.knots_ns: list[int] = []  # the trajectory sent last, as the controller runs it
        self.knot_states: list[np.ndarray] = []
        self.ticks_ns: list[int] = []  # the ticks it was forecast on (where the next change may join it)
        self.tick_states: list[np.ndarray] = []
        self.label_ns: list[int] = []
        self.labels: list[tuple[str, tuple[str, ...], str]] = []  # (state, active limits, command mode) per tick
        self.trajectory: TimedTrajectory | None = None
        self.pending: TimedTrajectory | None = None
        self.pending_join_s = 0.0
        self.mode = "rest"  # what the sent trajectory does: rest, plan, holding, estop, stale_joints, stopping
        self.end_ns = -(2**62)  # at rest from this time on
        self.extend_at_s = np.inf  # a plan cut at the horizon is continued from here on
        self.sent = 0
        self._join_ns = 0

    @property
    def end_s(self) -> float:
        return self.end_ns / NS

    # --- the state the controller is commanded --------------------------------------------------
    def state_at(self, t_s: float) -> np.ndarray | None:
        """(3, D) position, velocity, acceleration of the sent trajectory at t_s as JTC samples it
        (None if nothing was sent)."""
        if self.trajectory is None:
            return None
        t_ns = s_to_ns(t_s)
        if t_ns >= self.knots_ns[-1]:
            return self.knot_states[-1].copy()
        if t_ns <= self.knots_ns[0]:
            return self.knot_states[0].copy()
        i = bisect_right(self.knots_ns, t_ns) - 1  # JTC's segment t0 <= t < t1, its quintic (`_install`)
        tau = (t_ns - self.knots_ns[i]) / NS
        return _DERIVATIVES * np.power(tau, _POWERS) @ self._coefficients[i]

    def label_at(self, t_s: float) -> tuple[str, tuple[str, ...], str]:
        """(state, active limits, command mode) the forecast recorded for the tick at or before t_s."""
        t_ns = s_to_ns(t_s)
        i = bisect_right(self.label_ns, t_ns) - 1
        if i >= 0 and t_ns <= self.end_ns:
            return self.labels[i]
        core = self.core
        if self.mode in STOP_STATES:
            return self.mode, (), self.mode
        if not core.plan.empty and t_s <= core.plan.end_time_s + core.settings.plan_timeout_s:
            return "tracking", (), "tracking/nominal"
        return "holding", (), "holding"

    # --- changes ------------------------------------------------------------------------------------
    def budget_s(self) -> float:
        """Time a change is expected to take to compute: twice the longest of the last ones (a longer one
        is made again, `change`)."""
        return max(2.0 * max(self.compute_s), MIN_COMPUTE_BUDGET_S)

    def change(self, now_s: float, mode: str, apply: Callable[[float], object] | None = None) -> object:
        """Make a change at `now_s` and queue its message: join the running trajectory (`_join`), let
        `apply(join_s)` change the core there (merge a chunk anchored at the join, ...; its result is
        returned), forecast, check. `mode`: what the change is ('plan' for a chunk or a continuation,
        else the stop state). A change whose computation outlasts the time before its join (the message
        would reach the controller after the join: the running and the new trajectory would differ at
        the switch) is undone and made again with a later join, up to LATE_RETRIES times."""
        core = self.core
        saved, real_last_tick = _snapshot(core), core._last_tick_s
        t0, budget = self.clock(), self.budget_s()
        for attempt in range(LATE_RETRIES + 1):
            join_s = self._join(now_s + (self.clock() - t0), budget)
            result = apply(join_s) if apply is not None else None
            message, forecast, final_mode = self._compute(now_s, join_s, mode)
            elapsed = self.clock() - t0
            if elapsed <= budget or attempt == LATE_RETRIES:
                break
            _restore(saved)  # too late for this join: the same change, later
            saved = _snapshot(core)
            budget = 1.5 * elapsed
            core.counters["plans_recomputed_late"] += 1
        self.compute_s.append(elapsed)
        if message is not None:
            if not forecast.moves and (self.trajectory is None or self.end_ns <= self._join_ns):
                self.mode = final_mode  # at rest, staying there: nothing to send
            else:
                self._install(forecast, message, final_mode)
        core._last_tick_s = real_last_tick  # `_join` moved it
        return result

    def _join(self, now_s: float, budget_s: float) -> float:
        """Where a change made at `now_s` leaves the running trajectory: its first tick at least the
        start delay plus `budget_s` (the computation) ahead. Puts the limiter in its state there and
        returns its time."""
        core, lim = self.core, self.core.limiter
        earliest = s_to_ns(now_s + self.start_delay_s + budget_s)
        i = bisect_left(self.ticks_ns, earliest)
        if i < len(self.ticks_ns):
            join_ns, state = self.ticks_ns[i], self.tick_states[i]
        elif self.ticks_ns:  # past the end of what was sent: at rest there, on its grid
            last = self.ticks_ns[-1]
            join_ns = last + -(-(earliest - last) // self.period_ns) * self.period_ns
            state = self.tick_states[-1]
        else:  # nothing sent: at rest where the limiter is
            join_ns = earliest
            state = np.stack([lim.position, np.zeros_like(lim.position), np.zeros_like(lim.position)])
        lim.position, lim.velocity, lim.acceleration = (state[k].copy() for k in range(3))
        lim.commands += 1  # the tracker joins the plan from here
        lim.last_step_s = None
        self._join_ns = join_ns
        join_s = join_ns / NS
        core._last_tick_s = join_s
        return join_s

    def _compute(self, now_s: float, join_s: float, mode: str) -> tuple[TimedTrajectory | None, Forecast, str]:
        """Forecast from `join_s`, build the message and check it; a plan that fails is replaced by a brake
        (also checked). Returns (message or None if even the brake failed, forecast, mode)."""
        core = self.core
        fresh = now_s - core._joint_stamp_s <= core.settings.joint_state_timeout_s
        forecast = self.forecast(join_s, fresh)
        message = self._message(now_s, forecast)
        from_ns = self._join_ns - 3 * self.controller_period_ns
        failure = self.check(message, from_ns)
        if failure:
            self.failed += 1
            self.last_failure = failure
            core.counters["plans_rejected"] += 1
            core.plan.clear()
            forecast = self.forecast(join_s, fresh, brake=True)
            message = self._message(now_s, forecast)
            mode = "holding"
            if self.check(message, from_ns):  # never seen: the running trajectory (checked, ending at rest) runs out
                core.counters["brakes_rejected"] += 1
                return None, forecast, mode
        if mode == "plan" and not fresh:
            mode = "rest"  # the stale joints stopped it: the plan runs once they are back
        return message, forecast, mode

    def take(self) -> tuple[TimedTrajectory, float] | None:
        """The message to publish and its join time (the controller must have it one of its periods
        before), once; None when nothing changed."""
        if self.pending is None:
            return None
        out, self.pending = (self.pending, self.pending_join_s), None
        return out

    # --- the control tick -------------------------------------------------------------------------
    def tick(self, now_s: float) -> tuple[np.ndarray | None, str, tuple[str, ...], str]:
        """One control period: watchdogs that change the plan; returns (state (3, D) commanded now or
        None if nothing was sent, state name, active limits, command mode)."""
        core = self.core
        s = core.settings
        stale = now_s - core._joint_stamp_s > s.joint_state_timeout_s
        if stale or (not core.plan.empty and now_s > core.plan.end_time_s + s.plan_timeout_s):
            core.plan.clear()
        change = None
        if core.stopping and self.mode != "stopping":
            change = "stopping"
        elif core.estopped and self.mode not in ("estop", "stopping"):
            change = "estop"
        elif stale and self.mode not in STOP_STATES:
            change = "stale_joints"
        elif self.mode == "plan" and now_s >= self.extend_at_s:
            change = "plan"  # the horizon: continue the plan
        elif not core.plan.empty and self.mode not in ("plan", *STOP_STATES) and not stale:
            change = "plan"  # a plan the last change could not run (the joints were stale then)
        if change is not None:
            self.change(now_s, change)
        if self.mode == "estop" and not core.estopped or self.mode == "stale_joints" and not stale:
            self.mode = "holding"  # the stop runs on; nothing holds the arm back any more
        name, limits, mode = self.label_at(now_s)
        if self.mode == "holding" and name in ("estop", "stale_joints"):
            name = mode = "holding"
        return self.state_at(now_s), name, limits, mode

    # --- the forecast -------------------------------------------------------------------------------
    def forecast(self, join_s: float, fresh_joints: bool, brake: bool = False) -> Forecast:
        """The executor's commands from `join_s` on the tick grid until at rest (after the plan's end, or
        a gentle stop from the horizon on), with the motion between ticks; the core's state is left as
        it was. `fresh_joints`: joint states keep arriving (else the stale-joints stop runs);
        `brake`: the time-optimal stop instead of the plan.

        It runs in a time frame with the join at 0 (`_shift_times`): the waypoints' states are evaluated
        at exactly the nanosecond times they are sent with (at ROS time ~1.7e9 s a float second is only
        good to 0.24 us, and JTC's quintic over a short segment turns a nanosecond's inconsistency
        between a waypoint's time and its state into a large acceleration)."""
        core = self.core
        lim, tracker = core.limiter, core.tracker
        saved = _snapshot(core)
        out = Forecast()
        try:
            core.run_log = None
            _shift_times(core, -join_s)
            state = np.stack([lim.position, lim.velocity, lim.acceleration])
            out.add_knot(0, state, tick=True)
            out.ticks_ns.append(0)
            out.tick_states.append(state)
            horizon_ns = int(self.horizon_s * NS)
            limit_ns = horizon_ns + int(STEP_LIMIT_S * NS)
            k = 0
            while True:
                k += 1
                t_ns = k * self.period_ns
                t_next = t_ns / NS
                if fresh_joints:
                    core._joint_stamp_s = t_next
                if t_ns > horizon_ns and not core.plan.empty:
                    core.plan.clear()  # the horizon: stop gently (a later change continues the plan)
                commands = lim.commands
                if brake:
                    lim.brake(t_next - core._last_tick_s)
                    command = core._emit(t_next, lim.position, "holding", ("plan_check",))
                    core._last_tick_s = t_next
                else:
                    command = core._command(t_next)
                if command.positions is None:
                    break
                if lim.commands != commands:
                    self._add_motion(out, core, t_ns - self.period_ns, t_ns)
                state = np.stack([lim.position, lim.velocity, lim.acceleration])
                out.add_knot(t_ns, state, tick=True)
                out.ticks_ns.append(t_ns)
                out.tick_states.append(state)
                mode = f"tracking/{tracker.last_mode}" if command.state == "tracking" else command.state
                out.labels.append((command.state, command.limits, mode))
                if lim.at_rest and (core.plan.empty or t_next >= core.plan.end_time_s):
                    break
                if t_ns > limit_ns:
                    out.at_rest = False
                    break
            out.moves = any(np.any(st != out.tick_states[0]) for st in out.tick_states[1:])
        finally:
            _restore(saved)
        return out

    @staticmethod
    def _add_motion(out: Forecast, core: ExecutorCore, from_ns: int, to_ns: int) -> None:
        """Waypoints where the motion between the ticks at from_ns and to_ns (join frame) changes
        polynomial, each evaluated at the nanosecond it is sent with."""
        lim = core.limiter
        if lim.last_step_s is not None:  # ruckig's trajectory: its phases
            for tau in lim.step_breakpoints():
                t_ns = from_ns + int(round(tau * NS))
                if from_ns < t_ns < to_ns:
                    out.add_knot(t_ns, lim.step_state((t_ns - from_ns) / NS), tick=False)
        elif core.tracker.last_mode in ("nominal", "catch_up") and not core.plan.empty:  # plan + blend
            for time_s in core.tracker.reference_breakpoints(core.plan, from_ns / NS, to_ns / NS):
                t_ns = int(round(time_s * NS))
                if from_ns < t_ns < to_ns:
                    out.add_knot(t_ns, core.tracker.reference_state(core.plan, t_ns / NS), tick=False)

    # --- the message --------------------------------------------------------------------------------
    def _message(self, now_s: float, forecast: Forecast) -> TimedTrajectory:
        """The running trajectory's waypoints from the last one due a start delay before now_s (room for
        the clocks' offset) up to the join, then the forecast; the forecast alone when the running one
        is at rest by now."""
        join_ns = self._join_ns
        knots_ns, states = [], []
        if self.trajectory is not None and self.end_ns > s_to_ns(now_s):
            first = max(bisect_right(self.knots_ns, s_to_ns(now_s - self.start_delay_s)) - 1, 0)
            last = bisect_left(self.knots_ns, join_ns)
            knots_ns, states = self.knots_ns[first:last], self.knot_states[first:last]
        if knots_ns and join_ns - knots_ns[-1] < MIN_KNOT_SPACING_NS:
            knots_ns, states = knots_ns[:-1], states[:-1]
        times = np.array(knots_ns + [join_ns + t for t in forecast.knots_ns], dtype=np.int64)
        stacked = np.array(states + forecast.knot_states)  # (K, 3, D)
        return TimedTrajectory(
            int(times[0]),
            self.core.joint_names,
            times - times[0],
            stacked[:, 0].copy(),
            stacked[:, 1].copy(),
            stacked[:, 2].copy(),
        )

    def _install(self, forecast: Forecast, message: TimedTrajectory, mode: str) -> None:
        join_ns = self._join_ns
        keep = bisect_left(self.ticks_ns, join_ns)
        self.ticks_ns = self.ticks_ns[:keep] + [join_ns + t for t in forecast.ticks_ns]
        self.tick_states = self.tick_states[:keep] + forecast.tick_states
        keep = bisect_left(self.label_ns, join_ns + 1)  # labels are for the ticks after a join
        self.label_ns = self.label_ns[:keep] + [join_ns + t for t in forecast.ticks_ns[1:]]
        self.labels = self.labels[:keep] + forecast.labels
        self.knots_ns = message.times_ns.tolist()
        self.knot_states = list(np.stack([message.positions, message.velocities, message.accelerations], axis=1))
        self.trajectory = message
        p, v, a = message.positions, message.velocities, message.accelerations
        durations = (np.diff(message.times_ns) / NS)[:, None]
        self._coefficients = np.stack(  # (K-1, 6, D): each segment's quintic, JTC's formulas
            quintic_coefficients(p[:-1], v[:-1], a[:-1], p[1:], v[1:], a[1:], durations), axis=1
        )
        self.pending, self.pending_join_s = message, join_ns / NS
        self.end_ns = self.ticks_ns[-1]
        self.mode = mode
        join_s = join_ns / NS
        cut = not self.core.plan.empty and self.core.plan.end_time_s > join_s + self.horizon_s
        self.extend_at_s = np.inf
        if cut:  # continue before the stop at the horizon begins
            lead = self.start_delay_s + 2.0 * self.budget_s() + 2 * self.period_ns / NS
            self.extend_at_s = join_s + self.horizon_s - lead
        self.sent += 1
        # forget what is long past
        old = bisect_left(self.ticks_ns, join_ns - NS)
        self.ticks_ns, self.tick_states = self.ticks_ns[old:], self.tick_states[old:]
        old = bisect_left(self.label_ns, join_ns - NS)
        self.label_ns, self.labels = self.label_ns[old:], self.labels[old:]

    # --- the check ----------------------------------------------------------------------------------
    def check(self, message: TimedTrajectory, from_ns: int) -> str:
        """'' if JTC running `message` from `from_ns` on keeps every limit, else what it breaks."""
        self.checked += 1
        core = self.core
        reason = validate(message, core.joint_names, 0)  # (its end is after the join, in the future)
        if reason:
            return f"the controller would reject it: {reason}"
        return check_trajectory(message, from_ns, self.controller_period_ns, core.limiter, core.workspace)


def check_trajectory(message: TimedTrajectory, from_ns: int, period_ns: int, limiter, workspace=None) -> str:
    """'' if `message` sampled as JTC samples it every `period_ns` from `from_ns` (to two periods past
    its end) keeps the limiter's position, velocity, acceleration and jerk limits (samples, their finite
    differences, each segment's own jerk) and the workspace; else the first thing it breaks."""
    limits = limiter.limits
    names = message.joint_names
    start = max(from_ns, int(message.times_ns[0]))
    times = np.arange(start, message.end_ns + 3 * period_ns, period_ns, dtype=np.int64)
    p, v, a = sample_quintic(message, times)
    dt = period_ns / NS

    def first(bad: np.ndarray, what: str, values: np.ndarray, bound: np.ndarray) -> str:
        i, j = np.argwhere(bad)[0]
        return (
            f"{what} of '{names[j]}' {values[i, j]:.6g} beyond its limit {bound[j]:.6g} at "
            f"{(times[min(i, len(times) - 1)] - message.stamp_ns) / NS:.4f} s into the plan"
        )

    low, high = limits.min_position - 1e-9, limits.max_position + 1e-9
    bad = (p < low) | (p > high)
    if bad.any():
        return first(bad, "position", p, np.where(p < low, limits.min_position, limits.max_position)[0])
    knots = message.times_ns
    seg = np.clip(np.searchsorted(knots, times, side="right") - 1, 0, max(len(knots) - 2, 0))
    short = (np.diff(knots) < SHORT_SEGMENT_S * NS)[seg] if len(knots) > 1 else np.zeros(len(times), bool)
    later = knots >= from_ns - period_ns  # the waypoints themselves (exact states)
    for what, values, bound in (
        ("waypoint velocity", message.velocities[later], limiter.max_velocity),
        ("waypoint acceleration", message.accelerations[later], limiter.max_acceleration),
    ):
        bad = np.abs(values) > bound * (1 + RELATIVE_SLACK) + 1e-9
        if bad.any():
            i, j = np.argwhere(bad)[0]
            return f"{what} of '{names[j]}' {values[i, j]:.6g} beyond its limit {bound[j]:.6g}"
    for what, values, bound in (
        ("velocity", v, limiter.max_velocity),
        ("acceleration", np.where(short[:, None], 0.0, a), limiter.max_acceleration),
        ("velocity (finite difference)", np.diff(p, 1, axis=0) / dt, limiter.max_velocity),
        ("acceleration (finite difference)", np.diff(p, 2, axis=0) / dt**2, limiter.max_acceleration),
        ("jerk (finite difference)", np.diff(p, 3, axis=0) / dt**3, limiter.max_jerk),
    ):
        tolerance = bound * (1 + RELATIVE_SLACK) + 1e-6
        bad = np.abs(values) > tolerance
        if bad.any():
            return first(bad, what, values, bound)
    jerk = segment_jerk(message, from_ns)
    if jerk is not None:
        bad = jerk > limiter.max_jerk * (1 + RELATIVE_SLACK) + 1e-6
        if bad.any():
            i, j = np.argwhere(bad)[0]
            return f"jerk of '{names[j]}' {jerk[i, j]:.6g} beyond its limit {limiter.max_jerk[j]:.6g} in segment {i}"
    if workspace is not None:
        return _workspace_failure(workspace, p, v, times, message.stamp_ns, dt)
    return ""


def segment_jerk(message: TimedTrajectory, from_ns: int) -> np.ndarray | None:
    """(S, D) max |jerk| of each quintic segment (at least JERK_CHECK_MIN_SEGMENT_S long) ending after from_ns."""
    t = message.times_ns
    keep = (t[1:] > from_ns) & (np.diff(t) >= JERK_CHECK_MIN_SEGMENT_S * NS)
    if not keep.any():
        return None
    T = (np.diff(t) / NS)[keep][:, None]
    p, v, a = message.positions, message.velocities, message.accelerations
    _, _, _, c3, c4, c5 = quintic_coefficients(
        p[:-1][keep], v[:-1][keep], a[:-1][keep], p[1:][keep], v[1:][keep], a[1:][keep], T
    )

    def jerk(tau):
        return np.abs(6.0 * c3 + 24.0 * c4 * tau + 60.0 * c5 * tau**2)

    with np.errstate(divide="ignore", invalid="ignore"):
        vertex = np.clip(np.nan_to_num(-24.0 * c4 / (120.0 * c5)), 0.0, T)
    return np.maximum(np.maximum(jerk(0.0), jerk(T)), jerk(vertex))


WORKSPACE_GROUP = 10  # samples proven inside together by one clearance


def _workspace_failure(workspace, p: np.ndarray, v: np.ndarray, times: np.ndarray, stamp_ns: int, dt: float) -> str:
    """'' if the link stays in the workspace along the sampled trajectory (positions p (S, D)): each
    group of samples, and the motion between them, is proven inside with the clearance at its first
    sample and the link's speed bound when that suffices, else every sample is checked."""
    bound = getattr(workspace, "link_speed_bound_m_per_rad", None)
    between = np.abs(v).max(axis=0) * dt  # how far a joint moves between two samples, at most (+ rounding)
    for g in range(0, len(p), WORKSPACE_GROUP):
        group = p[g : g + WORKSPACE_GROUP + 1]
        if bound is not None:
            reach = float(bound @ (np.abs(group - group[0]).max(axis=0) + between))
            if reach < workspace.clearance(group[0]):
                continue
        for i, q in enumerate(group[:-1] if len(group) > WORKSPACE_GROUP else group):
            if not workspace.contains(q):
                return f"workspace: {workspace.violation(q)} at {(times[g + i] - stamp_ns) / NS:.4f} s into the plan"
    return ""


# --- running the executor ahead and back ------------------------------------------------------------
def _snapshot(core: ExecutorCore) -> list[tuple[object, dict]]:
    """The core's mutable state (its own, the limiter's, the tracker's and the plan's attributes, the
    counters copied): `_restore` puts it back after a forecast ran the control loop ahead."""
    saved = []
    for obj in (core, core.limiter, core.tracker, core.plan):
        state = dict(obj.__dict__)
        saved.append((obj, state))
    saved[0][1]["counters"] = core.counters.copy()
    saved[1][1]["activations"] = core.limiter.activations.copy()
    saved[1][1]["active"] = list(core.limiter.active)
    return saved


def _restore(saved: list[tuple[object, dict]]) -> None:
    for obj, state in saved:
        obj.__dict__.clear()
        obj.__dict__.update(state)


def _shift_times(core: ExecutorCore, offset_s: float) -> None:
    """Add offset_s to every absolute time the control loop reads (the core's last tick and joint stamp,
    the plan's point and knot times, the tracker's blend and step times): the forecast's time frame.
    Differences of nearby floats are exact, so the shifted plan is the same plan. Only inside a
    forecast (`_snapshot` / `_restore` around it)."""
    plan, tracker = core.plan, core.tracker
    core._last_tick_s = None if core._last_tick_s is None else core._last_tick_s + offset_s
    core._joint_stamp_s = None if core._joint_stamp_s is None else core._joint_stamp_s + offset_s
    plan.times_s = plan.times_s + offset_s
    plan.knot_times_s = plan.knot_times_s + offset_s
    plan._times_list = plan.knot_times_s.tolist()
    plan._interpolating_times = [t + offset_s for t in plan._interpolating_times]
    for name in ("_blend_start_s", "_blend_end_s", "_start_s", "_last_step_s"):
        if hasattr(tracker, name):
            setattr(tracker, name, getattr(tracker, name) + offset_s)
