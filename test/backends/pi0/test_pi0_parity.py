"""Parity with the reference implementations, from committed fixtures (scripts/fixtures/make_pi05_fixture.py).

- reduced LeRobot π₀.5 / π₀ checkpoints saved by LeRobot 0.6.1: our backend loads the folder as is
  (origin detected) and reproduces LeRobot's tokens and action chunk for the same observation and noise;
- tokenizer ids of openpi's `PaligemmaTokenizer` and LeRobot's processor steps;
- resize with pad of LeRobot (torch bilinear) and openpi-client (PIL bilinear).
"""

from pathlib import Path

import numpy as np
import pytest

from vla_ros.backends.base import load_backend
from vla_ros.backends.pi0.processing import image_input, resize_with_pad_pil, resize_with_pad_torch
from vla_ros.backends.pi0.tokenizer import PaligemmaTokenizer
from vla_ros.core.images import resize_with_pad
from vla_ros.core.types import Observation

FIXTURES = Path(__file__).parent / "fixtures"
JOINTS = tuple(f"j{i}" for i in range(6))


def _observation(ref) -> Observation:
    images = {"front": ref["front"], "wrist": ref["wrist"]}
    return Observation(0.0, images, JOINTS, ref["state"].astype(np.float64), str(ref["task"]))


@pytest.mark.parametrize("kind", ["pi05", "pi0"])
def test_lerobot_checkpoint_reproduces_lerobot_end_to_end(kind):
    folder = FIXTURES / f"lerobot_{kind}"
    ref = np.load(folder / "reference.npz")
    backend = load_backend("pi0", folder, {"device": "cpu"}, num_threads=1)
    profile = backend.processor.profile
    assert backend.cfg.pi05 == (kind == "pi05") and profile.origin == "lerobot" and profile.resize == "torch_bilinear"
    # values the checkpoint states, not the defaults: 4 steps, periods 5e-3..3, 1e-8, its normalisation mapping
    assert (backend.steps, backend.cfg.time_min_period, backend.cfg.time_max_period, profile.eps) == (
        4,
        5e-3,
        3.0,
        1e-8,
    )
    assert profile.state_norm == ("quantiles" if kind == "pi05" else "mean_std")
    assert profile.sources["steps"].endswith("config.json:num_inference_steps")
    assert "policy_preprocessor.json" in backend.provenance["origin"]
    obs = _observation(ref)
    ids, valid = backend.tokenizer(obs.instruction, backend.processor.prompt_state(obs.joint_positions))
    np.testing.assert_array_equal(ids, ref["token_ids"])
    np.testing.assert_array_equal(valid, ref["token_mask"])
    chunk = backend.predict(obs, noise=ref["noise"])
    assert np.abs(chunk.positions - ref["actions"]).max() <= 1e-4
    assert np.abs(ref["actions"]).max() > 0.1  # not a degenerate chunk


def test_the_origin_changes_what_a_lerobot_checkpoint_does(tmp_path):
    """Forced to openpi's preprocessing, the same LeRobot π₀.5 folder yields another chunk."""
    folder = FIXTURES / "lerobot_pi05"
    ref = np.load(folder / "reference.npz")
    backend = load_backend("pi0", folder, {"origin": "openpi", "steps": 4})
    assert (
        backend.processor.profile.origin == "openpi" and backend.processor.profile.sources["origin"] == "origin setting"
    )
    assert np.abs(backend.predict(_observation(ref), noise=ref["noise"]).positions - ref["actions"]).max() > 1e-3


@pytest.mark.parametrize("max_len", [96, 12])
@pytest.mark.parametrize("origin", ["openpi", "lerobot"])
@pytest.mark.parametrize("kind", ["pi0", "pi05"])
def test_tokenizer_matches_the_reference(tmp_path, origin, kind, max_len):
    ref = np.load(FIXTURES / "tokenizer.npz")
    tokenizer = PaligemmaTokenizer(
        FIXTURES / "lerobot_pi05" / "tokenizer.model", max_len, origin=origin, pi05=kind == "pi05"
    )
    expected = ref[f"{origin}_{kind}_{max_len}"]
    for i, prompt in enumerate(ref["prompts"]):
        ids, valid = tokenizer(str(prompt), ref["states"][i] if kind == "pi05" else None)
        np.testing.assert_array_equal(ids, expected[i], err_msg=f"{origin} {kind} {prompt!r}")
        np.testing.assert_array_equal(valid, expected[i] != 0)


def test_origins_format_pi0_prompts_differently():
    ref = np.load(FIXTURES / "tokenizer.npz")
    assert not np.array_equal(ref["openpi_pi0_96"], ref["lerobot_pi0_96"])  # cleaning and "\n" differ
    np.testing.assert_array_equal(ref["openpi_pi05_96"], ref["lerobot_pi05_96"])


def _resize_cases():
    ref = np.load(FIXTURES / "resize.npz")
    return [
        (ref[f"{i}_input"], ref[f"{i}_lerobot"], ref[f"{i}_openpi"], str(ref[f"{i}_kind"]))
        for i in range(len(ref.files) // 4)
    ]


@pytest.mark.parametrize("image, lerobot, openpi, kind", _resize_cases())
def test_resize_matches_each_origin(image, lerobot, openpi, kind):
    size = openpi.shape[0]
    assert np.abs(resize_with_pad_torch(image, size) - lerobot).max() <= 1 / 255
    assert np.abs(resize_with_pad_pil(image, size).astype(np.float64) - openpi).max() <= 1
    # the model inputs in [-1, 1] agree to 2/255 (1/255 per unit of the [0, 1] image)
    assert np.abs(image_input(image, size, "torch_bilinear") - (lerobot * 2 - 1).transpose(2, 0, 1)).max() <= 2 / 255
    assert np.abs(image_input(image, size, "pil_bilinear") - (openpi / 127.5 - 1).transpose(2, 0, 1)).max() <= 2 / 255


def test_resize_methods_differ_on_natural_images():
    """Why the origin matters: OpenCV area, torch bilinear and PIL bilinear disagree on downscaled texture."""
    image, lerobot, openpi, _ = next(c for c in _resize_cases() if c[3] == "natural" and c[0].shape[0] > c[2].shape[0])
    size = openpi.shape[0]
    assert np.abs(lerobot * 255 - openpi).max() > 20
    assert np.abs(resize_with_pad(image, size, size).astype(np.float64) - lerobot * 255).max() > 20
