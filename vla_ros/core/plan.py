"""The executor's time-indexed plan: joint targets at absolute times, sampled at control rate.

A chunk's point i is due at `t0 + (i + 1) * dt`. Merging a chunk drops the points already in
the past (latency compensation: the time spent inferring is skipped, not replayed) and
starts the new plan from where the command is now, so the switch has no position jump.
Blend modes other than `replace` grow here (see the executor issue).
"""

from __future__ import annotations

import numpy as np

from vla_ros.core.types import ActionChunk


class Plan:
    """Piecewise-linear joint trajectory: times (N,) seconds, positions (N, D) radians."""

    def __init__(self, num_joints: int):
        self.num_joints = num_joints
        self.clear()

    def clear(self) -> None:
        self.times_s = np.empty(0)
        self.positions = np.empty((0, self.num_joints))

    @property
    def empty(self) -> bool:
        return self.times_s.size == 0

    @property
    def end_time_s(self) -> float:
        """Time of the last point (-inf for an empty plan)."""
        return float(self.times_s[-1]) if self.times_s.size else -np.inf

    def merge(self, chunk: ActionChunk, now_s: float, current_command: np.ndarray) -> int:
        """Replace the plan by the chunk's future points, anchored at (now_s, current_command).

        Returns how many of the chunk's points were dropped as already past.
        """
        times = chunk.times_s()
        future = times > now_s
        self.times_s = np.concatenate([[now_s], times[future]])
        self.positions = np.vstack([current_command[None, :], chunk.positions[future]])
        return int(np.count_nonzero(~future))

    def sample(self, t_s: float) -> np.ndarray | None:
        """Interpolated target (D,) at time t_s; the last point after the end; None if empty."""
        if self.empty:
            return None
        if t_s >= self.times_s[-1]:
            return self.positions[-1].copy()
        if t_s <= self.times_s[0]:
            return self.positions[0].copy()
        i = int(np.searchsorted(self.times_s, t_s, side="right"))
        t0, t1 = self.times_s[i - 1], self.times_s[i]
        w = (t_s - t0) / (t1 - t0)
        return (1.0 - w) * self.positions[i - 1] + w * self.positions[i]
