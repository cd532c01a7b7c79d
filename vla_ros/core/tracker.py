"""Nominal plan tracking, with the jerk limiter as the safety filter.

The plan (core/plan.py) is a C2 cubic spline: it has a position, velocity and acceleration at
every instant and a bounded jerk. The nominal command is the plan's own state at the tick's
time, plus a correction that joins the plan from wherever the command was: the command's offset
from the plan (position, velocity, acceleration) blended to zero by a quintic over `T` seconds,
started whenever the command left the plan (a new plan, a hold, or a filtered tick). So the
commanded jerk is the plan's (plus a decaying blend), not ruckig's bang-bang profiles.

The nominal command is used only when it provably keeps every limit:
  - on the plan segments the tick (and the running correction) spans, the plan's exact position
    range, |velocity|, |acceleration| and |jerk| maxima (closed form per cubic segment, computed
    once per plan) plus the correction's bounds are within the position, velocity, acceleration
    and jerk limits (so the continuous command, not only its samples, is within them; the plan's
    points are inside the limits minus the margin, the spline may overshoot them into the margin);
  - braking from it stays inside the position limits and the workspace (JerkLimiter.accept_if_safe,
    the limiter's invariant).
Otherwise the command is the limiter's ruckig step towards the plan's state `lookahead_s` ahead
(which keeps the same limits and invariant, or brakes; with `filter_share` of the acceleration and
jerk limits where that is safe), and a new correction starts from it. Both
kinds of step start from the last command's position, velocity and acceleration, so the command
stays continuous in all three.

A chunk that no smoothing keeps within the limits is slowed down by the plan itself (core/plan.py),
so the filter is for chunks that ask far too much. After a stalled control thread (a tick later
than the time it may integrate) the command moves along the plan by that time only and a blend
takes up the lag (`_catch_up`), never one step for the whole stall.

Cost: a tick that follows the plan evaluates two small polynomials and the closed-form braking
check (forward kinematics only near the workspace's boundary); no ruckig call.
"""

from __future__ import annotations

import numpy as np

from vla_ros.core.jerk_limiter import JerkLimiter
from vla_ros.core.plan import Plan, derivative_basis

# quintic Hermite blends on [0, 1] (power-series coefficients): from unit position / velocity /
# acceleration (rows) at 0 to rest at 0 at 1
_BLEND = np.array(
    [
        [1.0, 0.0, 0.0, -10.0, 15.0, -6.0],
        [0.0, 1.0, 0.0, -6.0, 8.0, -3.0],
        [0.0, 0.0, 0.5, -1.5, 1.5, -0.5],
    ]
)


def _blend_maxima() -> np.ndarray:
    """(3, 4): max over [0, 1] of |d^k/dtau^k| of each blend (rows), k = 0..3 (columns), rounded up."""
    tau = np.linspace(0.0, 1.0, 20001)
    out = np.empty((3, 4))
    for k in range(4):
        for i in range(3):
            derivative = np.polynomial.polynomial.polyder(_BLEND[i], k)
            out[i, k] = np.abs(np.polynomial.polynomial.polyval(tau, derivative)).max()
    return out * (1 + 1e-6)


_BLEND_MAX = _blend_maxima()
BLEND_DURATIONS_S = (0.05, 0.075, 0.1, 0.15, 0.2, 0.3)  # the shortest whose jerk fits is used; none: filter on
_ROUNDING = np.array([[1e-12], [1e-12], [1e-10]])  # offsets (position, velocity, acceleration) not worth a blend
BLEND_JERK_SHARE = 0.5  # of the jerk limit, what a correction may use (the plan gets the rest)


class PlanTracker:
    """Commands (D,) for a Plan through a JerkLimiter (which holds the commanded state)."""

    def __init__(self, limiter: JerkLimiter, filter_share: float = 1.0):
        """`filter_share`: the filter steers with this share of the acceleration and jerk limits where
        that keeps every limit (JerkLimiter.track), so a catch-up is not bang-bang in jerk."""
        self.limiter = limiter
        self.filter_share = filter_share
        self.filtered_ticks = 0  # ticks whose command came from the ruckig filter, all time
        self.nominal_ticks = 0
        self.last_mode = ""  # "nominal", "filter" (braking from the nominal would leave a limit), "filter_dynamics"
        self._plan_version = -1
        self._commands_seen = -1
        self._state = np.empty((3, len(limiter.lower)))
        self._blend_state = np.empty_like(self._state)
        self._blend_end_s = -np.inf
        self._blend_ok = True
        self._last_step_s = -np.inf  # time of the last command this tracker made

    def prepare(self, plan: Plan) -> None:
        """Derive what the ticks need from a new `plan` (anchored at the last command) now: its
        feasible segments and the join from the command. `step` does it itself if not done."""
        if plan.empty:
            return
        self._compile(plan)
        self._start_blend(plan, float(plan.knot_times_s[0]))
        self._commands_seen = self.limiter.commands
        self._last_step_s = float(plan.knot_times_s[0])  # the anchor: the last command's time

    def step(self, plan: Plan, now_s: float, dt_s: float, lookahead_s: float) -> np.ndarray:
        """The command (D,) for `now_s`, `dt_s` after the last command, following `plan` (not empty);
        where the filter acts, it steers to the plan's state `lookahead_s` ahead (at most its end)."""
        lim = self.limiter
        last_s = now_s - dt_s
        if plan.version != self._plan_version:
            self._compile(plan)
            self._start_blend(plan, last_s)
        elif lim.commands != self._commands_seen:  # someone else commanded (a hold): join from there
            self._start_blend(plan, last_s)
        # after a stall (the tick came later than the `dt_s` it may integrate; a quarter of it is clock
        # noise) the plan's state at now_s would be one step for the whole stall: the command moves
        # along the plan by dt_s only, and a blend (or the filter) catches up within the limits
        stalled = lim.commands == self._commands_seen and now_s - self._last_step_s > 1.25 * dt_s
        if stalled and self._catch_up(plan, self._last_step_s, dt_s, now_s):
            self._commands_seen, self._last_step_s = lim.commands, now_s
            return lim.position.copy()
        state = self._reference(plan, now_s)
        feasible = not stalled and self._feasible(plan, last_s, now_s)
        if feasible and lim.accept_if_safe(state):
            self.nominal_ticks += 1
            self.last_mode = "nominal"
        else:
            self.last_mode = "filter" if feasible or stalled else "filter_dynamics"
            lookahead_s = min(lookahead_s, max(plan.end_time_s - now_s, 0.0))  # never past the end (at rest there)
            target = plan.state_at(now_s + lookahead_s, self._state)
            lim.track(
                target[0],
                target[1],
                dt_s,
                arrive_in_s=lookahead_s + dt_s,
                target_acceleration=target[2],
                share=self.filter_share,
            )
            if not feasible and not stalled:
                lim.active.append("dynamics")  # the plan (or the join to it) asks for more than the limits allow
            self._start_blend(plan, now_s)
            self.filtered_ticks += 1
        self._commands_seen = lim.commands
        self._last_step_s = now_s
        return lim.position.copy()

    def _catch_up(self, plan: Plan, last_s: float, dt_s: float, now_s: float) -> bool:
        """After a stall: command the reference `dt_s` after the last command (the plan's own motion,
        no step), then blend the lag to the plan at `now_s` away. False if that is not provably safe."""
        if not self._feasible(plan, last_s, last_s + dt_s):
            return False
        if not self.limiter.accept_if_safe(self._reference(plan, last_s + dt_s)):
            return False
        self._start_blend(plan, now_s)
        self.nominal_ticks += 1
        self.last_mode = "catch_up"
        return True

    def reference_breakpoints(self, plan: Plan, from_s: float, to_s: float) -> list[float]:
        """After a nominal (or catch-up) step from `from_s` to `to_s`: the instants in between where the
        reference's polynomial changes (the plan's knots, the blend's end). Between these and the two
        commands the reference is one polynomial of degree <= 5 per joint: the motion, exactly, as
        polynomial pieces (`reference_state` evaluates it; core/plan_stream.py sends them)."""
        times = [t for t in plan.knot_times_s.tolist() if from_s < t < to_s]
        if self._blend_ok and from_s < self._blend_end_s < to_s:
            times.append(float(self._blend_end_s))
        return sorted(times)

    def reference_state(self, plan: Plan, t_s: float) -> np.ndarray:
        """(3, D) position, velocity, acceleration of the reference (plan + blend) at t_s (a copy)."""
        return self._reference(plan, t_s).copy()

    # --- the reference: plan + blend ------------------------------------------------------------
    def _reference(self, plan: Plan, t_s: float) -> np.ndarray:
        """(3, D) position, velocity, acceleration of plan + blend at t_s (a view, valid until the next call)."""
        state = plan.state_at(t_s, self._state)
        if t_s < self._blend_end_s and self._blend_ok:
            state += np.matmul(derivative_basis(t_s - self._blend_start_s, 5), self._blend, out=self._blend_state)
        return state

    def _start_blend(self, plan: Plan, t_s: float) -> None:
        """Blend the command's offset from the plan at t_s to zero; pick its duration, check its bounds."""
        lim = self.limiter
        offset = np.stack([lim.position, lim.velocity, lim.acceleration]) - plan.state_at(t_s, self._state)
        if (np.abs(offset) <= _ROUNDING).all():  # the plan starts at the command (up to rounding)
            self._blend_end_s = -np.inf
            self._blend_ok = True
            return
        if plan.segment(t_s) == len(plan.segment_bounds[0]) - 1:  # the plan has ended: ruckig stops on its end exactly
            self._blend_end_s = np.inf
            self._blend_ok = False
            return
        size = np.abs(offset)  # (3, D): |offset| of position, velocity, acceleration
        durations = np.array(BLEND_DURATIONS_S)[:, None]
        jerk = (
            size[0] * _BLEND_MAX[0, 3] / durations**3
            + size[1] * _BLEND_MAX[1, 3] / durations**2
            + size[2] * _BLEND_MAX[2, 3] / durations
        )  # (len(durations), D)
        fits = (jerk <= BLEND_JERK_SHARE * lim.max_jerk).all(axis=1)
        if not fits.any():  # too far from the plan to join it smoothly yet: the filter steers on
            self._blend_end_s = np.inf
            self._blend_ok = False
            return
        duration = BLEND_DURATIONS_S[int(np.argmax(fits))]
        scale = np.array([1.0, duration, duration**2])[:, None]
        weights = offset * scale  # blend weights in tau = (t - start) / duration
        self._blend = (_BLEND.T @ weights) / np.power(duration, np.arange(6))[:, None]  # (6, D), in seconds
        self._blend_start_s, self._blend_end_s = t_s, t_s + duration
        # bounds of the blend's position and derivatives over its whole duration: (4, D)
        per_order = np.power(duration, -np.arange(4.0))[:, None]
        blend_max = (_BLEND_MAX.T @ (size * scale)) * per_order
        first, last = plan.segment(t_s), plan.segment(self._blend_end_s)
        self._blend_ok = self._within(first, last, blend_max)

    # --- feasibility -----------------------------------------------------------------------------
    def _compile(self, plan: Plan) -> None:
        """Which segments of a new plan keep the limits by themselves (plan.segment_bounds)."""
        self._plan_version = plan.version
        self._pos_min, self._pos_max, self._vel, self._acc, self._jerk = plan.segment_bounds
        self._end_jump = plan.end_acceleration_jump
        self._rest = len(self._vel) - 1  # index of the segment after the end
        self._start_s = plan.knot_times_s[0]
        lim = self.limiter
        low, high = lim.limits.min_position, lim.limits.max_position
        ok = (
            (self._pos_min >= low)
            & (self._pos_max <= high)
            & (self._vel <= lim.max_velocity)
            & (self._acc <= lim.max_acceleration)
            & (self._jerk <= lim.max_jerk)
        ).all(axis=1)
        self._bad_before = np.concatenate([[0], np.cumsum(~ok)]).tolist()  # bad segments before index i

    def _within(self, first: int, last: int, extra: np.ndarray) -> bool:
        """Do segments first..last plus `extra` (4, D) (position, velocity, acceleration, jerk) keep the limits?"""
        lim = self.limiter
        if self._end_jump and first < self._rest == last:
            return False
        s = slice(first, last + 1)
        return bool(
            (self._pos_min[s] - extra[0] >= lim.limits.min_position).all()
            and (self._pos_max[s] + extra[0] <= lim.limits.max_position).all()
            and (self._vel[s] + extra[1] <= lim.max_velocity).all()
            and (self._acc[s] + extra[2] <= lim.max_acceleration).all()
            and (self._jerk[s] + extra[3] <= lim.max_jerk).all()
        )

    def _feasible(self, plan: Plan, from_s: float, to_s: float) -> bool:
        """Does the reference between from_s and to_s keep the position, velocity, acceleration and jerk limits?"""
        if to_s < self._start_s:
            return False  # before the plan's start (its bounds do not cover that)
        from_s = max(from_s, self._start_s)  # the last command is the plan's start at the latest (clock noise)
        if from_s < self._blend_end_s and not self._blend_ok:
            return False  # no smooth join yet
        first, last = plan.segment(from_s), plan.segment(to_s)
        if self._end_jump and first < self._rest == last:
            return False
        return self._bad_before[last + 1] == self._bad_before[first]
