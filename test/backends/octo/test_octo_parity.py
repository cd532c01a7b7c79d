"""OctoNet against the JAX reference (fixture from scripts/fixtures/make_octo_fixture.py): same random
weights, read from a reference-written orbax checkpoint and converted; max |diff| <= 1e-4 float32."""

from __future__ import annotations

import numpy as np
import torch

from vla_ros.backends.octo.modeling import additive_mask

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


def _seeded_module():
    """scripts/fixtures/octo_seeded.py: the seeded params and inputs the reference ran on."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "scripts" / "fixtures" / "octo_seeded.py"
    spec = importlib.util.spec_from_file_location("octo_seeded", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_octo_small_layout_matches_reference_on_seeded_weights():
    """The octo-small-1.5 layout (27.0M parameters, 690 tokens, window 2) on weights drawn from a seed on
    both sides; windows: full with language, and first step padded + wrist missing + goal image only."""
    import json
    from pathlib import Path

    from vla_ros.backends.octo.convert import convert_params
    from vla_ros.backends.octo.modeling import OctoNet

    folder = Path(__file__).parent / "fixtures" / "small"
    seeded = _seeded_module()
    meta = json.loads((folder / "shapes.json").read_text())
    with np.load(folder / "reference.npz") as z:
        ref = {k: z[k] for k in z.files}
    cfg, weights = convert_params(
        json.loads((folder / "config.json").read_text()), seeded.seeded_params(meta["shapes"], meta["seed"])
    )
    net = OctoNet(cfg).eval()
    net.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
    assert sum(p.numel() for p in net.parameters()) == 27_042_060
    sizes = {"image_primary": 256, "image_wrist": 128}
    x = seeded.seeded_inputs(meta["seed"], 2, 2, sizes, (16, 768))

    def scaled(a):
        return torch.from_numpy(a.astype(np.float32) / 127.5 - 1.0).movedim(-1, -3)

    names = {"primary": "image_primary", "wrist": "image_wrist"}
    with torch.inference_mode():
        readouts = net(
            images={n: scaled(x[f"obs/{k}"]) for n, k in names.items()},
            image_valid={n: torch.from_numpy(x[f"obs_pad/{k}"]) for n, k in names.items()},
            timestep_valid=torch.from_numpy(x["timestep_pad_mask"]),
            goals={n: scaled(x[f"goal/{k}"]) for n, k in names.items()},
            language=torch.from_numpy(x["language"]),
            language_valid=torch.from_numpy(x["language_pad"]),
        )
        np.testing.assert_allclose(readouts.numpy(), ref["readouts"], rtol=0, atol=TOL)
        embedding = net.embedding(torch.from_numpy(ref["readouts"]))
        for i, k in enumerate(range(19, -1, -1)):
            xk = torch.from_numpy(ref["sample/step_inputs"][i])
            eps = net.head(embedding, xk, torch.full((*xk.shape[:-1], 1), k)).numpy()
            np.testing.assert_allclose(eps, ref["sample/step_eps"][i], rtol=0, atol=TOL, err_msg=f"step k={k}")
        actions = net.head.sample(embedding, torch.from_numpy(ref["sample/noises"]))[:, -1].numpy()
    np.testing.assert_allclose(actions, ref["sample/actions"], rtol=0, atol=TOL)


def test_t5_encoder_matches_the_reference_flax_t5():
    """transformers' PyTorch T5EncoderModel (what the runtime loads from t5_folder) against the Flax T5
    encoder the reference's LanguageTokenizer runs, same random weights, padded and full instructions."""
    import json
    from pathlib import Path

    from transformers import T5Config, T5EncoderModel

    from vla_ros.backends.octo.convert import t5_state_dict

    folder = Path(__file__).parent / "fixtures" / "t5"
    with np.load(folder / "reference.npz") as z:
        ref = {k: z[k] for k in z.files}
    raw = json.loads((folder / "config.json").read_text())
    cfg = T5Config(**{k: v for k, v in raw.items() if k not in ("architectures", "transformers_version")})
    model = T5EncoderModel(cfg).eval()
    weights = t5_state_dict({k[len("params/") :]: v for k, v in ref.items() if k.startswith("params/")})
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=False)
    assert not missing and not unexpected
    with torch.inference_mode():
        states = model(
            input_ids=torch.from_numpy(ref["input_ids"]).long(), attention_mask=torch.from_numpy(ref["attention_mask"])
        ).last_hidden_state.numpy()
    np.testing.assert_allclose(states, ref["states"], rtol=0, atol=TOL)
