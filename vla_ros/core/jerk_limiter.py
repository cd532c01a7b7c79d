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
position limits minus the margin; the margin is the room braking may use.

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
    checked at `brake_samples` configurations along every braking trajectory.
    """

    def __init__(
        self,
        limits: JointLimits,
        position_margin_rad: float = 0.0,
        admissible: Callable[[np.ndarray], bool] | None = None,
        brake_samples: int = 4,
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

    @property
    def at_rest(self) -> bool:
        return self.position is not None and not np.any(self.velocity) and not np.any(self.acceleration)

    def track(
        self, target: np.ndarray, target_velocity: np.ndarray | None, dt_s: float, arrive_in_s: float = 0.0
    ) -> np.ndarray:
        """The next command, `dt_s` after the last one, towards `target` (D,) moving at
        `target_velocity` (D,), to be reached `arrive_in_s` after the last command (or as soon
        as the limits allow, if later)."""
        self._require_started()
        self.active = []
        target = np.asarray(target, dtype=float)
        velocity = np.zeros_like(target) if target_velocity is None else np.asarray(target_velocity, dtype=float)
        if target.shape != self.position.shape or not (np.all(np.isfinite(target)) and np.all(np.isfinite(velocity))):
            self._flag("invalid_target")
            return self.brake(dt_s)
        clamped = np.clip(target, self.lower, self.upper)
        if np.any(clamped != target):
            self._flag("position")
        velocity = np.where(clamped != target, 0.0, np.clip(velocity, -self.max_velocity, self.max_velocity))
        # the trajectory lasts at least one tick, so the command is a point on it (not past its end)
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
        if np.all(np.abs(self.velocity) < 1e-12) and np.all(np.abs(self.acceleration) < 1e-12):
            self.velocity = np.zeros_like(self.velocity)  # exact rest: braking is a no-op
            self.acceleration = np.zeros_like(self.acceleration)

    def _solve(self, position, velocity, acceleration, target, target_velocity, interface, duration_s=0.0) -> bool:
        inp = self._input
        inp.control_interface = interface
        inp.minimum_duration = duration_s if duration_s > 0 else None
        inp.current_position = position.tolist()
        inp.current_velocity = velocity.tolist()
        inp.current_acceleration = acceleration.tolist()
        inp.target_position = target.tolist()
        inp.target_velocity = target_velocity.tolist()
        inp.target_acceleration = [0.0] * len(target)
        for synchronization in (Synchronization.Time, Synchronization.No):  # unsynchronised: the robust fallback
            inp.synchronization = synchronization
            try:
                if self._otg.calculate(inp, self._trajectory) in (Result.Working, Result.Finished):
                    return True
            except (RuckigError, RuntimeError):
                pass
        return False

    def _step(self, target, target_velocity, dt_s, interface, duration_s=0.0):
        """State (position, velocity, acceleration) `dt_s` along ruckig's trajectory, or None."""
        if not self._solve(
            self.position, self.velocity, self.acceleration, target, target_velocity, interface, duration_s
        ):
            return None
        p, v, a = self._trajectory.at_time(min(max(dt_s, 0.0), self._trajectory.duration))
        return np.array(p), np.array(v), np.array(a)

    def _can_stop_safely(self, position, velocity, acceleration) -> bool:
        """Does braking from this state stay inside the position limits and the workspace?"""
        zeros = np.zeros_like(position)
        if not self._solve(position, velocity, acceleration, zeros, zeros, ControlInterface.Velocity):
            return False
        extrema = self._trajectory.position_extrema
        low = np.array([e.min for e in extrema])
        high = np.array([e.max for e in extrema])
        if np.any(low < self.limits.min_position - _POSITION_TOLERANCE) or np.any(
            high > self.limits.max_position + _POSITION_TOLERANCE
        ):
            self._flag("brake_for_position")
            return False
        if self.admissible is None:
            return True
        duration = self._trajectory.duration
        for t in np.linspace(0.0, duration, self.brake_samples) if duration > 0 else (0.0,):
            if not self.admissible(np.array(self._trajectory.at_time(t)[0])):
                self._flag("workspace")
                return False
        return True


def _finite_or(values: np.ndarray | None, fallback: np.ndarray, n: int) -> np.ndarray:
    """`values` (D,) with missing/infinite entries replaced by `fallback` (D,)."""
    if values is None:
        return np.asarray(fallback, dtype=float).copy()
    values = np.asarray(values, dtype=float)
    return np.where(np.isfinite(values), values, fallback)
