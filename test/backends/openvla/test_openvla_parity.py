"""Parity with the reference OpenVLA code (openvla/openvla HF files) on a tiny checkpoint it saved.

The fixture holds the reference's pixel values, prompt ids, per-step logits, generated ids and
unnormalised actions; our backend loads the same folder (sharded bfloat16 safetensors) in float32.
"""

import dataclasses

import numpy as np
import pytest

from vla_ros.backends.openvla.backend import load_openvla_backend
from vla_ros.backends.openvla.checkpoint import load_processor_config
from vla_ros.backends.openvla.processing import pixel_values
from vla_ros.core.types import Observation

TOL = 1e-4


@pytest.fixture(scope="module")
def backend(reference_checkpoint, reference_settings):
    return load_openvla_backend(reference_checkpoint, config=reference_settings)


@pytest.mark.parametrize("strategy", ["resize-naive", "resize-crop", "letterbox"])
def test_pixel_values_match_the_reference_processor(reference_checkpoint, expected, strategy):
    cfg = dataclasses.replace(load_processor_config(reference_checkpoint), resize_strategy=strategy)
    ours = pixel_values(expected["image"], cfg)
    ref = expected[f"pixel_values_{strategy.replace('-', '_')}"]
    assert ours.shape == ref.shape == (6, 56, 56)
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_prompt_ids_match_the_reference_including_the_appended_empty_token(backend, expected):
    ids = backend.input_ids(str(expected["instruction"]))
    assert ids == expected["input_ids"].tolist()
    assert ids[:-1] == expected["prompt_ids"].tolist() and ids[-1] == 29871


def test_every_step_logits_tokens_and_actions_match_the_reference(backend, expected):
    pixels = backend.pixel_values(expected["image"])
    tokens, logits = backend.generate(pixels, expected["input_ids"].tolist())
    np.testing.assert_array_equal(tokens, expected["generated_ids"])
    assert logits.shape == (7, 32064)
    delta = np.abs(logits[:, expected["logit_vocab_ids"]] - expected["logits"]).max()
    assert delta <= TOL, f"max |Δ logits| {delta}"

    obs = Observation(0.0, {"front": expected["image"]}, backend.joint_names, np.zeros(7), str(expected["instruction"]))
    actions = backend.predict_actions(obs)
    assert actions.shape == (1, 7)
    np.testing.assert_allclose(actions[0], expected["actions"], atol=TOL, rtol=0)


def test_static_cache_decodes_the_same(backend, expected):
    pixels = backend.pixel_values(expected["image"])
    original = backend.settings
    backend.settings = dataclasses.replace(original, static_cache=True)
    try:
        tokens, logits = backend.generate(pixels, expected["input_ids"].tolist())
    finally:
        backend.settings = original
    np.testing.assert_array_equal(tokens, expected["generated_ids"])
    assert np.abs(logits[:, expected["logit_vocab_ids"]] - expected["logits"]).max() <= TOL
