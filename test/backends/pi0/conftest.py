"""Tiny π₀ fixtures: a random-weight model, its inputs, and a full checkpoint folder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vla_ros.backends.pi0.modeling import Pi0Model
from vla_ros.backends.pi0.tiny import make_tiny_checkpoint, tiny_config
from vla_ros.core.types import Observation
from vla_ros.sim.tabletop import JOINT_NAMES

HORIZON = 6


@pytest.fixture(scope="session")
def tiny_cfg():
    return tiny_config(horizon=HORIZON, vocab_size=40, max_token_len=8)


@pytest.fixture(scope="session")
def tiny_model(tiny_cfg):
    torch.manual_seed(0)
    return Pi0Model(tiny_cfg).eval()


@pytest.fixture
def tiny_inputs(tiny_cfg):
    """A batch of 2: images (2, 3, 3, 28, 28) with some slots masked, padded prompts, state, noise, t."""
    g = torch.Generator().manual_seed(1)
    s = tiny_cfg.vision.image_size
    return dict(
        images=torch.rand(2, 3, 3, s, s, generator=g) * 2 - 1,
        image_valid=torch.tensor([[True, True, False], [True, False, True]]),
        tokens=torch.randint(0, tiny_cfg.vocab_size, (2, tiny_cfg.max_token_len), generator=g),
        token_valid=torch.arange(tiny_cfg.max_token_len)[None] < torch.tensor([[5], [8]]),
        state=torch.randn(2, tiny_cfg.state_dim, generator=g),
        x=torch.randn(2, HORIZON, tiny_cfg.action_dim, generator=g),
    )


@pytest.fixture(scope="session")
def pi0_checkpoint(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("pi0_tiny"), JOINT_NAMES, horizon=HORIZON)


def _observation(stamp_s: float = 1.0, seed: int = 0, instruction: str = "reach the red cube") -> Observation:
    rng = np.random.default_rng(seed)
    images = {
        "front": rng.integers(0, 256, (48, 64, 3), dtype=np.uint8),
        "wrist": rng.integers(0, 256, (32, 32, 3), dtype=np.uint8),
    }
    q = rng.uniform(-0.5, 0.5, len(JOINT_NAMES))
    q[-1] = 0.02
    return Observation(stamp_s, images, JOINT_NAMES, q, instruction)


@pytest.fixture
def make_observation():
    """Observation factory for the sim arm: random front (48x64) and wrist (32x32) images."""
    return _observation
