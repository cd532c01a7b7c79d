"""OpenVLA fixtures: the reference-made parity checkpoint and a tiny checkpoint for the sim arm."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vla_ros.backends.openvla.configuration import OpenVLASettings
from vla_ros.backends.openvla.tiny import make_tiny_checkpoint
from vla_ros.core.types import Observation
from vla_ros.sim.tabletop import JOINT_NAMES

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "openvla"


@pytest.fixture(scope="session")
def expected():
    """The reference's inputs and outputs (scripts/fixtures/make_openvla_fixture.py)."""
    with np.load(FIXTURE / "expected.npz") as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="session")
def reference_checkpoint() -> Path:
    return FIXTURE / "checkpoint"


@pytest.fixture(scope="session")
def reference_settings(tmp_path_factory, expected) -> Path:
    """Robot mapping for the reference checkpoint: 7 action dims, all absolute."""
    settings = OpenVLASettings(
        joints=tuple(f"a{i}" for i in range(7)), cameras={"primary": "front"}, unnorm_key=str(expected["unnorm_key"])
    )
    path = tmp_path_factory.mktemp("openvla_settings") / "openvla.yaml"
    path.write_text(settings.to_yaml())
    return path


@pytest.fixture(scope="session")
def openvla_checkpoint(tmp_path_factory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("openvla_tiny"), JOINT_NAMES)


@pytest.fixture
def make_observation():
    def make(stamp_s: float = 1.0, seed: int = 0, instruction: str = "reach the red cube") -> Observation:
        rng = np.random.default_rng(seed)
        q = rng.uniform(-0.5, 0.5, len(JOINT_NAMES))
        images = {
            "front": rng.integers(0, 256, (48, 64, 3), dtype=np.uint8),
            "wrist": rng.integers(0, 256, (32, 32, 3), dtype=np.uint8),
        }
        return Observation(stamp_s, images, JOINT_NAMES, q, instruction)

    return make


@pytest.fixture(scope="session")
def oft_checkpoint(tmp_path_factory) -> Path:
    """A tiny OpenVLA-OFT folder: chunks of 4, proprio = the joints, front + wrist images."""
    return make_tiny_checkpoint(
        tmp_path_factory.mktemp("openvla_oft_tiny"), JOINT_NAMES, oft=True, chunk_size=4, wrist_cameras=("wrist",)
    )
