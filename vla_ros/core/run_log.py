"""A record of one executor run, for plots: chunks as planned, commands, measured joints.

Bounded in memory (oldest samples dropped first); saved as one .npz (times in seconds, positions
in radians, joint order of `joint_names`) that `vla-ros plot` draws.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

import numpy as np

from vla_ros.core.types import ActionChunk, JointLimits


class RunLog:
    def __init__(self, limits: JointLimits, max_samples: int = 200_000, max_chunks: int = 5_000):
        self.limits = limits
        self.chunks: deque[tuple[np.ndarray, np.ndarray]] = deque(maxlen=max_chunks)  # (times (H,), positions (H, D))
        self.switches: deque[tuple[float, float]] = deque(maxlen=max_chunks)  # (received at, switch jump rad)
        self.commands: deque[tuple[float, np.ndarray]] = deque(maxlen=max_samples)
        self.measured: deque[tuple[float, np.ndarray]] = deque(maxlen=max_samples)

    def add_chunk(self, chunk: ActionChunk, received_s: float, switch_jump: float) -> None:
        """An accepted chunk, already in `limits.names` order, and how much it moved the target (rad)."""
        self.chunks.append((chunk.times_s().copy(), chunk.positions.copy()))
        self.switches.append((received_s, switch_jump))

    def add_command(self, t_s: float, positions: np.ndarray, acceleration: np.ndarray, mode: str = "") -> None:
        """A command (D,) rad and the commanded trajectory's acceleration (D,) rad/s^2 at t_s, made in
        `mode` (the executor's state, and how tracking made it: e.g. "tracking/nominal", "holding")."""
        self.commands.append((t_s, np.array(positions, dtype=float), np.array(acceleration, dtype=float), mode))

    def add_measured(self, t_s: float, positions: np.ndarray) -> None:
        self.measured.append((t_s, np.array(positions, dtype=float)))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        d = len(self.limits.names)

        def series(samples, field=1):
            times = np.array([s[0] for s in samples], dtype=float)
            values = np.array([s[field] for s in samples], dtype=float).reshape(-1, d)
            return times, values

        command_t, command_q = series(self.commands)
        _, command_acc = series(self.commands, 2)
        measured_t, measured_q = series(self.measured)
        chunk_id = np.concatenate([np.full(len(t), i) for i, (t, _) in enumerate(self.chunks)] or [np.zeros(0, int)])
        chunk_t = np.concatenate([t for t, _ in self.chunks] or [np.zeros(0)])
        chunk_q = np.concatenate([q for _, q in self.chunks] or [np.zeros((0, d))])
        np.savez_compressed(
            path,
            joint_names=np.array(self.limits.names),
            min_position=self.limits.min_position,
            max_position=self.limits.max_position,
            command_t=command_t,
            command_q=command_q,
            command_acc=command_acc,
            command_mode=np.array([s[3] for s in self.commands], dtype=str),
            measured_t=measured_t,
            measured_q=measured_q,
            chunk_id=chunk_id,
            chunk_t=chunk_t,
            chunk_q=chunk_q,
            switch_t=np.array([t for t, _ in self.switches], dtype=float),
            switch_jump=np.array([j for _, j in self.switches], dtype=float),
        )
        return path
