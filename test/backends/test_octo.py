"""The Octo backend on demo-style checkpoints: attention layout, sampler, checkpoint I/O, predict."""

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from vla_ros.backends.base import BackendError, load_backend
from vla_ros.backends.blocks.diffusion import DDPMSchedule, cosine_beta_schedule
from vla_ros.backends.blocks.rtc import prefix_on_grid
from vla_ros.backends.octo.checkpoint import load_config, load_model, save_checkpoint
from vla_ros.backends.octo.text import WordTokenizer
from vla_ros.core.types import Observation, PlanPrefix
from vla_ros.sim.tabletop import JOINT_NAMES


def test_demo_layout_attention_token_by_token(tiny_checkpoint):
    """The demo options' sequence (task words | front, wrist patches, proprio | readout) under Octo's rules."""
    cfg, _ = load_config(tiny_checkpoint)
    net = load_model(tiny_checkpoint, cfg)
    n_task, n_image = cfg.max_tokens, cfg.patches_per_image
    kinds = ["task"] * n_task + ["obs"] * (2 * n_image + 1) + ["readout"]
    rule = net.rule_mask(True, 1, torch.device("cpu")).numpy()
    assert rule.shape == (len(kinds), len(kinds))
    for q, kq in enumerate(kinds):
        for k, kk in enumerate(kinds):
            expected = kk == "task" or (kk == "obs" and kq != "task") or (kk == "readout" and kq == "readout")
            assert rule[q, k] == expected, (q, k)


def test_cosine_schedule_is_monotone_and_clipped():
    betas = cosine_beta_schedule(20)
    assert betas.shape == (20,) and torch.all(betas > 0) and betas.max() <= 0.999
    assert torch.all(torch.diff(DDPMSchedule(20).alpha_bar) < 0)


def test_sampler_recovers_the_data_with_an_oracle_denoiser():
    sched = DDPMSchedule(20)
    x0 = torch.tensor([[0.3, -1.2, 2.0, 0.0]])

    def oracle(x, k):  # the exact noise of x_k given x0
        ab = sched.alpha_bar[k].view(-1, 1)
        return (x - ab.sqrt() * x0) / (1 - ab).sqrt()

    out = sched.sample(
        oracle, torch.randn(1, 4, generator=torch.Generator().manual_seed(1)), torch.Generator().manual_seed(2)
    )
    torch.testing.assert_close(out, x0, atol=1e-4, rtol=0)


def test_add_noise_matches_its_definition():
    sched = DDPMSchedule(10)
    x0, eps, k = torch.ones(2, 3), torch.full((2, 3), 2.0), torch.tensor([0, 9])
    out = sched.add_noise(x0, eps, k)
    ab = sched.alpha_bar[k][:, None]
    torch.testing.assert_close(out, (ab.sqrt() + 2 * (1 - ab).sqrt()).expand(2, 3))


def test_tokenizer_pads_masks_and_maps_unknown_words():
    tok = WordTokenizer(("reach", "red"), 4)
    ids, valid = tok("Reach the RED cube")
    assert ids.tolist() == [2, 1, 3, 1] and valid.all()
    ids, valid = tok("red")
    assert ids.tolist() == [3, 0, 0, 0] and valid.tolist() == [True, False, False, False]


def observation(rng, instruction="reach the red cube"):
    images = {c: rng.integers(0, 255, (48, 40, 3), dtype=np.uint8) for c in ("front", "wrist")}
    return Observation(12.5, images, JOINT_NAMES, rng.normal(0, 0.3, len(JOINT_NAMES)), instruction)


def test_predict_returns_a_timed_chunk_for_the_observation(tiny_checkpoint):
    backend = load_backend("octo", tiny_checkpoint)
    obs = observation(np.random.default_rng(0))
    chunk = backend.predict(obs)
    assert chunk.t0_s == 12.5 and chunk.joint_names == JOINT_NAMES
    assert chunk.positions.shape == (4, len(JOINT_NAMES)) and np.all(np.isfinite(chunk.positions))
    np.testing.assert_allclose(chunk.times_s(), 12.5 + 0.1 * np.arange(1, 5))
    assert chunk.inference_s > 0


def test_same_noise_same_chunk_and_language_changes_the_output(tiny_checkpoint):
    backend = load_backend("octo", tiny_checkpoint)
    obs = observation(np.random.default_rng(0))
    noise = np.random.default_rng(1).normal(size=(4, len(JOINT_NAMES)))
    backend.generator.manual_seed(5)
    a = backend.predict(obs, noise).positions
    backend.generator.manual_seed(5)
    b = backend.predict(obs, noise).positions
    np.testing.assert_array_equal(a, b)
    backend.generator.manual_seed(5)
    other = Observation(obs.stamp_s, obs.images, obs.joint_names, obs.joint_positions, "reach the blue cube")
    assert not np.allclose(backend.predict(other, noise).positions, a)


def test_save_load_round_trip_reproduces_outputs(tiny_checkpoint, tmp_path):
    cfg, stats = load_config(tiny_checkpoint)
    save_checkpoint(tmp_path, load_model(tiny_checkpoint, cfg), cfg, stats)
    a, b = load_backend("octo", tiny_checkpoint), load_backend("octo", tmp_path)
    obs = observation(np.random.default_rng(3))
    noise = np.zeros((4, len(JOINT_NAMES)))
    np.testing.assert_array_equal(a.predict(obs, noise).positions, b.predict(obs, noise).positions)


def test_missing_key_is_named(tiny_checkpoint, tmp_path):
    import shutil

    shutil.copytree(tiny_checkpoint, tmp_path / "ckpt")
    weights = load_file(str(tmp_path / "ckpt" / "model.safetensors"))
    del weights["readout_pos"]
    save_file(weights, str(tmp_path / "ckpt" / "model.safetensors"))
    with pytest.raises(BackendError, match=r"missing keys \['readout_pos'\]"):
        load_backend("octo", tmp_path / "ckpt")


def test_missing_files_and_unknown_backend_are_clear_errors(tmp_path):
    with pytest.raises(BackendError, match="checkpoint folder not found"):
        load_backend("octo", tmp_path / "nope")
    with pytest.raises(
        BackendError, match=r"missing \['config.json', 'model.safetensors', 'dataset_statistics.json'\]"
    ):
        load_backend("octo", tmp_path)
    available = r"\['fault_injection', 'noop', 'octo', 'openpi_remote', 'openvla', 'pi0', 'sim_expert', 'smolvla'\]"
    with pytest.raises(BackendError, match=rf"unknown backend 'rt2' \(available: {available}\)"):
        load_backend("rt2", tmp_path)


def test_joints_are_matched_by_name_and_missing_ones_refused(tiny_checkpoint):
    backend = load_backend("octo", tiny_checkpoint)
    obs = observation(np.random.default_rng(0))
    noise = np.zeros((4, len(JOINT_NAMES)))
    order = np.random.default_rng(1).permutation(len(JOINT_NAMES))
    extra = Observation(
        obs.stamp_s,
        obs.images,
        (*np.array(JOINT_NAMES)[order], "conveyor"),
        np.append(obs.joint_positions[order], 9.0),
        obs.instruction,
    )
    backend.generator.manual_seed(0)
    expected = backend.predict(obs, noise).positions
    backend.generator.manual_seed(0)
    np.testing.assert_array_equal(backend.predict(extra, noise).positions, expected)
    bad = Observation(obs.stamp_s, obs.images, JOINT_NAMES[:-1], obs.joint_positions[:-1], obs.instruction)
    with pytest.raises(BackendError, match=r"observation lacks joints \['gripper'\]"):
        backend.predict(bad)


def test_guided_sampling_continues_the_running_plan(tiny_checkpoint):
    """RTC: with the executor's plan ahead as prefix, the frozen points follow it; unguided, they do not."""
    backend = load_backend("octo", tiny_checkpoint)
    obs = observation(np.random.default_rng(0))
    noise = np.random.default_rng(1).standard_normal((backend.horizon, len(JOINT_NAMES)))
    times = obs.stamp_s + np.linspace(0.0, backend.dt_s * backend.horizon, 9)
    plan = obs.joint_positions + 0.05 * np.sin(np.arange(9))[:, None]  # any plan the executor is running
    prefix = PlanPrefix(times, plan, JOINT_NAMES, committed_until_s=obs.stamp_s + 2.5 * backend.dt_s)
    free = backend.predict(obs, noise).positions
    guided = backend.predict(obs, noise, prefix).positions
    targets, weights = prefix_on_grid(prefix, obs.stamp_s + backend.dt_s * np.arange(1, backend.horizon + 1))
    frozen = weights == 1.0
    assert frozen.sum() == 2
    free_error = np.abs(free[frozen] - targets[frozen]).max()
    guided_error = np.abs(guided[frozen] - targets[frozen]).max()
    assert guided_error < 0.2 * free_error, (guided_error, free_error)
    with pytest.raises(BackendError, match="plan prefix lacks joints"):
        backend.predict(obs, noise, PlanPrefix(times, plan[:, :3], JOINT_NAMES[:3], obs.stamp_s))


def test_guidance_overlap_to_the_chunks_end_pulls_the_rest_of_the_chunk_to_the_plans_end(tiny_checkpoint):
    """`guidance_overlap: chunk`: after a plan that ends mid-chunk the points are pulled (ever less)
    towards its last position; with `plan` (RTC) they are free. Same noise, inpainting only."""
    obs = observation(np.random.default_rng(0))
    times = obs.stamp_s + np.linspace(0.0, 0.15, 4)
    plan = obs.joint_positions + 0.1 * np.arange(4)[:, None] / 3.0
    prefix = PlanPrefix(times, plan, JOINT_NAMES, committed_until_s=obs.stamp_s + 0.1)
    after_plan = {}
    for overlap in ("plan", "chunk"):
        backend = load_backend("octo", tiny_checkpoint, {"max_guidance": 0.0, "guidance_overlap": overlap})
        grid = obs.stamp_s + backend.dt_s * np.arange(1, backend.horizon + 1)
        assert grid[-1] > times[-1] + backend.dt_s  # points after the plan's end
        noise = np.random.default_rng(1).standard_normal((backend.horizon, len(JOINT_NAMES)))
        chunk = backend.predict(obs, noise, prefix).positions
        after_plan[overlap] = np.abs(chunk[grid > times[-1]] - plan[-1]).mean(axis=1)
    assert np.all(after_plan["chunk"] <= after_plan["plan"]), after_plan
    assert after_plan["chunk"].mean() < 0.9 * after_plan["plan"].mean(), after_plan
    with pytest.raises(BackendError, match=r"guidance_overlap: must be one of \['plan', 'chunk'\], got 'end'"):
        load_backend("octo", tiny_checkpoint, {"guidance_overlap": "end"})
