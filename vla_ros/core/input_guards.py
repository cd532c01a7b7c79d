"""Guards on the executor's inputs, ROS-free: sensor glitches in the measured joints, and more
than one writer on the chunk topic.

Rules (README "Fault catalogue"):
  glitch   while the executor is active, a measured position farther than
           max_velocity x elapsed + margin_rad from the last accepted one (any joint) is a sensor
           glitch: ignored and counted, so the executor does not start from it; while glitches
           last no joint state is accepted and the executor holds (stale joints). A jump that
           persists, consistent with itself, for `settle_s` is real: it is accepted
           (re-anchored) and counted.
  writers  the first writer of chunks wins until it is silent for `silence_s` (the executor's
           plan_timeout_s); chunks from any other writer meanwhile are rejected and counted.
"""

from __future__ import annotations

import numpy as np


class GlitchFilter:
    """Accepts or rejects measured joint positions (D,) radians, stamped in seconds."""

    def __init__(self, max_velocity: np.ndarray, margin_rad: float = 0.05, settle_s: float = 0.5):
        self.max_velocity = np.asarray(max_velocity, dtype=float)
        self.margin_rad, self.settle_s = margin_rad, settle_s
        self.last: tuple[float, np.ndarray] | None = None  # last accepted (stamp, positions)
        self._pending: tuple[float, float, np.ndarray] | None = None  # rejected run: (since, stamp, positions)
        self.reanchored = False  # the last accepted sample ended a persisting jump

    def _consistent(self, ref: tuple[float, np.ndarray], stamp_s: float, q: np.ndarray) -> bool:
        bound = self.max_velocity * max(0.0, stamp_s - ref[0]) + self.margin_rad
        return bool(np.all(np.abs(q - ref[1]) <= bound))

    def reset(self, stamp_s: float, q: np.ndarray) -> None:
        """Take `q` as the reference, unchecked (e.g. while nothing is commanded)."""
        self.last, self._pending, self.reanchored = (stamp_s, q), None, False

    def accept(self, stamp_s: float, q: np.ndarray) -> bool:
        """True if `q` (measured at `stamp_s`) is plausible and becomes the reference."""
        self.reanchored = False
        if self.last is None or self._consistent(self.last, stamp_s, q):
            self.last, self._pending = (stamp_s, q), None
            return True
        if self._pending is not None and self._consistent(self._pending[1:], stamp_s, q):
            if stamp_s - self._pending[0] >= self.settle_s:
                self.last, self._pending, self.reanchored = (stamp_s, q), None, True
                return True
            self._pending = (self._pending[0], stamp_s, q)
        else:
            self._pending = (stamp_s, stamp_s, q)
        return False


class WriterArbiter:
    """Which writer's chunks to follow: the first, until it is silent for `silence_s` seconds."""

    def __init__(self, silence_s: float):
        self.silence_s = silence_s
        self.owner: str | None = None
        self._owner_seen_s = -np.inf
        self.writers: set[str] = set()

    def admit(self, source: str | None, now_s: float) -> str | None:
        """None if the chunk from `source` may run; else why not. `source` None: unknown, admitted."""
        if source is None:
            return None
        self.writers.add(source)
        if source == self.owner or self.owner is None or now_s - self._owner_seen_s > self.silence_s:
            self.owner, self._owner_seen_s = source, now_s
            return None
        return (
            f"a second writer ({source}) publishes on action_chunk; following {self.owner} until it is silent "
            f"for {self.silence_s} s"
        )
