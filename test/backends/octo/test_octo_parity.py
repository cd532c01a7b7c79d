"""OctoNet against the JAX reference (fixture from scripts/fixtures/make_octo_fixture.py): same random
weights, read from a reference-written orbax checkpoint and converted; max |diff| <= 1e-4 float32."""

from __future__ import annotations

import numpy as np
import torch

from vla_ros.backends.octo.modeling_release import additive_mask

TOL = 1e-4


def test_readout_embeddings_match_reference(reference, inputs, tiny_net):
    """Windows: full; first step padded + wrist camera missing; goal image + language; goal only."""
    with torch.inference_mode():
        readouts = tiny_net(**inputs).numpy()
    assert readouts.shape == reference["readouts"].shape
    np.testing.assert_allclose(readouts, reference["readouts"], rtol=0, atol=TOL)


def test_attention_mask_matches_reference_token_by_token(reference, inputs, tiny_net):
    tokens, valid = tiny_net.tokens(**inputs)
    rule = tiny_net.rule_mask(True, inputs["timestep_valid"].shape[1], tokens.device)
    mask = (rule[None] & valid[:, None, :]).numpy()
    np.testing.assert_array_equal(mask, reference["attention_mask"])
    assert (additive_mask(torch.from_numpy(mask)) == 0).numpy().tolist() == mask.tolist()


def _check_sampler(reference, tiny_net, prefix: str, action_dim: int | None):
    embedding = tiny_net.embedding(torch.from_numpy(reference["readouts"]))
    eps_ref = reference[f"{prefix}/step_eps"]
    inputs = reference[f"{prefix}/step_inputs"]
    k_steps = len(eps_ref)
    with torch.inference_mode():
        for i, k in enumerate(range(k_steps - 1, -1, -1)):  # the noise prediction at every step
            x = torch.from_numpy(inputs[i])
            eps = tiny_net.head(embedding, x, torch.full((*x.shape[:-1], 1), k)).numpy()
            np.testing.assert_allclose(eps, eps_ref[i], rtol=0, atol=TOL, err_msg=f"step k={k}")
        chunk = tiny_net.head.sample(embedding, torch.from_numpy(reference[f"{prefix}/noises"]), action_dim)
    actions = chunk[:, -1].numpy()  # the reference returns the window's last step
    np.testing.assert_allclose(actions, reference[f"{prefix}/actions"], rtol=0, atol=TOL)
    assert np.abs(actions - reference[f"{prefix}/actions_jit"]).max() < 1e-3
    return actions


def test_sampled_actions_match_reference_with_fixed_noise(reference, tiny_net):
    actions = _check_sampler(reference, tiny_net, "sample", None)
    assert (np.abs(actions) < 4.999).any()  # not every value ends at the clip


def test_embodiment_action_dim_masks_dims_as_reference(reference, tiny_net):
    _check_sampler(reference, tiny_net, "sample_dim5", 5)
