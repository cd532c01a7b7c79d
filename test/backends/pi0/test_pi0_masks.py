"""π₀ token layout: the attention rule token by token, and RoPE positions."""

import torch

from vla_ros.backends.pi0.modeling import block_attention_mask, positions_from_valid


def expected_mask(kinds: list[str], valid: list[bool]) -> torch.Tensor:
    """The rule written out: prefix tokens see the prefix; the state sees prefix + itself; actions see
    everything; padding is neither query nor key."""
    sees = {"prefix": {"prefix"}, "state": {"prefix", "state"}, "action": {"prefix", "state", "action"}}
    n = len(kinds)
    out = torch.zeros(n, n, dtype=torch.bool)
    for q in range(n):
        for k in range(n):
            out[q, k] = valid[q] and valid[k] and kinds[k] in sees[kinds[q]]
    return out


def layout(tiny_model, image_valid, token_valid):
    cfg = tiny_model.cfg
    t = cfg.vision.num_tokens
    prefix_valid = torch.cat([torch.tensor(image_valid).repeat_interleave(t), torch.tensor(token_valid)])[None]
    kinds = ["prefix"] * prefix_valid.shape[1] + ["state"] + ["action"] * cfg.action_horizon
    valid = prefix_valid[0].tolist() + [True] * (1 + cfg.action_horizon)
    return prefix_valid, kinds, valid


def test_model_mask_follows_the_rules_token_by_token(tiny_model):
    token_valid = [True] * 5 + [False] * 3
    prefix_valid, kinds, valid = layout(tiny_model, [True, False, True], token_valid)
    mask, _ = tiny_model.layout(prefix_valid)
    assert torch.equal(mask[0], expected_mask(kinds, valid))
    p = prefix_valid.shape[1]
    assert not mask[0, 0, p] and not mask[0, p, p + 1] and mask[0, p + 1, p] and mask[0, -1, p + 1]


def test_generic_block_rule_matches_big_vision_examples():
    valid = torch.ones(1, 6, dtype=torch.bool)
    causal = block_attention_mask(valid, torch.ones(6, dtype=torch.bool))[0]
    assert torch.equal(causal, torch.tril(torch.ones(6, 6, dtype=torch.bool)))
    prefix_lm = block_attention_mask(valid, torch.tensor([False] * 3 + [True] * 3))[0]
    assert (
        prefix_lm[:3, :3].all()
        and not prefix_lm[:3, 3:].any()
        and torch.equal(prefix_lm[3:, 3:], torch.tril(torch.ones(3, 3, dtype=torch.bool)))
    )


def test_positions_skip_padding_and_masked_cameras(tiny_model):
    prefix_valid, _, _ = layout(tiny_model, [True, False, True], [True] * 5 + [False] * 3)
    _, positions = tiny_model.layout(prefix_valid)
    t = tiny_model.cfg.vision.num_tokens
    pos = positions[0].tolist()
    assert pos[:t] == list(range(t))  # first camera
    assert pos[2 * t : 3 * t] == list(range(t, 2 * t))  # the masked camera took no position
    n_valid = 2 * t + 5
    suffix = pos[-(1 + tiny_model.cfg.action_horizon) :]
    assert suffix == list(range(n_valid, n_valid + 1 + tiny_model.cfg.action_horizon))
    assert torch.equal(positions_from_valid(torch.tensor([[True, False, True]])), torch.tensor([[0, 0, 1]]))
