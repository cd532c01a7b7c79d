"""Parity with the reference OpenVLA-OFT code (moojink/openvla-oft with the authors' transformers fork)
on a tiny L1-regression checkpoint: two images, proprio, a chunk of 8 actions.

The fixture (scripts/fixtures/make_openvla_oft_fixture.py) keeps only what OFT adds to the tiny
OpenVLA fixture's folder (config.json with proprio statistics, the head and projector .pt files);
the folder is laid together here.
"""

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from vla_ros.backends.openvla.backend import load_openvla_backend
from vla_ros.backends.openvla.processing import normalize
from vla_ros.core.types import Observation

OFT = Path(__file__).resolve().parents[2] / "fixtures" / "openvla_oft"
ACTION_JOINTS = tuple(f"a{i}" for i in range(7))
PROPRIO_JOINTS = tuple(f"p{i}" for i in range(8))
TOL = 1e-4


@pytest.fixture(scope="module")
def expected():
    with np.load(OFT / "expected.npz") as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def folder(tmp_path_factory, reference_checkpoint):
    folder = shutil.copytree(reference_checkpoint, tmp_path_factory.mktemp("oft") / "checkpoint")
    for name in ("config.json", "action_head--1_checkpoint.pt", "proprio_projector--1_checkpoint.pt"):
        shutil.copy(OFT / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def backend(tmp_path_factory, folder, expected):
    settings = {
        "joints": list(ACTION_JOINTS),
        "cameras": {"primary": "front", "wrist": "wrist"},
        "proprio_joints": list(PROPRIO_JOINTS),
        "oft": True,
        "chunk_size": 8,
        "normalization": "quantiles",
        "unnorm_key": str(expected["unnorm_key"]),
    }
    path = tmp_path_factory.mktemp("oft_settings") / "openvla.yaml"
    path.write_text(yaml.safe_dump(settings))
    return load_openvla_backend(folder, config=path)


def observation(expected) -> Observation:
    names = ACTION_JOINTS + PROPRIO_JOINTS
    q = np.concatenate([np.zeros(7), expected["proprio"]])
    return Observation(
        0.0, {"front": expected["image"], "wrist": expected["wrist_image"]}, names, q, str(expected["instruction"])
    )


def test_inputs_match_the_reference(backend, expected):
    pixels = np.concatenate([backend.pixel_values(expected["image"]), backend.pixel_values(expected["wrist_image"])])
    np.testing.assert_allclose(pixels, expected["pixel_values"], atol=1e-5)
    assert backend.input_ids(str(expected["instruction"])) == [*expected["prompt_ids"].tolist(), 29871]
    np.testing.assert_allclose(
        normalize(expected["proprio"], backend.oft.proprio_stats), expected["normalized_proprio"], atol=1e-12
    )


def test_action_hidden_states_and_the_chunk_match_the_reference(backend, expected):
    import torch

    pixels = np.concatenate([backend.pixel_values(expected["image"]), backend.pixel_values(expected["wrist_image"])])
    ids = backend.input_ids(str(expected["instruction"]))
    proprio = torch.from_numpy(expected["normalized_proprio"].astype(np.float32))[None]
    with torch.no_grad():
        embeds = backend.model.embed(
            torch.from_numpy(pixels)[None], torch.tensor([ids]), backend.oft.proprio_projector(proprio)
        )
        hidden = backend.model.parallel_hidden(embeds, 8 * 7, 2)[0].numpy()
    assert np.abs(hidden - expected["action_hidden"]).max() <= TOL
    causal = backend.model.language_model.model(inputs_embeds=embeds).last_hidden_state[0, -1].detach().numpy()
    assert np.abs(causal - expected["action_hidden"][0]).max() > 100 * TOL, (
        "the reference's attention was not bidirectional"
    )

    actions = backend.predict_actions(observation(expected))
    assert actions.shape == (8, 7)
    delta = np.abs(actions - expected["actions"]).max()
    assert delta <= TOL, f"max |Δ actions| {delta}"
