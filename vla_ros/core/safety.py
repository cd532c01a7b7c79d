"""Safety: rejection of bad chunks, and the limiter every command passes through.

`check_chunk` rejects a chunk as a whole (with the reason) rather than executing part of a
corrupt one. `Limiter` keeps each command inside position limits (minus a margin) and moves
at most `max_velocity * dt` per tick from the previous command, so a bad target can never
produce a jump. Jerk-limited generation (ruckig) and workspace checks extend this module.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from vla_ros.core.types import ActionChunk, JointLimits


class ChunkRejected(ValueError):
    """A chunk that must not be executed; the message says why."""


def check_chunk(
    chunk: ActionChunk, joint_names: tuple[str, ...], now_s: float, max_stamp_skew_s: float
) -> ActionChunk:
    """Validate a chunk and return it reordered to `joint_names` order.

    Rejects: missing joints, non-finite positions, a stamp further than `max_stamp_skew_s`
    in the future or the past of `now_s`.
    """
    missing = [n for n in joint_names if n not in chunk.joint_names]
    if missing:
        raise ChunkRejected(f"chunk lacks joints {missing} (has {list(chunk.joint_names)})")
    if chunk.horizon == 0:
        raise ChunkRejected("chunk has no points")
    if not np.all(np.isfinite(chunk.positions)):
        bad = np.argwhere(~np.isfinite(chunk.positions))[0]
        raise ChunkRejected(f"chunk has a non-finite position at point {bad[0]}, joint '{chunk.joint_names[bad[1]]}'")
    skew = chunk.t0_s - now_s
    if abs(skew) > max_stamp_skew_s:
        when = "future" if skew > 0 else "past"
        raise ChunkRejected(f"chunk stamp is {abs(skew):.3f} s in the {when} (limit {max_stamp_skew_s} s)")
    order = [chunk.joint_names.index(n) for n in joint_names]
    return dataclasses.replace(chunk, joint_names=tuple(joint_names), positions=chunk.positions[:, order])


class Limiter:
    """Clamps commands (D,) to position limits and a per-tick velocity limit."""

    def __init__(self, limits: JointLimits, position_margin_rad: float = 0.0):
        """`position_margin_rad` is capped per joint at a quarter of its range (small prismatic joints)."""
        if position_margin_rad < 0:
            raise ValueError(f"position margin must be >= 0, got {position_margin_rad}")
        self.limits = limits
        margin = np.minimum(position_margin_rad, 0.25 * (limits.max_position - limits.min_position))
        self.lower = limits.min_position + margin
        self.upper = limits.max_position - margin
        self.last_command: np.ndarray | None = None
        self.activations = 0  # ticks on which a limit changed the command

    def reset(self, position: np.ndarray) -> None:
        """Start from `position` (e.g. the measured joint positions), clamped into the limits."""
        self.last_command = np.clip(np.asarray(position, dtype=float), self.lower, self.upper)

    def apply(self, target: np.ndarray, dt_s: float) -> np.ndarray:
        """The command closest to `target` that respects the limits, given the last command."""
        if self.last_command is None:
            raise RuntimeError("Limiter.apply before reset(): the start position is unknown")
        target = np.asarray(target, dtype=float)
        if not np.all(np.isfinite(target)):
            target = self.last_command  # never forward NaN: hold
        step = self.limits.max_velocity * dt_s
        command = np.clip(target, self.last_command - step, self.last_command + step)
        command = np.clip(command, self.lower, self.upper)
        if not np.allclose(command, target, atol=1e-9):
            self.activations += 1
        self.last_command = command
        return command.copy()
