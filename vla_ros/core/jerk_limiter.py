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
trajectory's end (see `_inside_by_clearance`). Only if these bounds cannot prove it (fast
multi-joint braking, or near the boundary) is the configuration checked at `brake_samples`
points of the braking trajectory, as without a clearance function.

Besides `track` (ruckig towards a target) and `brake`, `accept_if_safe` takes a command state
computed elsewhere (the nominal tracker, core/tracker.py) if the same invariant holds for it.

Joints without an acceleration (jerk) limit get one that reaches full speed (acceleration) in
`UNLIMITED_RAMP_S`, so ruckig always has finite limits.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable

import numpy as np
from ruckig import ControlInterface, InputParameter, Result, Ruckig, RuckigError, Synchronization, Trajectory

from vla_ros.core.types import JointLimits

UNLIMITED_RAMP_S = 0.01
_POSITION_TOLERANCE = 1e-9  # radians of float slack on the position limits


class JerkLimiter:
    """Commands (D,) that respect position, velocity, acceleration and jerk limits.

    admissible: optional check of a joint configuration (D,) -> bool (e.g. the workspace);
    checked at `brake_samples` configurations along a braking trajectory, unless `clearance`
    (joints (D,) -> metres, Workspace.clearance) and `link_speed_bound` (D,) metres per radian
    prove the whole trajectory inside.
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
        self._otg = Ruckig(n)
        self._trajectory = Trajectory(n)
        self._input = InputParameter(n)
        self._input.max_velocity = self.max_velocity.tolist()
        self._input.max_acceleration = self.max_acceleration.tolist()
        self._input.max_jerk = self.max_jerk.tolist()
        self.position: np.ndarray | None = None  # the last command (D,)
        self.velocity = np.zeros(n)
        self.acceleration = np.zeros(n)
        self.activations: Counter[str] = Counter()  # why a command differed from the request, all time
        self.active: list[str] = []  # the same, for the last command only

    def reset(self, position: np.ndarray) -> None:
        """Start at rest at `position` (e.g. the measured joints), clamped into the position limits."""
        self.position = np.clip(np.asarray(position, dtype=float), self.limits.min_position, self.limits.max_position)
        self.velocity = np.zeros_like(self.position)
        self.acceleration = np.zeros_like(self.position)
        self._clearance_at = None
        self.commands += 1

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
    ) -> np.ndarray:
        """The next command, `dt_s` after the last one, towards `target` (D,) moving at
        `target_velocity` (D,) and accelerating at `target_acceleration` (D,) (default 0; dropped
        where the target is clamped, and entirely if ruckig cannot reach it), to be reached
        `arrive_in_s` after the last command (or as soon as the limits allow, if later)."""
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
        velocity = np.where(clamped != target, 0.0, np.clip(velocity, -self.max_velocity, self.max_velocity))
        acceleration = None
        if target_acceleration is not None and np.isfinite(target_acceleration).all():
            bounded = np.clip(target_acceleration, -self.max_acceleration, self.max_acceleration)
            acceleration = np.where(clamped != target, 0.0, bounded)
        # the trajectory lasts at least one tick, so the command is a point on it (not past its end)
        state = self._step(clamped, velocity, dt_s, ControlInterface.Position, max(arrive_in_s, dt_s), acceleration)
        if state is None and acceleration is not None:
            state = self._step(clamped, velocity, dt_s, ControlInterface.Position, max(arrive_in_s, dt_s))
        if state is None:
            self._flag("ruckig_error")
            return self.brake(dt_s)
        if not self._can_stop_safely(*state):
            return self.brake(dt_s)
        self._accept(state)
        return self.position.copy()

    def brake(self, dt_s: float) -> np.ndarray:
        """Decelerate towards rest within the acceleration and jerk limits (the hold command)."""
        self._require_started()
        if not self.at_rest:
            state = self._step(self.position, np.zeros_like(self.position), dt_s, ControlInterface.Velocity)
            if state is None:  # cannot happen for valid limits; never leave the last position
                self._flag("ruckig_error")
                state = (self.position, np.zeros_like(self.position), np.zeros_like(self.position))
            self._accept(state)
        return self.position.copy()

    def _flag(self, limit: str) -> None:
        self.activations[limit] += 1
        self.active.append(limit)

    def _require_started(self) -> None:
        if self.position is None:
            raise RuntimeError("JerkLimiter used before reset(): the start position is unknown")

    def _accept(self, state: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        self.position, self.velocity, self.acceleration = state
        self.commands += 1
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
        for synchronization in (Synchronization.Time, Synchronization.No):  # unsynchronised: the robust fallback
            inp.synchronization = synchronization
            try:
                if self._otg.calculate(inp, self._trajectory) in (Result.Working, Result.Finished):
                    return True
            except (RuckigError, RuntimeError):
                pass
        return False

    def _step(self, target, target_velocity, dt_s, interface, duration_s=0.0, target_acceleration=None):
        """State (position, velocity, acceleration) `dt_s` along ruckig's trajectory, or None."""
        start = (self.position, self.velocity, self.acceleration)
        if not self._solve(*start, target, target_velocity, interface, duration_s, target_acceleration):
            return None
        p, v, a = self._trajectory.at_time(min(max(dt_s, 0.0), self._trajectory.duration))
        return np.array(p), np.array(v), np.array(a)

    def _can_stop_safely(self, position, velocity, acceleration, record: bool = True) -> bool:
        """Does braking from this state stay inside the position limits and the workspace?
        `record`: count the limit that says no (off for candidates that have a fallback).

        First with a box every joint's stop stays in (it ends at rest with zero acceleration after
        the braking time T, so it moved at most min(jerk T^3 / 6, acceleration T^2 / 2)): cheap,
        and enough away from the limits; else with the braking trajectory's exact range."""
        zeros = np.zeros_like(position)
        if not self._solve(position, velocity, acceleration, zeros, zeros, ControlInterface.Velocity):
            return False
        duration = self._trajectory.duration
        # every joint is at rest with zero acceleration at the end: it moved at most jerk T^3 / 6, acceleration T^2 / 2
        reach = np.minimum(self.max_jerk * duration**3 / 6, self.max_acceleration * duration**2 / 2)
        low, high = position - reach, position + reach
        exact = False
        if not self._inside_limits(low, high):
            (low, high), exact = self._brake_range(position), True
            if not self._inside_limits(low, high):
                if record:
                    self._flag("brake_for_position")
                return False
        if self.admissible is None:
            return True
        exact_range = None if exact else self._brake_range
        if self.clearance is not None and self._inside_by_clearance(position, low, high, exact_range):
            return True
        if all(
            self.admissible(np.array(self._trajectory.at_time(t)[0]))
            for t in (np.linspace(0.0, duration, self.brake_samples) if duration > 0 else (0.0,))
        ):
            return True
        if record:
            self._flag("workspace")
        return False

    def _inside_limits(self, low: np.ndarray, high: np.ndarray) -> bool:
        lower, upper = self.limits.min_position - _POSITION_TOLERANCE, self.limits.max_position + _POSITION_TOLERANCE
        return bool((low >= lower).all() and (high <= upper).all())

    def _clearance_suffices(self, low: np.ndarray, high: np.ndarray) -> bool:
        """Is the joint box [low, high] inside the workspace by the clearance cached at a recent command?"""
        if self.clearance is None or self._clearance_at is None:
            return False
        return self._reach_m(self._clearance_at, low, high) < self._clearance_m

    def _brake_range(self, position: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) (D,): the exact position range of the braking trajectory just solved, from its
        phases (jerk-constant pieces: the extrema are at their ends or where the velocity is zero).
        (ruckig 0.19's `position_extrema` is stale for velocity-interface trajectories: it keeps
        values of an earlier calculation, so it is not used.)"""
        profiles = self._trajectory.profiles[0]
        if not any(profile.brake.duration > 0 for profile in profiles):  # usual: 7 phases per joint
            rows = np.array([[*pr.p[:7], *pr.v[:7], *pr.a[:7], *pr.j, *pr.t] for pr in profiles])  # (D, 35)
            p, v, a, j, t = (rows[:, 7 * k : 7 * k + 7] for k in range(5))
        else:  # a joint first brakes into its limits: its brake phases come first
            phases = []  # per joint: (start position, velocity, acceleration, jerk, duration) of each phase
            for profile in profiles:
                b = profile.brake
                pieces = [(b.p, b.v, b.a, b.j, b.t), (profile.p, profile.v, profile.a, profile.j, profile.t)]
                arrays = [np.array([p[: len(t)], v[: len(t)], a[: len(t)], j, t]) for p, v, a, j, t in pieces]
                phases.append(np.concatenate(arrays, axis=1))
            p, v, a, j, t = np.moveaxis(np.array(phases), 1, 0)  # each (D, phases)
        # velocity zeros in each phase, v + a tau + j tau^2 / 2 = 0 (where there are none: its turning point)
        root = np.sqrt(np.maximum(a * a - 2 * j * v, 0.0))
        linear = np.divide(-v, a, out=np.zeros_like(v), where=a != 0)
        first = np.divide(root - a, j, out=linear.copy(), where=j != 0)
        second = np.divide(-root - a, j, out=linear, where=j != 0)
        taus = np.stack([np.zeros_like(t), t, np.clip(first, 0.0, t), np.clip(second, 0.0, t)])
        values = p + taus * (v + taus * (a / 2 + taus * j / 6))  # (4, D, phases)
        return np.minimum(values.min(axis=(0, 2)), position), np.maximum(values.max(axis=(0, 2)), position)

    def _inside_by_clearance(self, position: np.ndarray, low: np.ndarray, high: np.ndarray, exact_range=None) -> bool:
        """Does the braking trajectory just solved (from `position`, within the joint box [low, high]
        (D,)) keep the link inside the workspace? Proven with the clearance at a recent command,
        else at `position`, else at `position` and the trajectory's end: every configuration q of
        the trajectory has sum_j L_j (|q_j - start_j| + |q_j - end_j|) <= R, so if R < clearance(start)
        + clearance(end), q is within the clearance of one of them. `exact_range(position)`: a
        tighter box to try the same with, if the first one does not suffice."""
        if self._clearance_suffices(low, high):
            return True
        self._clearance_at = position.copy()
        self._clearance_m = self.clearance(position)
        if self._clearance_m < 0:
            return False
        end, end_clearance = None, 0.0
        for box in ((low, high), None):
            if box is None:
                if exact_range is None:
                    return False
                low, high = exact_range(position)
            if self._reach_m(position, low, high) < self._clearance_m:
                return True
            if end is None:
                end = np.array(self._trajectory.at_time(self._trajectory.duration)[0])
                end_clearance = self.clearance(end)
            both = np.maximum(np.abs(low - position) + np.abs(low - end), np.abs(high - position) + np.abs(high - end))
            if float(self.link_speed_bound @ both) < self._clearance_m + end_clearance:
                return True
        return False

    def _reach_m(self, at: np.ndarray, low: np.ndarray, high: np.ndarray) -> float:
        """Bound on how far (metres) the link can be from where it is at joints `at`, for joints in [low, high]."""
        return float(self.link_speed_bound @ np.maximum(high - at, at - low))


def _finite_or(values: np.ndarray | None, fallback: np.ndarray, n: int) -> np.ndarray:
    """`values` (D,) with missing/infinite entries replaced by `fallback` (D,)."""
    if values is None:
        return np.asarray(fallback, dtype=float).copy()
    values = np.asarray(values, dtype=float)
    return np.where(np.isfinite(values), values, fallback)
