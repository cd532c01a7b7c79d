"""The JAX reference's fixture (scripts/fixtures/make_octo_fixture.py), converted as the converter does."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vla_ros.backends.octo.convert import convert_params
from vla_ros.backends.octo.modeling_release import OctoNet

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def reference():
    with np.load(FIXTURES / "tiny" / "reference.npz") as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="session")
def tiny_net(reference):
    """OctoNet with the reference's params, converted from what orbax wrote."""
    raw = json.loads((FIXTURES / "tiny" / "config.json").read_text())
    params = {k[len("params/") :]: v for k, v in reference.items() if k.startswith("params/")}
    cfg, weights = convert_params(raw, params)
    net = OctoNet(cfg).eval()
    net.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
    return net


def scaled(images: np.ndarray) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> float (..., 3, H, W) in [-1, 1], as the reference scales them."""
    return torch.from_numpy(images.astype(np.float32) / 127.5 - 1.0).movedim(-1, -3)


@pytest.fixture(scope="session")
def inputs(reference) -> dict:
    """OctoNet.forward's keyword arguments for the fixture's windows."""
    ref = reference
    names = ("primary", "wrist")
    return {
        "images": {n: scaled(ref[f"obs/image_{n}"]) for n in names},
        "image_valid": {n: torch.from_numpy(ref[f"obs_pad/image_{n}"]) for n in names},
        "timestep_valid": torch.from_numpy(ref["timestep_pad_mask"]),
        "goals": {n: scaled(ref[f"task/image_{n}"]) for n in names},
        "language": torch.from_numpy(ref["task/language_instruction"]),
        "language_valid": torch.from_numpy(ref["task_pad/language_instruction"]),
    }
