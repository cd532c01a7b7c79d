"""Jerk-limited command generation with ruckig that can always stop inside the limits.

Every tick, ruckig computes a trajectory from the commanded state (position, velocity,
acceleration) to the plan's state a little ahead (position, velocity, due in `arrive_in_s`;
arriving no earlier than due keeps the motion smooth instead of bang-bang) under the velocity,
acceleration and jerk limits, and the command is that trajectory one tick ahead. So successive
commands form one continuous trajectory whose velocity, acceleration and jerk never exceed the
limits, whatever the targets do.

Position and workspace limits are kept by an invariant: a command is accepted only if braking
from it (full deceleration to rest, jerk-limited) stays inside the position limits and inside
the workspace. Otherwise the limiter brakes instead, continuing the braking trajectory of the
previous command, which was checked when that command was accepted. Targets are clamped to the
position limits minus the margin; the margin is the room braking may use. The workspace check
runs forward kinematics only where it matters: with the workspace's clearance (metres) at a
recent command and its bound on the link's speed per joint speed, a braking motion whose joint
excursion cannot move the link that far is proven inside (the whole trajectory) without forward
kinematics; otherwise the clearance is recomputed at the candidate, and then also at the
trajectory's end (see `_inside_by_clearance`). Where these bounds cannot prove it (fast
multi-joint braking, or near the boundary) the trajectory is proven piece by piece with the
clearance at the pieces' ends, halving unproven pieces (`_inside_by_bisection`): no point of it is
left unchecked. Only without a clearance function is the configuration checked at `brake_samples`
points of the braking trajectory (points between them are not).

Besides `track` (ruckig towards a target) and `brake`, `accept_if_safe` takes a command state
computed elsewhere (the nominal tracker, core/tracker.py) if the same invariant holds for it.

Joints without an acceleration (jerk) limit get one that reaches full speed (acceleration) in
`UNLIMITED_RAMP_S`, so ruckig always has finite limits.
"""

from __future__ import annotations

import math
from collections import Counter
from contextlib import contextmanager
from typing import Callable

import numpy as np
from ruckig import ControlInterface, InputParameter, Result, Ruckig, RuckigError, Synchronization, Trajectory

from vla_ros.core.types import JointLimits

UNLIMITED_RAMP_S = 0.01
_POSITION_TOLERANCE = 1e-9  # radians of float slack on the position limits
RUCKIG_SHARE = 1.0 - 1e-3  # of the velocity, acceleration and jerk limits that ruckig plans with
_SYNCHRONIZED_FIRST = (Synchronization.Time, Synchronization.No)  # unsynchronised: the robust fallback
_EACH_JOINT = (Synchronization.No,)  # braking: every joint stops as fast as it can (`stop_phases`)


MAX_CLEARANCE_EVALUATIONS = 64  # forward kinematics per braking check near the workspace's boundary, at most


class JerkLimiter:
    """Commands (D,) that respect position, velocity, acceleration and jerk limits.

    admissible: optional check of a joint configuration (D,) -> bool (e.g. the workspace);
    with `clearance` (joints (D,) -> metres, Workspace.clearance) and `link_speed_bound` (D,) metres
    per radian the whole braking trajectory is proven inside; without them it is checked at
    `brake_samples` configurations along it (a sampled check).
    """

    def __init__(
        self,
        limits: JointLimits,
        position_margin_rad: float = 0.0,
        admissible: Callable[[np.ndarray], bool] | None = None,
        brake_samples: int = 4,
        clearance: Callable[[np.ndarray], float] | None = None,
        link_speed_bound: np.ndarray | None = None,
    ):
        if position_margin_rad < 0:
            raise ValueError(f"position margin must be >= 0, got {position_margin_rad}")
        n = len(limits.names)
        self.limits = limits
        margin = np.minimum(position_margin_rad, 0.25 * (limits.max_position - limits.min_position))
        self.lower = limits.min_position + margin  # targets are clamped to [lower, upper]
        self.upper = limits.max_position - margin
        self.max_velocity = limits.max_velocity
        self.max_acceleration = _finite_or(limits.max_acceleration, self.max_velocity / UNLIMITED_RAMP_S, n)
        self.max_jerk = _finite_or(limits.max_jerk, self.max_acceleration / UNLIMITED_RAMP_S, n)
        self.admissible = admissible
        self.brake_samples = brake_samples
        self.clearance = clearance if admissible is not None and link_speed_bound is not None else None
        self.link_speed_bound = None if link_speed_bound is None else np.asarray(link_speed_bound, dtype=float)
        self._clearance_at: np.ndarray | None = None  # joints where the clearance was last computed
        self._clearance_m = -np.inf
        self.commands = 0  # commands accepted so far (lets a follower notice commands it did not make)
        # the limits ruckig brakes with (`brake`), so the braking check computes the same stop
        self._max_a = (self.max_acceleration * RUCKIG_SHARE).tolist()
        self._max_j = (self.max_jerk * RUCKIG_SHARE).tolist()
        self._max_v = (self.max_velocity * (1 + 1e-9) + 1e-12).tolist()  # float slack
        self._low_list = (limits.min_position - _POSITION_TOLERANCE).tolist()
        self._high_list = (limits.max_position + _POSITION_TOLERANCE).tolist()
        self._otg = Ruckig(n)
        self._trajectory = Trajectory(n)
        self._input = InputParameter(n)
        # ruckig plans a hair inside the limits: its trajectories may exceed a limit by its numerical
        # tolerance (seen: 2.5003 rad/s of position change per tick against a 2.5 rad/s limit)
        self._ruckig_velocity = self.max_velocity * RUCKIG_SHARE
        self._ruckig_acceleration = self.max_acceleration * RUCKIG_SHARE
        self._input.max_velocity = self._ruckig_velocity.tolist()
        self._input.max_acceleration = self._ruckig_acceleration.tolist()
        self._input.max_jerk = (self.max_jerk * RUCKIG_SHARE).tolist()
        self.position: np.ndarray | None = None  # the last command (D,)
        self.velocity = np.zeros(n)
        self.acceleration = np.zeros(n)
        self.activations: Counter[str] = Counter()  # why a command differed from the request, all time
        self.active: list[str] = []  # the same, for the last command only
        # how far (seconds) along ruckig's trajectory the last command was taken, None when it came from
        # elsewhere (accept_if_safe, reset): with `step_breakpoints` the motion between two commands
        self.last_step_s: float | None = None
        self._step_s = self._step_dt_s = 0.0

    def reset(self, position: np.ndarray) -> None:
        """Start at rest at `position` (e.g. the measured joints), clamped into the position limits."""
        self.position = np.clip(np.asarray(position, dtype=float), self.limits.min_position, self.limits.max_position)
        self.velocity = np.zeros_like(self.position)
        self.acceleration = np.zeros_like(self.position)
        self._clearance_at = None
        self.commands += 1
        self.last_step_s = None

    @property
    def at_rest(self) -> bool:
        return self.position is not None and not self.velocity.any() and not self.acceleration.any()

    def accept_if_safe(self, state: np.ndarray) -> bool:
        """Make `state` (3, D) (position, velocity, acceleration; already within the velocity,
        acceleration and jerk limits from the last command) the command if it is inside the
        position limits and braking from it stays inside them and the workspace."""
        self._require_started()
        position = state[0]
        if (position < self.limits.min_position).any() or (position > self.limits.max_position).any():
            return False
        if not self._can_stop_safely(position, state[1], state[2], record=False):
            return False
        self.active = []
        self._accept((position.copy(), state[1].copy(), state[2].copy()))
        return True

    def track(
        self,
        target: np.ndarray,
        target_velocity: np.ndarray | None,
        dt_s: float,
        arrive_in_s: float = 0.0,
        target_acceleration: np.ndarray | None = None,
        share: float = 1.0,
    ) -> np.ndarray:
        """The next command, `dt_s` after the last one, towards `target` (D,) moving at
        `target_velocity` (D,) and accelerating at `target_acceleration` (D,) (default 0; dropped
        where the target is clamped, and entirely if ruckig cannot reach it), to be reached
        `arrive_in_s` after the last command (or as soon as the limits allow, if later).
        `share` < 1: first try with that share of the acceleration and jerk limits (smoother, slower
        to arrive), kept if braking from it at the full limits keeps every limit."""
        self._require_started()
        self.active = []
        target = np.asarray(target, dtype=float)
        velocity = np.zeros_like(target) if target_velocity is None else np.asarray(target_velocity, dtype=float)
        if target.shape != self.position.shape or not (np.isfinite(target).all() and np.isfinite(velocity).all()):
            self._flag("invalid_target")
            return self.brake(dt_s)
        clamped = np.clip(target, self.lower, self.upper)
        if (clamped != target).any():
            self._flag("position")
        velocity = np.where(clamped != target, 0.0, np.clip(velocity, -self._ruckig_velocity, self._ruckig_velocity))
        acceleration = None
        if target_acceleration is not None and np.isfinite(target_acceleration).all():
            bounded = np.clip(target_acceleration, -self._ruckig_acceleration, self._ruckig_acceleration)
            acceleration = np.where(clamped != target, 0.0, bounded)
        # the trajectory lasts at least one tick, so the command is a point on it (not past its end)
        duration_s = max(arrive_in_s, dt_s)
        if share < 1.0:
            with self._scaled_limits(share):
                gentle = acceleration if acceleration is None else acceleration * share
                state = self._step(clamped, velocity, dt_s, ControlInterface.Position, duration_s, gentle)
                if state is None and gentle is not None:  # as below: without the target's acceleration
                    state = self._step(clamped, velocity, dt_s, ControlInterface.Position, duration_s)
            if state is not None and self._can_stop_safely(*state, record=False):
                self._accept(state, stepped=True)
                return self.position.copy()
        state = self._step(clamped, velocity, dt_s, ControlInterface.Position, duration_s, acceleration)
        if state is None and acceleration is not None:
            state = self._step(clamped, velocity, dt_s, ControlInterface.Position, max(arrive_in_s, dt_s))
        if state is None:
            self._flag("ruckig_error")
            return self.brake(dt_s)
        if not self._can_stop_safely(*state):
            return self.brake(dt_s)
        self._accept(state, stepped=True)
        return self.position.copy()

    def brake(self, dt_s: float) -> np.ndarray:
        """Decelerate towards rest within the acceleration and jerk limits (the hold command): each
        joint's time-optimal stop."""
        self._require_started()
        if not self.at_rest:
            zeros = np.zeros_like(self.position)
            state = self._step(zeros, zeros, dt_s, ControlInterface.Velocity, synchronizations=_EACH_JOINT)
            if state is None:  # cannot happen for valid limits; never leave the last position
                self._flag("ruckig_error")
                self._accept((self.position, np.zeros_like(self.position), np.zeros_like(self.position)))
            else:
                self._accept(state, stepped=True)
        return self.position.copy()

    def stop_gently(self, dt_s: float, share: float) -> np.ndarray:
        """Decelerate towards rest with `share` (0, 1] of the acceleration and jerk limits (a routine
        stop: smoother, a little longer), where that provably keeps the limits (the same check as any
        command: braking from it at the full limits stays inside them); else the time-optimal `brake`."""
        self._require_started()
        if self.at_rest or share >= 1.0:
            return self.brake(dt_s)
        with self._scaled_limits(share):
            zeros = np.zeros_like(self.position)
            state = self._step(zeros, zeros, dt_s, ControlInterface.Velocity, synchronizations=_EACH_JOINT)
        if (
            state is None
            or (np.abs(state[1]) > self.max_velocity).any()
            or not self._can_stop_safely(*state, record=False)
        ):
            return self.brake(dt_s)
        self.active = []
        self._accept(state, stepped=True)
        return self.position.copy()

    @contextmanager
    def _scaled_limits(self, share: float):
        """Within: ruckig plans with `share` of the acceleration and jerk limits (velocity unchanged)."""
        inp = self._input
        inp.max_acceleration = (self._ruckig_acceleration * share).tolist()
        inp.max_jerk = (self.max_jerk * RUCKIG_SHARE * share).tolist()
        try:
            yield
        finally:
            inp.max_acceleration = self._ruckig_acceleration.tolist()
            inp.max_jerk = (self.max_jerk * RUCKIG_SHARE).tolist()

    def _flag(self, limit: str) -> None:
        self.activations[limit] += 1
        self.active.append(limit)

    def _require_started(self) -> None:
        if self.position is None:
            raise RuntimeError("JerkLimiter used before reset(): the start position is unknown")

    def _accept(self, state: tuple[np.ndarray, np.ndarray, np.ndarray], stepped: bool = False) -> None:
        """Make `state` the command; `stepped`: it is ruckig's trajectory `_step_s` on (from `_step`)."""
        self.position, self.velocity, self.acceleration = state
        self.commands += 1
        self.last_step_s = self._step_s if stepped else None
        if (np.abs(self.velocity) < 1e-12).all() and (np.abs(self.acceleration) < 1e-12).all():
            self.velocity = np.zeros_like(self.velocity)  # exact rest: braking is a no-op
            self.acceleration = np.zeros_like(self.acceleration)

    def _solve(
        self,
        position,
        velocity,
        acceleration,
        target,
        target_velocity,
        interface,
        duration_s=0.0,
        target_acceleration=None,
        synchronizations=_SYNCHRONIZED_FIRST,
    ) -> bool:
        inp = self._input
        inp.control_interface = interface
        inp.minimum_duration = duration_s if duration_s > 0 else None
        inp.current_position = position.tolist()
        inp.current_velocity = velocity.tolist()
        inp.current_acceleration = acceleration.tolist()
        inp.target_position = target.tolist()
        inp.target_velocity = target_velocity.tolist()
        inp.target_acceleration = [0.0] * len(target) if target_acceleration is None else target_acceleration.tolist()
        for synchronization in synchronizations:
            inp.synchronization = synchronization
            try:
                if self._otg.calculate(inp, self._trajectory) in (Result.Working, Result.Finished):
                    return True
            except (RuckigError, RuntimeError):
                pass
        return False

    def _step(
        self,
        target,
        target_velocity,
        dt_s,
        interface,
        duration_s=0.0,
        target_acceleration=None,
        synchronizations=_SYNCHRONIZED_FIRST,
    ):
        """State (position, velocity, acceleration) `dt_s` along ruckig's trajectory, or None."""
        start = (self.position, self.velocity, self.acceleration)
        solved = self._solve(
            *start, target, target_velocity, interface, duration_s, target_acceleration, synchronizations
        )
        if not solved:
            return None
        self._step_dt_s = max(dt_s, 0.0)  # the step; ruckig's trajectory may end (at rest) within it
        self._step_s = min(self._step_dt_s, self._trajectory.duration)
        p, v, a = self._trajectory.at_time(self._step_s)
        return np.array(p), np.array(v), np.array(a)

    def step_breakpoints(self) -> list[float]:
        """The motion from the command before the last one to the last one, when that came from ruckig
        (`last_step_s` is not None; else []): the instants (seconds after the command before) in
        (0, step) where some joint's jerk changes (ruckig's profile phases, its brake pre-phase
        first) and the trajectory's end when it ends within the step (at rest, or at constant
        acceleration after it). Between these and the two commands each joint's jerk is constant: the
        motion, exactly, as cubic pieces (`step_state` evaluates it). Call before the limiter plans again."""
        if self.last_step_s is None:
            return []
        instants = {self._trajectory.duration}
        for profile in self._trajectory.profiles[0]:
            offset = 0.0
            for pre in (profile.brake, profile.accel):
                if pre.duration > 0:
                    instants.update((offset + pre.t[0], offset + pre.duration))
                    offset += pre.duration
            for phase in profile.t:
                offset += phase
                instants.add(offset)
        return sorted(t for t in instants if 0.0 < t < self._step_dt_s)

    def step_state(self, tau_s: float) -> np.ndarray:
        """(3, D) position, velocity, acceleration `tau_s` after the command before the last, along the
        ruckig trajectory the last command was taken from (see `step_breakpoints`)."""
        return np.array(self._trajectory.at_time(min(max(tau_s, 0.0), self._trajectory.duration)))

    def _can_stop_safely(self, position, velocity, acceleration, record: bool = True) -> bool:
        """Does braking from this state stay inside the velocity limits, the position limits and the
        workspace? `record`: count the limit that says no (off for candidates that have a fallback).

        Braking is each joint's own time-optimal stop (`stop_phases`: what `brake` executes, ruckig's
        unsynchronised velocity-interface profile, in closed form), so its exact extent costs a few
        float operations per joint and no ruckig solve. A joint still accelerating away from rest
        speeds up by a^2 / (2 J) while its acceleration ramps down: that peak must be within its limit."""
        q = position.tolist()
        if not all(
            abs(v + a * abs(a) / (2.0 * j)) <= limit
            for v, a, j, limit in zip(velocity.tolist(), acceleration.tolist(), self._max_j, self._max_v)
        ):
            if record:
                self._flag("brake_for_velocity")
            return False
        stops = [
            (phases, *stop_extent(v, a, phases))
            for v, a, max_a, max_j in zip(velocity.tolist(), acceleration.tolist(), self._max_a, self._max_j)
            for phases in (stop_phases(v, a, max_a, max_j),)
        ]
        if not all(
            lo <= x + s[1] and x + s[2] <= hi for x, s, lo, hi in zip(q, stops, self._low_list, self._high_list)
        ):
            if record:
                self._flag("brake_for_position")
            return False
        if self.admissible is None:
            return True
        low, high, end = (position + np.array([s[k] for s in stops]) for k in (1, 2, 3))
        if self.clearance is not None and self._inside_by_clearance(position, low, high, end):
            return True
        duration = max((sum(t for _, t in s[0]) for s in stops), default=0.0)
        if self.clearance is not None:
            if self._inside_by_bisection(position, velocity, acceleration, stops, duration):
                return True
            if record:
                self._flag("workspace")
            return False
        for time_s in np.linspace(0.0, duration, self.brake_samples) if duration > 0 else (0.0,):
            offsets = [
                stop_position(v, a, s[0], time_s) for v, a, s in zip(velocity.tolist(), acceleration.tolist(), stops)
            ]
            if not self.admissible(position + np.array(offsets)):
                if record:
                    self._flag("workspace")
                return False
        return True

    def _inside_by_bisection(self, position, velocity, acceleration, stops, duration: float) -> bool:
        """Does the braking trajectory (`stops`, `duration` s) from `position` keep the link inside?
        Proven piece by piece: during the stop, joint j moves at most at |v_j| + a_j^2 / (2 J_j), so
        the link at most at `rate` m/s (link_speed_bound); on a piece [t_a, t_b] every point is within
        rate (t - t_a) of the link at t_a and rate (t_b - t) of it at t_b, so clearances c_a + c_b >
        rate (t_b - t_a) prove the piece inside. Pieces not proven are halved, up to
        `MAX_CLEARANCE_EVALUATIONS` forward kinematics; then (or at a point outside) the answer is no."""
        v_list, a_list = velocity.tolist(), acceleration.tolist()
        speeds = [abs(v) + a * a / (2.0 * j) for v, a, j in zip(v_list, a_list, self._max_j)]
        rate = float(self.link_speed_bound @ np.array(speeds)) * (1 + 1e-9)

        def clearance_at(time_s: float) -> float:
            offsets = [stop_position(v, a, s[0], time_s) for v, a, s in zip(v_list, a_list, stops)]
            return self.clearance(position + np.array(offsets))

        start, end = self.clearance(position), clearance_at(duration)
        pieces = [(0.0, duration, start, end)]
        evaluations = 2
        while pieces:
            t_a, t_b, c_a, c_b = pieces.pop()
            if c_a < 0 or c_b < 0:
                return False
            if c_a + c_b > rate * (t_b - t_a):
                continue
            if evaluations >= MAX_CLEARANCE_EVALUATIONS:
                return False
            t_m = 0.5 * (t_a + t_b)
            c_m = clearance_at(t_m)
            evaluations += 1
            pieces += [(t_a, t_m, c_a, c_m), (t_m, t_b, c_m, c_b)]
        return True

    def _clearance_suffices(self, low: np.ndarray, high: np.ndarray) -> bool:
        """Is the joint box [low, high] inside the workspace by the clearance cached at a recent command?"""
        if self.clearance is None or self._clearance_at is None:
            return False
        return self._reach_m(self._clearance_at, low, high) < self._clearance_m

    def _inside_by_clearance(self, position: np.ndarray, low: np.ndarray, high: np.ndarray, end: np.ndarray) -> bool:
        """Does the braking trajectory from `position` to `end` (D,), within the joint box [low, high]
        (D,), keep the link inside the workspace? Proven with the clearance at a recent command,
        else at `position`, else at `position` and `end`: every configuration q of the trajectory
        has sum_j L_j (|q_j - start_j| + |q_j - end_j|) <= R, so if R < clearance(start) +
        clearance(end), q is within the clearance of one of them."""
        if self._clearance_suffices(low, high):
            return True
        self._clearance_at = position.copy()
        self._clearance_m = self.clearance(position)
        if self._clearance_m < 0:
            return False
        if self._reach_m(position, low, high) < self._clearance_m:
            return True
        both = np.maximum(np.abs(low - position) + np.abs(low - end), np.abs(high - position) + np.abs(high - end))
        return float(self.link_speed_bound @ both) < self._clearance_m + self.clearance(end)

    def _reach_m(self, at: np.ndarray, low: np.ndarray, high: np.ndarray) -> float:
        """Bound on how far (metres) the link can be from where it is at joints `at`, for joints in [low, high]."""
        return float(self.link_speed_bound @ np.maximum(high - at, at - low))


def stop_phases(v: float, a: float, max_a: float, max_j: float) -> tuple[tuple[float, float], ...]:
    """One joint's time-optimal stop from velocity `v` (rad/s) and acceleration `a` (rad/s^2) to rest
    with zero acceleration within `max_a` and `max_j`: (jerk rad/s^3, duration s) of up to three
    phases (towards the acceleration that stops the joint, holding it, back to zero).

    The joint's velocity once its acceleration is ramped to zero, v + a|a| / (2 J), gives the
    direction d of the stopping acceleration; it peaks at d A when that leaves a phase of constant
    acceleration, else at d sqrt(a^2 / 2 - d J v). The same profile as ruckig's unsynchronised
    velocity interface (test/core/test_jerk_limiter.py checks it). Plain floats: for one joint they
    are several times faster than NumPy."""
    coasting = v + a * abs(a) / (2.0 * max_j)
    if coasting == 0.0:
        return ((-math.copysign(max_j, a), abs(a) / max_j),) if a else ()
    d = -1.0 if coasting > 0 else 1.0
    hold = (-d * v - (2.0 * max_a * max_a - a * a) / (2.0 * max_j)) / max_a  # time at the acceleration limit
    peak = max_a if hold >= 0 else math.sqrt(max(0.5 * a * a - d * max_j * v, 0.0))
    return ((d * max_j, (peak - d * a) / max_j), (0.0, max(hold, 0.0)), (-d * max_j, peak / max_j))


def stop_extent(v: float, a: float, phases) -> tuple[float, float, float]:
    """(lowest, highest, final) displacement (radians) of a joint along `phases` (stop_phases) from
    velocity v and acceleration a: the extremes are at the phases' ends or where the velocity is zero."""
    p = low = high = 0.0
    for j, t in phases:
        taus = [t]
        if j:
            disc = a * a - 2.0 * j * v
            if disc >= 0.0:
                root = math.sqrt(disc)
                taus += [(-a + root) / j, (-a - root) / j]
        elif a:
            taus.append(-v / a)
        for tau in taus:
            if 0.0 < tau <= t:
                x = p + tau * (v + tau * (0.5 * a + tau * j / 6.0))
                low, high = min(low, x), max(high, x)
        p, v, a = p + t * (v + t * (0.5 * a + t * j / 6.0)), v + t * (a + 0.5 * j * t), a + j * t
    return low, high, p


def stop_position(v: float, a: float, phases, time_s: float) -> float:
    """Displacement (radians) of a joint `time_s` seconds into its stop (`phases`, stop_phases)."""
    p = 0.0
    for j, t in phases:
        tau = min(max(time_s, 0.0), t)
        p, v, a = p + tau * (v + tau * (0.5 * a + tau * j / 6.0)), v + tau * (a + 0.5 * j * tau), a + j * tau
        time_s -= t
    return p


def _finite_or(values: np.ndarray | None, fallback: np.ndarray, n: int) -> np.ndarray:
    """`values` (D,) with missing/infinite entries replaced by `fallback` (D,)."""
    if values is None:
        return np.asarray(fallback, dtype=float).copy()
    values = np.asarray(values, dtype=float)
    return np.where(np.isfinite(values), values, fallback)


def scaled_limits(limits: JointLimits, speed_scale: float) -> JointLimits:
    """The limits of a motion played 1/speed_scale times slower: velocity x s, acceleration x s^2, jerk x
    s^3 (missing acceleration / jerk limits first filled as JerkLimiter fills them); s = 1: unchanged."""
    if speed_scale == 1.0:
        return limits
    n = len(limits.names)
    acceleration = _finite_or(limits.max_acceleration, limits.max_velocity / UNLIMITED_RAMP_S, n)
    jerk = _finite_or(limits.max_jerk, acceleration / UNLIMITED_RAMP_S, n)
    return JointLimits(
        limits.names,
        limits.min_position,
        limits.max_position,
        limits.max_velocity * speed_scale,
        acceleration * speed_scale**2,
        jerk * speed_scale**3,
    )
