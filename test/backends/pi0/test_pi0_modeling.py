"""π₀ model: checkpoint key layout, embeddings, KV-cached vs full-sequence velocity."""

import math

import pytest
import torch

from vla_ros.backends.pi0.modeling import Pi0Model

REAL_KEYS = (
    "paligemma_with_expert.paligemma.model.vision_tower.vision_model.embeddings.patch_embedding.weight",
    "paligemma_with_expert.paligemma.model.vision_tower.vision_model.encoder.layers.1.self_attn.out_proj.bias",
    "paligemma_with_expert.paligemma.model.vision_tower.vision_model.post_layernorm.weight",
    "paligemma_with_expert.paligemma.model.multi_modal_projector.linear.weight",
    "paligemma_with_expert.paligemma.model.language_model.embed_tokens.weight",
    "paligemma_with_expert.paligemma.model.language_model.layers.0.self_attn.q_proj.weight",
    "paligemma_with_expert.paligemma.model.language_model.layers.1.mlp.gate_proj.weight",
    "paligemma_with_expert.paligemma.model.language_model.norm.weight",
    "paligemma_with_expert.gemma_expert.model.layers.0.self_attn.k_proj.weight",
    "paligemma_with_expert.gemma_expert.model.layers.1.post_attention_layernorm.weight",
    "paligemma_with_expert.gemma_expert.model.norm.weight",
    "state_proj.weight",
    "action_in_proj.bias",
    "action_out_proj.weight",
    "action_time_mlp_in.weight",
    "action_time_mlp_out.bias",
)


def test_state_dict_uses_the_real_checkpoint_layout(tiny_model):
    keys = set(tiny_model.state_dict())
    assert set(REAL_KEYS) <= keys
    assert not [k for k in keys if "lm_head" in k or "gemma_expert.model.embed_tokens" in k or ".head." in k]
    cfg = tiny_model.cfg
    sd = tiny_model.state_dict()
    assert sd["paligemma_with_expert.gemma_expert.model.layers.0.self_attn.q_proj.weight"].shape == (
        cfg.action_expert.num_heads * cfg.action_expert.head_dim,
        cfg.action_expert.width,
    )
    assert sd["action_time_mlp_in.weight"].shape == (cfg.action_expert.width, 2 * cfg.action_expert.width)
    assert sd["state_proj.weight"].shape == (cfg.action_expert.width, 32)


def test_prefix_embedding_layout_and_language_scale(tiny_model, tiny_inputs):
    cfg = tiny_model.cfg
    with torch.no_grad():
        embs, valid = tiny_model.embed_prefix(
            tiny_inputs["images"], tiny_inputs["image_valid"], tiny_inputs["tokens"], tiny_inputs["token_valid"]
        )
        table = tiny_model.paligemma_with_expert.paligemma.model.language_model.embed_tokens.weight
    t = cfg.vision.num_tokens
    assert t == 4 and embs.shape == (2, 3 * t + cfg.max_token_len, cfg.paligemma.width)
    assert valid[1].tolist() == [True] * t + [False] * t + [True] * t + [True] * 8
    torch.testing.assert_close(embs[:, 3 * t :], table[tiny_inputs["tokens"]] * math.sqrt(cfg.paligemma.width))


def test_kv_cached_velocity_equals_the_full_sequence_forward(tiny_model, tiny_inputs):
    i = tiny_inputs
    with torch.no_grad():
        prefix, valid = tiny_model.embed_prefix(i["images"], i["image_valid"], i["tokens"], i["token_valid"])
        cache = tiny_model.prefill(prefix, valid)
        for t in (1.0, 0.55, 0.1):
            tt = torch.full((2,), t)
            cached = tiny_model.velocity(cache, i["state"], i["x"], tt)
            full = tiny_model.velocity_uncached(prefix, valid, i["state"], i["x"], tt)
            torch.testing.assert_close(cached, full, rtol=1e-5, atol=1e-6)
    assert cached.shape == i["x"].shape and cached.abs().sum() > 0


def test_the_cache_is_reused_unchanged_across_steps(tiny_model, tiny_inputs):
    i = tiny_inputs
    with torch.no_grad():
        cache = tiny_model.prefill(
            *tiny_model.embed_prefix(i["images"], i["image_valid"], i["tokens"], i["token_valid"])
        )
        keys = [k.clone() for k in cache.keys]
        a = tiny_model.velocity(cache, i["state"], i["x"], torch.full((2,), 0.5))
        tiny_model.velocity(cache, i["state"], i["x"] + 1, torch.full((2,), 0.9))
        b = tiny_model.velocity(cache, i["state"], i["x"], torch.full((2,), 0.5))
    assert all(torch.equal(k, k0) for k, k0 in zip(cache.keys, keys)) and torch.equal(a, b)


def test_masked_slots_can_be_dropped_without_changing_the_velocity(tiny_model, tiny_inputs):
    i = tiny_inputs
    keep = [0, 1]  # batch element 0 has slot 2 masked
    with torch.no_grad():
        full = tiny_model.prefill(
            *tiny_model.embed_prefix(i["images"][:1], i["image_valid"][:1], i["tokens"][:1], i["token_valid"][:1])
        )
        dropped = tiny_model.prefill(
            *tiny_model.embed_prefix(
                i["images"][:1, keep], i["image_valid"][:1, keep], i["tokens"][:1], i["token_valid"][:1]
            )
        )
        t = torch.full((1,), 0.4)
        a = tiny_model.velocity(full, i["state"][:1], i["x"][:1], t)
        b = tiny_model.velocity(dropped, i["state"][:1], i["x"][:1], t)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_state_and_time_reach_the_actions(tiny_model, tiny_inputs):
    i = tiny_inputs
    with torch.no_grad():
        cache = tiny_model.prefill(
            *tiny_model.embed_prefix(i["images"], i["image_valid"], i["tokens"], i["token_valid"])
        )
        v = tiny_model.velocity(cache, i["state"], i["x"], torch.full((2,), 0.5))
        assert not torch.allclose(v, tiny_model.velocity(cache, i["state"] + 1, i["x"], torch.full((2,), 0.5)))
        assert not torch.allclose(v, tiny_model.velocity(cache, i["state"], i["x"], torch.full((2,), 0.6)))


def test_bfloat16_stacks_track_float32(tiny_cfg, tiny_inputs):
    torch.manual_seed(0)
    model = Pi0Model(tiny_cfg).eval()
    i = tiny_inputs
    with torch.no_grad():
        args = (i["images"], i["image_valid"], i["tokens"], i["token_valid"])
        v32 = model.velocity(model.prefill(*model.embed_prefix(*args)), i["state"], i["x"], torch.full((2,), 0.5))
        model.set_dtype(torch.bfloat16)
        assert model.dtype == torch.bfloat16 and model.action_out_proj.weight.dtype == torch.float32
        rotary = model.paligemma_with_expert.rotary
        assert rotary.inv_freq.dtype == torch.float32 and torch.equal(rotary.inv_freq, rotary.original_inv_freq)
        v16 = model.velocity(model.prefill(*model.embed_prefix(*args)), i["state"], i["x"], torch.full((2,), 0.5))
    assert v16.dtype == torch.float32 and torch.isfinite(v16).all()
    assert (v16 - v32).abs().max() < 0.1 * v32.abs().max() + 0.05


@pytest.mark.parametrize("field", ["num_heads", "head_dim", "depth"])
def test_experts_must_share_the_attention_layout(tiny_cfg, field):
    import dataclasses

    expert = dataclasses.replace(tiny_cfg.action_expert, **{field: getattr(tiny_cfg.action_expert, field) * 2})
    with pytest.raises(ValueError, match="jointly"):
        dataclasses.replace(tiny_cfg, action_expert=expert)
