"""`vla-ros serve` as a real subprocess on 127.0.0.1, and observations for the sim arm's tiny models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vla_ros.core.types import Observation
from vla_ros.remote.local_server import ServedPolicy
from vla_ros.sim.tabletop import JOINT_NAMES


@pytest.fixture
def serve(tmp_path):
    """Factory: serve(backend, model_path, *extra_args) -> a started ServedPolicy (killed after the test)."""
    started: list[ServedPolicy] = []

    def start(backend: str, model_path: Path, *extra: str) -> ServedPolicy:
        server = ServedPolicy(
            backend, model_path, tmp_path / f"serve{len(started)}.log", "--num-threads", "1", *extra
        ).start()
        started.append(server)
        return server

    yield start
    for s in started:
        s.stop(kill=True)


def sim_observation(
    seed: int, stamp_s: float = 0.0, size: int = 32, instruction: str = "reach the red cube"
) -> Observation:
    """Random camera frames and joint positions for the sim arm (front + wrist)."""
    rng = np.random.default_rng(seed)
    images = {c: rng.integers(0, 255, (size, size, 3), dtype=np.uint8) for c in ("front", "wrist")}
    return Observation(stamp_s, images, JOINT_NAMES, rng.uniform(-0.5, 0.5, len(JOINT_NAMES)), instruction)
