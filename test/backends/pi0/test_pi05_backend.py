"""π₀.5 end to end on a tiny folder (openpi layout): state in the prompt, RTC guidance, bfloat16."""

import numpy as np
import pytest
import torch

from vla_ros.backends.base import load_backend
from vla_ros.backends.pi0.tiny import make_tiny_checkpoint
from vla_ros.core.types import Observation, PlanPrefix
from vla_ros.sim.tabletop import JOINT_NAMES


@pytest.fixture(scope="module")
def pi05_checkpoint(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("pi05_tiny"), JOINT_NAMES, horizon=6, variant="pi05")


@pytest.fixture(scope="module")
def backend(pi05_checkpoint):
    return load_backend("pi0", pi05_checkpoint, {"device": "cpu"}, seed=0, num_threads=1)


def test_the_state_reaches_the_model_only_through_the_prompt(backend, make_observation):
    obs = make_observation()
    assert backend.cfg.pi05 and backend.processor.state_input(obs.joint_positions) is None
    assert "state_proj.weight" not in backend.model.state_dict()
    noise = np.random.default_rng(1).standard_normal((backend.horizon, 32)).astype(np.float32)
    moved = obs.joint_positions + np.where(np.arange(7) < 6, 0.0, 0.3)  # gripper (absolute): only the prompt changes
    ids_a, _ = backend.tokenizer(obs.instruction, backend.processor.prompt_state(obs.joint_positions))
    ids_b, _ = backend.tokenizer(obs.instruction, backend.processor.prompt_state(moved))
    assert not np.array_equal(ids_a, ids_b)
    a = backend.predict(obs, noise=noise).positions
    b = backend.predict(
        Observation(obs.stamp_s, obs.images, obs.joint_names, moved, obs.instruction), noise=noise
    ).positions
    assert np.abs(a[:, 6] - b[:, 6]).max() > 1e-6  # gripper quantile range is 0.04: ~1e-3 in model units


def test_the_time_conditions_the_expert_norms(backend):
    model = backend.model
    x = torch.randn(1, backend.horizon, 32, generator=torch.Generator().manual_seed(0))
    (_, cond_a), (_, cond_b) = (
        model.embed_suffix(None, x, torch.tensor([0.9])),
        model.embed_suffix(None, x, torch.tensor([0.2])),
    )
    assert cond_a.shape == (1, backend.cfg.action_expert.width) and not torch.allclose(cond_a, cond_b)
    assert "paligemma_with_expert.gemma_expert.model.layers.0.input_layernorm.dense.weight" in model.state_dict()


def test_rtc_guidance_pulls_the_frozen_part_to_the_plan(backend, make_observation):
    obs = make_observation(stamp_s=2.0)
    noise = np.random.default_rng(5).standard_normal((backend.horizon, 32)).astype(np.float32)
    plan = obs.joint_positions + 0.15 * np.linspace(1, 2, 4)[:, None]
    prefix = PlanPrefix(obs.stamp_s + 0.1 * np.arange(1, 5), plan, JOINT_NAMES, committed_until_s=obs.stamp_s + 0.25)
    free = backend.predict(obs, noise=noise)
    guided = backend.predict(obs, noise=noise, prefix=prefix)
    before, after = (np.abs(c.positions[:2] - plan[:2]).max() for c in (free, guided))
    assert after < 0.25 * before and after < 0.02, (before, after)


def test_bfloat16_stays_close_to_float32(pi05_checkpoint, backend, make_observation):
    obs = make_observation()
    noise = np.random.default_rng(2).standard_normal((backend.horizon, 32)).astype(np.float32)
    bf16 = load_backend("pi0", pi05_checkpoint, {"dtype": "bfloat16"})
    assert bf16.model.dtype == torch.bfloat16
    diff = np.abs(bf16.predict(obs, noise=noise).positions - backend.predict(obs, noise=noise).positions).max()
    assert np.isfinite(diff) and diff < 0.1
