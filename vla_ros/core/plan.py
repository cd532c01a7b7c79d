"""The executor's time-indexed plan: joint targets at absolute times, sampled at control rate.

A chunk's point i is due at `t0 + (i + 1) * dt`. Merging a chunk drops the points already in
the past (latency compensation: the time spent inferring is skipped, not replayed) and starts
the new plan from where the command is now, moving as the command moves, so the switch has no
position or velocity jump. Between points the plan is a clamped cubic spline (C2): it starts
with the command's velocity and ends at rest (the arm stops where the plan ends). How the new chunk meets the running plan is the blend mode:

  replace             the new chunk's points, as they are
  guided              as replace; the chunk was inferred to continue the running plan (RTC), the
                      executor publishes the plan ahead for that (`ahead`)
  crossfade           new = (1 - w) old + w new, w rising linearly from 0 to 1 over `crossfade_s`
  temporal_ensemble   ACT: every prediction for a time is averaged with weight exp(-m i),
                      i = 0 for the oldest prediction (m = `ensemble_m`)
"""

from __future__ import annotations

import numpy as np

from vla_ros.core.types import ActionChunk

BLEND_MODES = ("replace", "crossfade", "temporal_ensemble", "guided")


class Plan:
    """Cubic Hermite joint trajectory: times (N,) seconds, positions (N, D) radians, tangents (N, D) rad/s.

    `weights` (N,) holds, per point, the sum of the ensemble weights merged into it and `count`
    (N,) how many chunks predicted it (used by temporal_ensemble only).
    """

    def __init__(self, num_joints: int, blend: str = "replace", crossfade_s: float = 0.2, ensemble_m: float = 0.1):
        if blend not in BLEND_MODES:
            raise ValueError(f"unknown blend mode '{blend}' (one of {list(BLEND_MODES)})")
        if crossfade_s <= 0 or ensemble_m < 0:
            raise ValueError(f"crossfade_s must be > 0 and ensemble_m >= 0, got {crossfade_s}, {ensemble_m}")
        self.num_joints = num_joints
        self.blend = blend
        self.crossfade_s = crossfade_s
        self.ensemble_m = ensemble_m
        self.clear()

    def clear(self) -> None:
        self.times_s = np.empty(0)
        self.positions = np.empty((0, self.num_joints))
        self.tangents = np.empty((0, self.num_joints))
        self.weights = np.empty(0)
        self.count = np.empty(0, dtype=int)

    @property
    def empty(self) -> bool:
        return self.times_s.size == 0

    @property
    def end_time_s(self) -> float:
        """Time of the last point (-inf for an empty plan)."""
        return float(self.times_s[-1]) if self.times_s.size else -np.inf

    def merge(
        self, chunk: ActionChunk, now_s: float, current_command: np.ndarray, current_velocity: np.ndarray | None = None
    ) -> int:
        """Blend the chunk's future points into the plan, anchored at (now_s, current_command)
        moving at `current_velocity` (D,) rad/s (default: at rest).

        Returns how many of the chunk's points were dropped as already past.
        """
        times = chunk.times_s()
        future = times > now_s
        new_t, new_p = times[future], chunk.positions[future]
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
        self.times_s = np.concatenate([[now_s], new_t])
        self.positions = np.vstack([np.asarray(current_command, float)[None, :], new_p])
        self.weights = np.concatenate([[1.0], weights])
        self.count = np.concatenate([[1], count])
        start_velocity = np.zeros(self.num_joints) if current_velocity is None else np.asarray(current_velocity, float)
        self.tangents = _tangents(self.times_s, self.positions, start_velocity)
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
        if t_s >= self.times_s[-1]:
            return self.positions[-1].copy(), np.zeros(self.num_joints)
        if t_s <= self.times_s[0]:
            return self.positions[0].copy(), self.tangents[0].copy()
        i = int(np.searchsorted(self.times_s, t_s, side="right"))
        h = self.times_s[i] - self.times_s[i - 1]
        s = (t_s - self.times_s[i - 1]) / h
        p0, p1, m0, m1 = self.positions[i - 1], self.positions[i], self.tangents[i - 1] * h, self.tangents[i] * h
        position = (
            (2 * s**3 - 3 * s**2 + 1) * p0
            + (s**3 - 2 * s**2 + s) * m0
            + (-2 * s**3 + 3 * s**2) * p1
            + (s**3 - s**2) * m1
        )
        velocity = (
            (6 * s**2 - 6 * s) * p0 + (3 * s**2 - 4 * s + 1) * m0 + (6 * s - 6 * s**2) * p1 + (3 * s**2 - 2 * s) * m1
        ) / h
        return position, velocity

    def ahead(self, now_s: float) -> tuple[np.ndarray, np.ndarray]:
        """The plan from `now_s` on: times (K,) (now_s first, then the later points) and positions (K, D)."""
        later = self.times_s > now_s
        times = np.concatenate([[now_s], self.times_s[later]])
        return times, np.vstack([self.sample(now_s)[None, :], self.positions[later]])


def _tangents(times: np.ndarray, positions: np.ndarray, start_velocity: np.ndarray) -> np.ndarray:
    """(N, D) tangents of the clamped cubic spline through the points: C2 (continuous acceleration,
    so the limiter sees no acceleration steps at the points), `start_velocity` first, rest at the end."""
    n = len(times)
    tangents = np.zeros_like(positions)
    tangents[0] = start_velocity
    if n <= 2:
        return tangents
    h = np.diff(times)  # (N-1,)
    slope = np.diff(positions, axis=0) / h[:, None]  # (N-1, D)
    # interior i = 1..N-2: h_i m_{i-1} + 2 (h_{i-1} + h_i) m_i + h_{i-1} m_{i+1} = 3 (h_i s_{i-1} + h_{i-1} s_i)
    a = np.zeros((n - 2, n - 2))
    idx = np.arange(n - 2)
    a[idx, idx] = 2 * (h[:-1] + h[1:])
    a[idx[1:], idx[:-1]] = h[2:]
    a[idx[:-1], idx[1:]] = h[:-2]
    rhs = 3 * (h[1:, None] * slope[:-1] + h[:-1, None] * slope[1:])
    rhs[0] -= h[1] * tangents[0]
    tangents[1:-1] = np.linalg.solve(a, rhs)
    return tangents
