"""Parity with LeRobot 0.6.1's SmolVLAPolicy, stage by stage, from committed fixtures (make_smolvla_fixture.py).

Two LeRobot folders saved by LeRobot itself, loaded as they are: lerobot_smolvla (SmolVLM2-500M's real
widths at reduced depth, cross-attention every other layer; weights rebuilt from their seeds and
checked against LeRobot's file) and lerobot_smolvla_tiny (toy widths, self_attn mode, padded prompt,
quantile state normalisation). Same observation and noise as LeRobot; every stage within 1e-4 (float32).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import FIXTURES, reference

from vla_ros.backends.base import load_backend
from vla_ros.backends.blocks.flow import euler_integrate
from vla_ros.core.types import Observation

TOL = 1e-4


@pytest.fixture(scope="module", params=["lerobot_smolvla", "lerobot_smolvla_tiny"])
def case(request, real_width_folder):
    folder = real_width_folder if request.param == "lerobot_smolvla" else FIXTURES / request.param
    backend = load_backend("smolvla", folder, {"device": "cpu"}, num_threads=2)
    return request.param, backend, reference(folder)


def observation(backend, ref) -> Observation:
    images = {str(c): ref[f"image_{c}"] for c in ref["cameras"]}
    return Observation(0.0, images, backend.joint_names, ref["state"], str(ref["task"]))


def close(ours, theirs, what: str, tol: float = TOL) -> None:
    ours = np.asarray(ours, np.float64)
    theirs = np.asarray(theirs, np.float64)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} != {theirs.shape}"
    diff = np.abs(ours - theirs).max()
    assert diff <= tol, f"{what}: max abs diff {diff:.3g} > {tol} (values up to {np.abs(theirs).max():.3g})"


def test_the_folder_is_read_as_lerobot_saved_it(case):
    name, backend, ref = case
    provenance = backend.provenance
    assert provenance["steps"].endswith("config.json:num_steps)") and backend.steps == len(ref["velocities"])
    assert "policy_preprocessor.json:steps[3].tokenizer_processor.config.max_length" in provenance["max_length"]
    assert "normalizer_processor" in provenance["state_norm"] and "unnormalizer_processor" in provenance["action_norm"]
    if name == "lerobot_smolvla":
        cfg = backend.cfg
        assert (cfg.text.hidden_size, cfg.text.num_attention_heads, cfg.text.num_key_value_heads) == (960, 15, 5)
        assert (cfg.vlm.vision_config.hidden_size, cfg.expert_config().hidden_size) == (768, 720)
        assert (cfg.layers, cfg.cameras, backend.horizon) == (4, ("front", "side", "wrist", "empty_camera_0"), 50)
        assert [cfg.self_attention_layer(i) for i in range(4)] == [True, False, True, False]
    else:
        assert backend.processor.modes["state"] == "quantiles" and backend.tokenizer.padding == "max_length"
        cfg = backend.cfg
        assert cfg.attention_mode == "self_attn" and (cfg.min_period, cfg.max_period) == (5e-3, 3.0)


def test_every_stage_matches_lerobot(case):
    name, backend, ref = case
    model, obs = backend.model, observation(backend, ref)
    # prompt and state, as the pre-processor makes them
    ids, valid = backend.tokenizer(obs.instruction)
    np.testing.assert_array_equal(ids, ref["token_ids"])
    np.testing.assert_array_equal(valid, ref["token_mask"])
    q = obs.joint_positions
    state = backend.processor.state_input(backend.output.state_vector(q))
    close(state, ref["state_input"][: state.shape[0]], "normalised, padded state", 1e-6)
    with torch.no_grad():
        # images resized with pad (left/top), scaled to [-1, 1]: every 8th pixel and the mean magnitude
        pixels = backend.processor.images(obs.images)
        for i in range(pixels.shape[0]):
            close(pixels[i, :, ::8, ::8], ref[f"pixels_{i}"], f"image {i}", 1e-6)
            close(pixels[i].abs().mean(), ref[f"pixels_{i}_mean_abs"], f"image {i} mean", 1e-6)
        vlm = model.vlm_with_expert.vlm.model
        vision = vlm.vision_model(pixel_values=pixels).last_hidden_state
        connector = vlm.connector(vision)
        for i in range(pixels.shape[0]):
            close(vision[i][ref[f"vision_{i}_rows"]], ref[f"vision_{i}"], f"vision transformer, image {i}")
            close(connector[i][ref[f"connector_{i}_rows"]], ref[f"connector_{i}"], f"connector, image {i}")
        prefix, prefix_valid, starts = model.embed_prefix(
            pixels[None], torch.from_numpy(ids)[None], torch.from_numpy(valid)[None], torch.from_numpy(state)[None]
        )
        rows = prefix[0][prefix_valid[0]]  # LeRobot's masked (missing / empty camera) tokens are not here at all
        assert rows.shape[0] == int(ref["prefix_valid_count"])
        close(rows[ref["prefix_rows"]], ref["prefix"], "prefix embeddings (valid tokens)")
        cache = model.prefill(prefix, prefix_valid, starts)
        assert len(cache.keys) == int(ref["layers"])
        for i, (k, v) in enumerate(zip(cache.keys, cache.values)):
            close(k[0][prefix_valid[0]][ref[f"keys_{i}_rows"]], ref[f"keys_{i}"], f"prefix keys, layer {i}")
            close(v[0][prefix_valid[0]][ref[f"values_{i}_rows"]], ref[f"values_{i}"], f"prefix values, layer {i}")
        field, velocities = model.denoiser(cache), []

        def recorded(x, t):
            velocities.append(field(x, t))
            return velocities[-1]

        sampled = euler_integrate(recorded, torch.from_numpy(ref["noise"])[None], backend.steps)
    for step, (ours, theirs) in enumerate(zip(velocities, ref["velocities"])):
        close(ours[0], theirs, f"velocity, denoising step {step}")
    close(sampled[0], ref["sampled"], "sampled chunk (model units, padded)")


def test_the_action_chunk_matches_lerobot_end_to_end(case):
    name, backend, ref = case
    chunk = backend.predict(observation(backend, ref), noise=ref["noise"])
    close(chunk.positions, ref["actions"], "actions after the post-processor")
    assert np.abs(ref["actions"] - ref["actions"].mean(0)).max() > 0.05  # not a degenerate chunk
    assert chunk.joint_names == backend.joint_names and len(chunk.positions) == backend.horizon
