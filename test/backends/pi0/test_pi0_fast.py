"""π₀ fast path against the eager float32 path: the static-shape sampler (eager, torch.compile), bfloat16,
and the device-side image scaling (bit-exact with the processor on the CPU)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from vla_ros.backends.blocks.flow import euler_integrate
from vla_ros.backends.normalization import DatasetStatistics, FeatureStats
from vla_ros.backends.pi0.checkpoint import build_model
from vla_ros.backends.pi0.fast import DeviceImages, FastSampler, resolve_mode
from vla_ros.backends.pi0.origin import default_profile
from vla_ros.backends.pi0.processing import Pi0Processor
from vla_ros.backends.pi0.settings import Pi0Settings
from vla_ros.backends.pi0.tiny import tiny_config

STEPS = 4


def inputs(cfg, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    c, s, n = len(cfg.image_slots), cfg.vision.image_size, cfg.max_token_len
    return (
        torch.rand(1, c, 3, s, s, generator=g) * 2 - 1,
        torch.tensor([[True] * (c - 1) + [False]]),
        torch.randint(0, cfg.vocab_size, (1, n), generator=g),
        torch.arange(n)[None] < n - 3,
        torch.randn(1, cfg.state_dim, generator=g),
        torch.randn(1, cfg.action_horizon, cfg.action_dim, generator=g),
    )


def eager_reference(model, images, image_valid, tokens, token_valid, state, noise, steps: int = STEPS):
    with torch.no_grad():
        cache = model.prefill(*model.embed_prefix(images, image_valid, tokens, token_valid))
        return euler_integrate(model.denoiser(cache, state), noise, steps), cache


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(tiny_config(horizon=8), "cpu", torch.float32)


def test_static_sampler_equals_the_eager_loop_exactly(model):
    images, image_valid, tokens, token_valid, state, noise = inputs(model.cfg)
    reference, cache = eager_reference(model, images, image_valid, tokens, token_valid, state, noise)
    out = FastSampler(model, STEPS, "eager")(cache, state, noise)
    assert torch.equal(out, reference)


def test_compiled_sampler_matches_eager_float32():
    """Inductor's C++ code for a one-layer model and 2 steps (compiling the 2-layer, 4-step loop takes ~90 s
    on this CI's 2 cores; the full-size loop is compiled and checked by scripts/gpu_check.sh)."""
    cfg = tiny_config(horizon=8)
    cfg = dataclasses.replace(
        cfg,
        paligemma=dataclasses.replace(cfg.paligemma, depth=1),
        action_expert=dataclasses.replace(cfg.action_expert, depth=1),
    )
    torch.manual_seed(0)
    model = build_model(cfg, "cpu", torch.float32)
    images, image_valid, tokens, token_valid, state, noise = inputs(model.cfg, seed=1)
    reference, cache = eager_reference(model, images, image_valid, tokens, token_valid, state, noise, steps=2)
    sampler = FastSampler(model, 2, "compile")
    out = sampler(cache, state, noise)
    delta = (out - reference).abs().max().item()
    print(f"torch.compile (inductor, CPU) vs eager float32: max |delta| = {delta:.2e}")
    assert delta < 1e-4
    again = sampler(cache, state, noise + 0.5)  # the same compiled graph on new values
    expected = euler_integrate(model.denoiser(cache, state), noise + 0.5, 2)
    assert (again - expected).abs().max().item() < 1e-4


def test_bfloat16_fast_path_stays_within_bf16_tolerance_of_float32(model):
    data = inputs(model.cfg, seed=2)
    reference, _ = eager_reference(model, *data)
    bf16 = build_model(model.cfg, "cpu", torch.bfloat16)
    bf16.load_state_dict(model.state_dict())
    bf16.set_dtype(torch.bfloat16)
    with torch.no_grad():
        cache = bf16.prefill(*bf16.embed_prefix(*data[:4]))
    out = FastSampler(bf16, STEPS, "eager")(cache, data[4], data[5])
    delta = (out - reference).abs().max().item()
    scale = reference.abs().max().item()
    print(f"bfloat16 fast path vs eager float32: max |delta| = {delta:.3e} (max |x| {scale:.2f})")
    assert out.dtype == torch.float32 and 0 < delta < 0.05 * max(scale, 1.0)


def test_modes_are_checked_against_the_device():
    assert resolve_mode("auto", torch.device("cpu")) == "eager"
    assert resolve_mode("auto", torch.device("cuda")) == "cuda_graph"
    with pytest.raises(ValueError, match="cuda_graph needs a CUDA device"):
        resolve_mode("cuda_graph", torch.device("cpu"))
    with pytest.raises(ValueError, match="fast_path"):
        resolve_mode("fast", torch.device("cpu"))


@pytest.mark.parametrize("origin", ["openpi", "lerobot"])
def test_device_images_are_bit_identical_to_the_processor_on_cpu(origin):
    cfg = dataclasses.replace(tiny_config(horizon=4), vision=dataclasses.replace(tiny_config().vision, image_size=56))
    settings = Pi0Settings(joints=("a", "b"), cameras={"base_0_rgb": "front", "right_wrist_0_rgb": "wrist"})
    stats = DatasetStatistics(
        FeatureStats(np.zeros(2), np.ones(2), np.ones(2, bool)), FeatureStats(np.zeros(2), np.ones(2), np.ones(2, bool))
    )
    processor = Pi0Processor(cfg, settings, stats, default_profile(cfg, origin))
    rng = np.random.default_rng(3)
    frames = {
        "front": rng.integers(0, 256, (48, 64, 3), dtype=np.uint8),
        "wrist": rng.integers(0, 256, (56, 56, 3), dtype=np.uint8),
    }
    frames["front"].flags.writeable = False  # as a view of a received message
    expected, expected_valid = processor.images(frames)
    pixels, valid = DeviceImages(processor, torch.device("cpu"))(frames)
    np.testing.assert_array_equal(valid, expected_valid)
    np.testing.assert_array_equal(pixels.numpy(), expected)
