"""Observations for the sim arm's tiny models (front + wrist cameras)."""

from __future__ import annotations

import numpy as np

from vla_ros.core.types import Observation
from vla_ros.sim.tabletop import JOINT_NAMES


def sim_observation(
    seed: int, stamp_s: float = 0.0, size: int = 32, instruction: str = "reach the red cube"
) -> Observation:
    """Random camera frames and joint positions for the sim arm (front + wrist)."""
    rng = np.random.default_rng(seed)
    images = {c: rng.integers(0, 255, (size, size, 3), dtype=np.uint8) for c in ("front", "wrist")}
    return Observation(stamp_s, images, JOINT_NAMES, rng.uniform(-0.5, 0.5, len(JOINT_NAMES)), instruction)
