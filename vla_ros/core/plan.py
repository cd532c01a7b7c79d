"""The executor's time-indexed plan: joint targets at absolute times, sampled at control rate.

A chunk's point i is due at `t0 + (i + 1) * dt`. Merging a chunk drops the points already in
the past (latency compensation: the time spent inferring is skipped, not replayed) and starts
the new plan from where the command is now, moving and accelerating as the command does, so the
switch has no position, velocity or acceleration jump. Between points the plan is a cubic spline
with continuous acceleration (C2): it starts with the command's velocity and acceleration and
ends at rest with zero acceleration (the arm stops where the plan ends, smoothly). Matching the
two extra end conditions takes one free knot each, in the middle of the first and of the last
interval (thirds when there is only one). With limits given, the spline is smoothed to keep them,
and a chunk that no smoothing keeps within them is slowed down (its point times stretched from the
anchor; `time_scale`). How the new chunk meets the running plan is the blend mode:

  replace             the new chunk's points, as they are
  guided              as replace; the chunk was inferred to continue the running plan (RTC), the
                      executor publishes the plan ahead for that (`ahead`)
  crossfade           new = (1 - w) old + w new, w rising linearly from 0 to 1 over `crossfade_s`
  temporal_ensemble   ACT: every prediction for a time is averaged with weight exp(-m i),
                      i = 0 for the oldest prediction (m = `ensemble_m`)
"""

from __future__ import annotations

from bisect import bisect_right

import numpy as np

from vla_ros.core.types import ActionChunk

BLEND_MODES = ("replace", "crossfade", "temporal_ensemble", "guided")


class Plan:
    """Cubic Hermite joint trajectory: times (N,) seconds, positions (N, D) radians, tangents (N, D) rad/s.

    `weights` (N,) holds, per point, the sum of the ensemble weights merged into it and `count`
    (N,) how many chunks predicted it (used by temporal_ensemble only). The spline's knots are
    the points plus the two free ones: `knot_times_s` (M,), and `coefficients` (M-1, 4, D) are
    segment i's power-series coefficients in the seconds since knot i; `segment_bounds` their
    exact position range and |velocity|, |acceleration|, |jerk| maxima (see `_bounds`). `version`
    counts the changes (merge, clear), so followers can cache what they derive from the plan.
    """

    def __init__(
        self,
        num_joints: int,
        blend: str = "replace",
        crossfade_s: float = 0.2,
        ensemble_m: float = 0.1,
        position_range: tuple[np.ndarray, np.ndarray] | None = None,
        smooth_within: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        limit_share: float = 1.0,
    ):
        """position_range: (lower (D,), upper (D,)) the chunk's points are clamped into (default: none).
        smooth_within: the (max velocity, max acceleration, max jerk) limits (D,) each: smooth the
        spline until it keeps `limit_share` of them, else the limits themselves, else slow it down
        until it does (see `_fit_in_time`; default: interpolate the points exactly)."""
        if blend not in BLEND_MODES:
            raise ValueError(f"unknown blend mode '{blend}' (one of {list(BLEND_MODES)})")
        if crossfade_s <= 0 or ensemble_m < 0:
            raise ValueError(f"crossfade_s must be > 0 and ensemble_m >= 0, got {crossfade_s}, {ensemble_m}")
        self.num_joints = num_joints
        self.blend = blend
        self.crossfade_s = crossfade_s
        self.ensemble_m = ensemble_m
        self.position_range = position_range
        self.smooth_within = smooth_within
        self.limit_share = limit_share
        self.version = 0
        self.clear()

    def clear(self) -> None:
        if getattr(self, "times_s", None) is not None and self.times_s.size == 0:
            return  # already empty (holding calls this every tick)
        self.times_s = np.empty(0)
        self.positions = np.empty((0, self.num_joints))
        self.tangents = np.empty((0, self.num_joints))
        self.weights = np.empty(0)
        self.count = np.empty(0, dtype=int)
        self._changed(np.zeros(self.num_joints), np.zeros(self.num_joints))

    def _changed(self, start_velocity: np.ndarray, start_acceleration: np.ndarray) -> None:
        self.version += 1
        requested = self.times_s
        self.time_scale, self.knot_times_s, knots, tangents, is_point = _fit_in_time(
            self.times_s, self.positions, start_velocity, start_acceleration, self.smooth_within, self.limit_share
        )
        if self.time_scale != 1.0:
            self.times_s = self.times_s[0] + self.time_scale * (self.times_s - self.times_s[0])
        self.tangents = tangents[is_point]
        self.coefficients = _coefficients(self.knot_times_s, knots, tangents)
        self._interpolating, self._interpolating_times = self.coefficients, self.knot_times_s.tolist()
        if self.smooth_within is not None and len(requested) > 2:
            knot_t, knots, tangents, _, _ = _spline(requested, self.positions, start_velocity, start_acceleration)
            self._interpolating, self._interpolating_times = _coefficients(knot_t, knots, tangents), knot_t.tolist()
        self._times_list = self.knot_times_s.tolist()  # bisect on a list: no array call per tick
        self._rest = np.zeros((3, self.num_joints))  # (position, velocity, acceleration) after the end
        if self.times_s.size:
            self._rest[0] = self.positions[-1]
        self._bounds()

    def _bounds(self) -> None:
        """Per segment, and at rest after the end (the last row): position min and max, max |velocity|,
        max |acceleration|, |jerk| (S + 1, D) each; and whether reaching the end steps the acceleration."""
        c = self.coefficients
        h = np.diff(self.knot_times_s)[:, None]
        bounds = cubic_bounds(c, np.zeros_like(h), h)
        end = self._rest[:1]
        rest = np.zeros_like(end)
        self.segment_bounds = tuple(np.vstack([b, r]) for b, r in zip(bounds, (end, end, rest, rest, rest)))
        self.end_acceleration_jump = bool(len(c) and (np.abs(2 * c[-1, 2] + 6 * h[-1] * c[-1, 3]) > 1e-9).any())

    @property
    def empty(self) -> bool:
        return self.times_s.size == 0

    @property
    def end_time_s(self) -> float:
        """Time of the last point (-inf for an empty plan)."""
        return float(self.times_s[-1]) if self.times_s.size else -np.inf

    def merge(
        self,
        chunk: ActionChunk,
        now_s: float,
        current_command: np.ndarray,
        current_velocity: np.ndarray | None = None,
        current_acceleration: np.ndarray | None = None,
        anchor_s: float | None = None,
    ) -> int:
        """Blend the chunk's future points into the plan, anchored at (anchor_s, current_command)
        moving at `current_velocity` (D,) rad/s and accelerating at `current_acceleration` (D,)
        rad/s^2 (defaults: at rest). anchor_s: when the current command was due (default now_s;
        the last control tick, at most now_s, joins the command without a time step).

        Returns how many of the chunk's points were dropped as already past.
        """
        anchor_s = now_s if anchor_s is None else min(anchor_s, now_s)
        times = chunk.times_s()
        future = times > now_s
        new_t, new_p = _spaced(times[future], chunk.positions[future], anchor_s)
        weights, count = np.ones(new_t.size), np.ones(new_t.size, dtype=int)
        covered = (new_t <= self.end_time_s) if not self.empty else np.zeros(new_t.size, bool)
        if covered.any() and self.blend == "crossfade":
            w = np.clip((new_t - now_s) / self.crossfade_s, 0.0, 1.0)[:, None]
            old = self._sample_many(new_t)
            new_p = np.where(covered[:, None], (1 - w) * old + w * new_p, new_p)
        elif covered.any() and self.blend == "temporal_ensemble":
            old = self._sample_many(new_t)
            idx = np.clip(np.searchsorted(self.times_s, new_t, side="right") - 1, 0, self.times_s.size - 1)
            old_w, old_n = self.weights[idx], self.count[idx]
            w_new = np.exp(-self.ensemble_m * old_n)  # the newest prediction has the largest i
            blended = (old_w[:, None] * old + w_new[:, None] * new_p) / (old_w + w_new)[:, None]
            new_p = np.where(covered[:, None], blended, new_p)
            weights = np.where(covered, old_w + w_new, 1.0)
            count = np.where(covered, old_n + 1, 1)
        if self.position_range is not None:
            new_p = np.clip(new_p, *self.position_range)
        self.times_s = np.concatenate([[anchor_s], new_t])
        self.positions = np.vstack([np.asarray(current_command, float)[None, :], new_p])
        self.weights = np.concatenate([[1.0], weights])
        self.count = np.concatenate([[1], count])
        start_velocity = np.zeros(self.num_joints) if current_velocity is None else np.asarray(current_velocity, float)
        start_acceleration = (
            np.zeros(self.num_joints) if current_acceleration is None else np.asarray(current_acceleration, float)
        )
        self._changed(start_velocity, start_acceleration)
        return int(np.count_nonzero(~future))

    def _sample_many(self, times: np.ndarray) -> np.ndarray:
        return np.stack([self.sample(t) for t in times])

    def sample(self, t_s: float) -> np.ndarray | None:
        """Target (D,) at time t_s; the last point after the end; None if empty."""
        state = self.sample_state(t_s)
        return None if state is None else state[0]

    def sample_state(self, t_s: float) -> tuple[np.ndarray, np.ndarray] | None:
        """(position (D,), velocity (D,)) at time t_s; at rest on the end points outside; None if empty."""
        if self.empty:
            return None
        if t_s <= self.times_s[0]:
            return self.positions[0].copy(), self.tangents[0].copy()
        state = self.state_at(t_s, np.empty((3, self.num_joints)))
        return state[0], state[1]

    def interpolated(self, t_s: float) -> np.ndarray | None:
        """Position (D,) at t_s of the spline through the points exactly at their requested times (the
        plan before smoothing and slowing), as `sample`; None if empty. What a chunk asked for, to
        compare blend modes by."""
        if self.empty:
            return None
        if t_s <= self.times_s[0]:
            return self.positions[0].copy()
        times = self._interpolating_times
        i = bisect_right(times, t_s) - 1
        if i >= len(times) - 1:
            return self.positions[-1].copy()
        return derivative_basis(t_s - times[i], 3)[0] @ self._interpolating[i]

    def segment(self, t_s: float) -> int:
        """Index of the segment that holds t_s: 0 up to the first point (extrapolated before it),
        N-1 (past the last segment: at rest on the last point) from the end on."""
        return min(max(bisect_right(self._times_list, t_s) - 1, 0), len(self._times_list) - 1)

    def state_at(self, t_s: float, out: np.ndarray) -> np.ndarray:
        """(position, velocity, acceleration) (3, D) at t_s into `out`; segment 0's cubic before the
        first point, at rest on the last point from the end on. The plan must not be empty."""
        i = self.segment(t_s)
        if i == len(self._times_list) - 1:
            out[:] = self._rest
            return out
        return np.matmul(derivative_basis(t_s - self._times_list[i], 3), self.coefficients[i], out=out)

    def ahead(self, now_s: float) -> tuple[np.ndarray, np.ndarray]:
        """The plan from `now_s` on: times (K,) (now_s first, then the later points) and positions (K, D)."""
        later = self.times_s > now_s
        times = np.concatenate([[now_s], self.times_s[later]])
        return times, np.vstack([self.sample(now_s)[None, :], self.positions[later]])


_POWERS = {d: np.array([[max(k - r, 0) for k in range(d + 1)] for r in range(3)]) for d in (3, 5)}
_FACTORS = {
    d: np.array([[np.prod(np.arange(k - r + 1, k + 1)) if k >= r else 0.0 for k in range(d + 1)] for r in range(3)])
    for d in (3, 5)
}


def derivative_basis(tau: float, degree: int) -> np.ndarray:
    """(3, degree + 1) matrix B with B @ c = (p, p', p'') at tau for p(tau) = sum_k c_k tau^k (degree 3 or 5)."""
    return _FACTORS[degree] * np.power(tau, _POWERS[degree])


def _coefficients(times: np.ndarray, positions: np.ndarray, tangents: np.ndarray) -> np.ndarray:
    """(N-1, 4, D) coefficients c of each Hermite segment, p(tau) = sum_k c_k tau^k, tau seconds."""
    h = np.diff(times)[:, None]
    p0, p1, m0, m1 = positions[:-1], positions[1:], tangents[:-1], tangents[1:]
    slope = (p1 - p0) / h if len(times) > 1 else np.zeros_like(p0)
    c2 = (3 * slope - 2 * m0 - m1) / h
    c3 = (m0 + m1 - 2 * slope) / h**2
    return np.stack([p0, m0, c2, c3], axis=1)


MIN_INTERVAL_S = 1e-3  # points closer than this to the one before are left out (an ill-posed spline)


def _spaced(times: np.ndarray, positions: np.ndarray, after_s: float) -> tuple[np.ndarray, np.ndarray]:
    """The points (times (N,), positions (N, D)) at least MIN_INTERVAL_S after `after_s` and after
    the point kept before."""
    keep, last = [], after_s
    for i, t in enumerate(times.tolist()):
        if t >= last + MIN_INTERVAL_S:
            keep.append(i)
            last = t
    return times[keep], positions[keep]


# smoothing weights tried, lightest first (seconds^5: squared jerk integral against squared point error)
SMOOTHING_WEIGHTS = (1e-8, 1e-7, 1e-6, 1e-5, 1e-4)


def _spline(
    times: np.ndarray,
    positions: np.ndarray,
    start_velocity: np.ndarray,
    start_acceleration: np.ndarray,
    smooth_within: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    share: float = 1.0,
):
    """C2 cubic spline that starts with `start_velocity` (D,) and `start_acceleration` (D,) and ends
    at rest with zero acceleration, through the points (times (N,), positions (N, D); the first one
    exactly) or, with `smooth_within` = (max velocity, max acceleration, max jerk) (D,) each,
    exactly through the first and the last and near the others: per joint the least-squares fit
    to the points plus w * integral of jerk^2 with the smallest w of SMOOTHING_WEIGHTS whose
    spline keeps `share` of those limits, else the limits (else the smallest: where even the
    smoothest spline cannot, a heavily smoothed one could swing back against the chunk).

    Returns knot times (M,), knot positions (M, D), knot tangents (M, D), which knots are the
    points (M,) bool (M = N + 2; N < 2: the points, at rest), and whether every joint keeps the
    limits (True when interpolating)."""
    n, d = positions.shape
    if n < 2:
        return times.copy(), positions.copy(), np.zeros_like(positions), np.ones(n, bool), True
    # one free knot in the first interval and one in the last (thirds of a single interval)
    if n == 2:
        inserted = times[0] + (times[1] - times[0]) * np.array([1 / 3, 2 / 3])
    else:
        inserted = np.array([(times[0] + times[1]) / 2, (times[-2] + times[-1]) / 2])
    knot_t = np.sort(np.concatenate([times, inserted]))
    is_point = ~np.isin(knot_t, inserted)
    m = knot_t.size - 1  # segments
    k = m + 1  # knots; variables z = (y_0..y_m, m_0..m_m)
    h = np.diff(knot_t)
    seg = np.arange(m)
    # per segment: acceleration at its start and end, and its jerk, as rows over z
    a_left, a_right, jerk = (np.zeros((m, 2 * k)) for _ in range(3))
    for row, y0, y1, m0, m1 in (
        (a_left, -6 / h**2, 6 / h**2, -4 / h, -2 / h),
        (a_right, 6 / h**2, -6 / h**2, 2 / h, 4 / h),
        (jerk, 12 / h**3, -12 / h**3, 6 / h**2, 6 / h**2),
    ):
        row[seg, seg], row[seg, seg + 1], row[seg, k + seg], row[seg, k + seg + 1] = y0, y1, m0, m1
    unit = np.eye(2 * k)
    # equalities: start position, velocity, acceleration; continuous acceleration; end at rest
    constraints = np.vstack([unit[0], unit[k], a_left[0], a_right[:-1] - a_left[1:], a_right[-1], unit[2 * k - 1]])
    bound = np.zeros((len(constraints), d))
    bound[0], bound[1], bound[2] = positions[0], start_velocity, start_acceleration
    points = unit[:k][is_point][1:]  # the chunk's points (the first one, the anchor, is a constraint)
    if smooth_within is None:  # interpolate: the points are constraints too
        z = np.linalg.solve(np.vstack([constraints, points]), np.vstack([bound, positions[1:]]))
        return knot_t, *_exact_ends(z, k, positions[0], start_velocity, positions[-1]), is_point, True
    # smoothing: the plan still ends exactly at the last point; the points before are fitted
    constraints = np.vstack([constraints, unit[k - 1]])
    bound = np.vstack([bound, positions[-1:]])
    points, targets = points[:-1], positions[1:-1]
    weights = np.array(SMOOTHING_WEIGHTS)
    q = points.T @ points + weights[:, None, None] * (jerk.T @ (h[:, None] * jerk))  # (W, 2k, 2k)
    c = len(constraints)
    kkt = np.zeros((len(weights), 2 * k + c, 2 * k + c))
    kkt[:, : 2 * k, : 2 * k] = q
    kkt[:, : 2 * k, 2 * k :] = constraints.T
    kkt[:, 2 * k :, : 2 * k] = constraints
    rhs = np.vstack([points.T @ targets, bound])
    z = np.linalg.solve(kkt, np.broadcast_to(rhs, (len(weights),) + rhs.shape))[:, : 2 * k]  # (W, 2k, D)
    coefficients = np.stack([_coefficients(knot_t, zw[:k], zw[k:]) for zw in z])  # (W, m, 4, D)
    max_velocity, max_acceleration, max_jerk = smooth_within
    bounds = np.empty((3, len(weights), d))  # max |velocity|, |acceleration|, |jerk| per weight and joint
    for i, cw in enumerate(coefficients):
        _, _, velocity, acceleration, jerk_abs = cubic_bounds(cw, np.zeros((m, 1)), h[:, None])
        bounds[:, i] = velocity.max(0), acceleration.max(0), jerk_abs.max(0)
    limits = np.stack([max_velocity, max_acceleration, max_jerk])[:, None, :]  # (3, 1, D)
    shares = np.array([1.0, share, share])[:, None, None]  # the velocity a chunk asks for is kept (no lag)
    fits = (bounds <= shares * limits).all(axis=0)  # (W, D)
    # per joint the lightest smoothing that fits; none does: the closest fit (the safety filter keeps
    # the limits; heavy smoothing could swing back against the chunk)
    choice = np.where(fits.any(0), np.argmax(fits, axis=0), 0)  # (D,)
    chosen = z[choice, :, np.arange(d)].T  # (2k, D)
    return (
        knot_t,
        *_exact_ends(chosen, k, positions[0], start_velocity, positions[-1]),
        is_point,
        bool(fits.any(0).all()),
    )


# time scales tried, slowest last: a chunk no smoothing keeps within the limits is slowed down
TIME_SCALES = (1.25, 1.5, 2.0, 3.0)


def _fit_in_time(
    times: np.ndarray,
    positions: np.ndarray,
    start_velocity: np.ndarray,
    start_acceleration: np.ndarray,
    limits: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    share: float,
):
    """`_spline` at the chunk's own pace, smoothed to keep `share` of the `limits` (velocity,
    acceleration, jerk (D,) each), else the limits themselves; where no smoothing does, slowed
    down: the point times stretched from the first (the anchor) by the smallest factor of
    TIME_SCALES whose spline keeps the limits (the path is the chunk's, only later: nothing swings
    back). None does: pace 1 and the closest fit (the safety filter keeps the limits).
    Returns (scale, *_spline's first four)."""
    if limits is None or len(times) < 2:
        return 1.0, *_spline(times, positions, start_velocity, start_acceleration, limits)[:4]
    first = None
    for scale in (1.0, *TIME_SCALES):
        scaled = times if scale == 1.0 else times[0] + scale * (times - times[0])
        *spline, fits = _spline(scaled, positions, start_velocity, start_acceleration, limits, share)
        if fits:
            return scale, *spline
        first = first or spline
    return 1.0, *first


def _exact_ends(
    z: np.ndarray, k: int, start: np.ndarray, start_velocity: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Knot positions and tangents from the solution z (2k, D), the constrained start and end
    values exact (not rounded)."""
    z[0], z[k], z[k - 1], z[2 * k - 1] = start, start_velocity, end, 0.0
    return z[:k], z[k:]


def cubic_bounds(c: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, ...]:
    """Exact extrema of cubics p(tau) = sum_k c[:, k] tau^k (c: (S, 4, D)) over [lo, hi] ((S, 1) each):
    position min and max, max |velocity|, max |acceleration|, |jerk|, each (S, D)."""
    c0, c1, c2, c3 = c[:, 0], c[:, 1], c[:, 2], c[:, 3]

    def clip(tau):
        return np.clip(np.nan_to_num(tau, nan=0.0, posinf=0.0, neginf=0.0), lo, hi)

    with np.errstate(divide="ignore", invalid="ignore"):
        vertex = clip(-c2 / (3 * c3))  # where the velocity (a parabola) turns
        root = np.sqrt(c2**2 - 3 * c1 * c3)  # velocity zeros: position turns
        linear_zero = -c1 / (2 * c2)
        zero_a = clip(np.where(c3 != 0, (-c2 + root) / (3 * c3), linear_zero))
        zero_b = clip(np.where(c3 != 0, (-c2 - root) / (3 * c3), linear_zero))
    lo_b, hi_b = np.broadcast_to(lo, c0.shape), np.broadcast_to(hi, c0.shape)
    taus = np.stack([lo_b, hi_b, zero_a, zero_b])
    positions = c0 + taus * (c1 + taus * (c2 + taus * c3))
    turns = np.stack([lo_b, hi_b, vertex])
    velocity = np.abs(c1 + turns * (2 * c2 + 3 * turns * c3)).max(axis=0)
    acceleration = np.maximum(np.abs(2 * c2 + 6 * c3 * lo), np.abs(2 * c2 + 6 * c3 * hi))
    return positions.min(axis=0), positions.max(axis=0), velocity, acceleration, np.abs(6 * c3)
