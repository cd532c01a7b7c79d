"""OpenVLA inputs and outputs: prompt, empty-token rule, detokeniser over every bin, unnormalisation."""

import numpy as np
import pytest

from vla_ros.backends.openvla.backend import load_openvla_backend
from vla_ros.backends.openvla.configuration import EMPTY_TOKEN_ID
from vla_ros.backends.openvla.processing import (
    ActionTokenizer,
    center_crop,
    prompt,
    unnormalize,
    with_empty_token,
)

LLAMA_VOCAB_END = 32000


def test_prompt_lowercases_the_instruction_in_the_fixed_template():
    assert (
        prompt("Put The Red Cube ON the blue cube")
        == "In: What action should the robot take to put the red cube on the blue cube?\nOut:"
    )


def test_empty_token_is_appended_once():
    assert with_empty_token([1, 512, 29901]) == [1, 512, 29901, EMPTY_TOKEN_ID]
    assert with_empty_token([1, 512, EMPTY_TOKEN_ID]) == [1, 512, EMPTY_TOKEN_ID]


def test_prompt_tokens_of_a_known_instruction_through_the_checkpoint_tokenizer(openvla_checkpoint):
    backend = load_openvla_backend(openvla_checkpoint)
    ids = backend.input_ids("Reach The Red Cube")
    assert ids == backend.input_ids("reach the red cube")
    assert ids[0] == backend.tokenizer.bos_token_id and ids[-1] == EMPTY_TOKEN_ID and ids.count(EMPTY_TOKEN_ID) == 1
    assert backend.tokenizer.decode(ids[:-1], skip_special_tokens=True) == prompt("reach the red cube")


def test_every_bin_centre_round_trips_through_its_token():
    tok = ActionTokenizer(LLAMA_VOCAB_END, 256)
    assert tok.centers.shape == (255,)
    ids = tok.encode(tok.centers)
    np.testing.assert_array_equal(ids, LLAMA_VOCAB_END - 1 - np.arange(255))
    np.testing.assert_array_equal(tok.decode(ids), tok.centers)


def test_all_256_action_tokens_decode_monotonically_and_the_ends_clip():
    tok = ActionTokenizer(LLAMA_VOCAB_END, 256)
    ids = np.arange(LLAMA_VOCAB_END - 256, LLAMA_VOCAB_END)  # 31744 .. 31999
    values = tok.decode(ids)
    assert np.all(np.diff(values) <= 0) and np.all(np.abs(values) < 1)
    top, bottom = tok.centers[-1], tok.centers[0]
    assert values[0] == values[1] == top  # 31744 is what +1.0 encodes to: clipped to the last centre
    assert values[-1] == bottom
    assert tok.encode(np.array([1.0, 5.0]))[0] == tok.encode(np.array([5.0]))[0] == LLAMA_VOCAB_END - 256
    assert tok.decode(np.array([LLAMA_VOCAB_END, LLAMA_VOCAB_END + 63]))[0] == bottom  # padding ids: first bin
    assert tok.decode(np.array([100]))[0] == top  # ordinary text ids: last bin
    np.testing.assert_allclose(
        tok.decode(tok.encode(np.linspace(-1, 1, 1001))), np.linspace(-1, 1, 1001), atol=1 / 255 + 1e-12
    )


def test_unnormalisation_maps_minus_one_and_one_to_q01_q99_and_leaves_masked_dims():
    stats = {"q01": [-0.2, 0.0, 1.0], "q99": [0.2, 4.0, 3.0], "mask": [True, True, False]}
    x = np.array([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0], [0.0, 0.5, 0.25]])
    out = unnormalize(x, stats)
    np.testing.assert_allclose(out[0], [-0.2, 0.0, -1.0])
    np.testing.assert_allclose(out[1], [0.2, 4.0, 1.0])
    np.testing.assert_allclose(out[2], [0.0, 3.0, 0.25])
    no_mask = unnormalize(x, {"q01": stats["q01"], "q99": stats["q99"]})
    np.testing.assert_allclose(no_mask[:, 2], [1.0, 3.0, 2.25])
    assert unnormalize(np.ones(3), stats, eps=1e-8)[1] == pytest.approx(4.0 + 1e-8)


def test_center_crop_keeps_the_area_fraction_around_the_centre():
    rgb = np.arange(100 * 60 * 3, dtype=np.uint8).reshape(100, 60, 3)
    crop = center_crop(rgb, 0.9)
    assert crop.shape == (95, 57, 3)
    np.testing.assert_array_equal(crop[0, 0], rgb[2, 1])
