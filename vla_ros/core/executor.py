"""The chunk executor's logic, ROS-free: plan + watchdogs + limiter, one `tick` per control period.

States (reported in every `Command`):
  waiting       no joint state yet: nothing is commanded (the start position is unknown)
  holding       no plan, or the plan ran out: hold the last command
  tracking      following the plan
  stale_joints  joint states stopped arriving: hold
  estop         latched by `estop()` until `reset_estop()`: hold, chunks are refused
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from vla_ros.core.plan import Plan
from vla_ros.core.safety import ChunkRejected, Limiter, check_chunk
from vla_ros.core.types import ActionChunk, JointLimits


@dataclass(frozen=True)
class ExecutorSettings:
    """Timing and safety settings (seconds, radians)."""

    joint_state_timeout_s: float = 0.2
    plan_timeout_s: float = 0.5  # hold once the plan's last point is this far in the past
    max_stamp_skew_s: float = 2.0
    position_margin_rad: float = 0.0
    blend: str = "replace"  # how a new chunk meets the running plan (core/plan.py BLEND_MODES)
    crossfade_s: float = 0.2
    ensemble_m: float = 0.1


@dataclass(frozen=True)
class Command:
    positions: np.ndarray | None  # (D,) or None while waiting
    state: str


class ExecutorCore:
    """Turns chunks into limited, time-indexed position commands."""

    def __init__(self, limits: JointLimits, settings: ExecutorSettings = ExecutorSettings()):
        self.joint_names = limits.names
        self.settings = settings
        self.plan = Plan(len(self.joint_names), settings.blend, settings.crossfade_s, settings.ensemble_m)
        self.limiter = Limiter(limits, settings.position_margin_rad)
        self.counters: Counter[str] = Counter()
        self.estopped = False
        self.last_state = "waiting"
        self._joint_stamp_s: float | None = None
        self._last_tick_s: float | None = None

    # --- inputs --------------------------------------------------------------------------
    def on_joint_state(self, stamp_s: float, positions: np.ndarray) -> None:
        """Measured joint positions (D,) in `joint_names` order, received at `stamp_s`."""
        if self.limiter.last_command is None:
            self.limiter.reset(positions)
        self._joint_stamp_s = stamp_s

    def on_chunk(self, chunk: ActionChunk, now_s: float) -> None:
        """Validate and merge a chunk. Raises ChunkRejected (counted) if it must not run."""
        self.counters["chunks_received"] += 1
        try:
            if self.estopped:
                raise ChunkRejected("e-stop is latched; call reset_estop first")
            if self.limiter.last_command is None:
                raise ChunkRejected("no joint state received yet; cannot start a plan")
            chunk = check_chunk(chunk, self.joint_names, now_s, self.settings.max_stamp_skew_s)
        except ChunkRejected:
            self.counters["chunks_rejected"] += 1
            raise
        dropped = self.plan.merge(chunk, now_s, self.limiter.last_command)
        self.counters["points_dropped_late"] += dropped
        self.counters["chunks_accepted"] += 1

    def estop(self) -> None:
        self.estopped = True
        self.plan.clear()
        self.counters["estops"] += 1

    def reset_estop(self) -> None:
        self.estopped = False
        self.plan.clear()

    # --- control loop --------------------------------------------------------------------
    def tick(self, now_s: float) -> Command:
        """The command for time `now_s`; call at the control rate."""
        dt = 0.0 if self._last_tick_s is None else max(0.0, now_s - self._last_tick_s)
        self._last_tick_s = now_s
        if self.limiter.last_command is None:
            return self._emit(None, "waiting")
        hold = self.limiter.last_command
        if self.estopped:
            return self._emit(self.limiter.apply(hold, dt), "estop")
        if now_s - self._joint_stamp_s > self.settings.joint_state_timeout_s:
            self.plan.clear()
            return self._emit(self.limiter.apply(hold, dt), "stale_joints")
        if self.plan.empty or now_s > self.plan.end_time_s + self.settings.plan_timeout_s:
            self.plan.clear()
            return self._emit(self.limiter.apply(hold, dt), "holding")
        return self._emit(self.limiter.apply(self.plan.sample(now_s), dt), "tracking")

    def _emit(self, positions: np.ndarray | None, state: str) -> Command:
        if state != self.last_state:
            self.counters[f"entered_{state}"] += 1
            self.last_state = state
        return Command(positions, state)
