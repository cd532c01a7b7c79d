"""Real-Time Chunking's soft mask and the executor's plan prefix on a chunk's time grid."""

import numpy as np
import pytest

from vla_ros.backends.blocks.rtc import prefix_on_grid, soft_mask
from vla_ros.core.types import PlanPrefix

JOINTS = ("a", "b")


@pytest.mark.parametrize("horizon, frozen, overlap", [(8, 3, 6), (8, 0, 8), (10, 4, 5), (8, 2, 2), (5, 6, 9)])
def test_soft_mask_is_one_then_decays_strictly_then_zero(horizon, frozen, overlap):
    w = soft_mask(horizon, frozen, overlap)
    f, o = min(frozen, horizon), min(max(overlap, frozen), horizon)
    assert w.shape == (horizon,)
    np.testing.assert_array_equal(w[:f], 1.0)
    np.testing.assert_array_equal(w[o:], 0.0)
    decay = w[f:o]
    assert np.all((decay > 0) & (decay < 1)) and np.all(np.diff(decay) < 0)


def test_an_overlap_shorter_than_the_frozen_part_freezes_only():
    np.testing.assert_array_equal(soft_mask(6, 4, 2), [1, 1, 1, 1, 0, 0])


def test_prefix_on_grid_aligns_by_absolute_time():
    """The executor's plan ahead starts at its own 'now' (off the chunk's grid): the targets are the plan
    at the chunk's point times, frozen up to the committed time, decaying to the plan's end, then free."""
    stamp = 100.0  # the observation's stamp: the chunk's point i is due at stamp + (i + 1) dt
    dt = 0.1
    grid = stamp + dt * np.arange(1, 9)
    times = stamp + 0.037 + np.array([0.0, 0.1, 0.25, 0.4, 0.55])  # published 37 ms after the stamp, ends at 100.587
    positions = np.stack([np.sin(times - stamp), 2 * (times - stamp)], axis=1)
    prefix = PlanPrefix(times, positions, JOINTS, committed_until_s=stamp + 0.33)
    targets, weights = prefix_on_grid(prefix, grid)
    inside = grid <= times[-1]
    for j in range(2):
        np.testing.assert_allclose(targets[inside, j], np.interp(grid[inside], times, positions[:, j]))
    np.testing.assert_array_equal(targets[~inside], np.repeat(positions[-1:], (~inside).sum(), 0))
    np.testing.assert_array_equal(weights[:3], 1.0)  # due at 100.1, .2, .3 <= 100.33
    assert np.all((weights[3:5] > 0) & (weights[3:5] < 1))  # 100.4, 100.5 <= 100.587
    np.testing.assert_array_equal(weights[5:], 0.0)
    assert np.all(np.diff(weights) <= 0)


def test_a_plan_that_ends_before_the_chunk_arrives_freezes_its_rest_pose():
    """The executor holds at the plan's last point: the points due before the chunk can arrive are there."""
    stamp = 5.0
    prefix = PlanPrefix(np.array([5.02]), np.array([[0.3, -0.2]]), JOINTS, committed_until_s=stamp + 0.25)
    targets, weights = prefix_on_grid(prefix, stamp + 0.1 * np.arange(1, 9))
    np.testing.assert_array_equal(weights, [1, 1, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(targets, np.repeat([[0.3, -0.2]], 8, 0))


def test_overlap_to_the_chunk_end_pulls_every_later_point_less_and_less():
    stamp = 0.0
    times = np.array([0.03, 0.2, 0.45])
    prefix = PlanPrefix(times, np.array([[0.0, 1.0], [0.1, 1.1], [0.2, 1.3]]), JOINTS, committed_until_s=0.25)
    grid = stamp + 0.1 * np.arange(1, 9)
    plan_targets, plan_weights = prefix_on_grid(prefix, grid)
    targets, weights = prefix_on_grid(prefix, grid, overlap_end="chunk")
    np.testing.assert_array_equal(targets, plan_targets)  # the same targets: the plan, then its last point
    np.testing.assert_array_equal(weights[:2], 1.0)
    assert np.all(weights[2:] > 0) and np.all(np.diff(weights[1:]) < 0)
    np.testing.assert_array_equal(plan_weights[4:], 0.0)  # RTC: free after the plan's end (0.45 s)
    assert np.all(weights[2:4] > plan_weights[2:4])
    with pytest.raises(ValueError, match="overlap_end must be one of"):
        prefix_on_grid(prefix, grid, overlap_end="horizon")


def test_guidance_off_is_inpainting_alone_without_a_backward_pass():
    """max_guidance 0: no vector-Jacobian product (runs under inference_mode, where autograd is off), the
    same chunk as a vanishing guidance weight, and the frozen points on the plan."""
    import torch

    from vla_ros.backends.blocks.diffusion import DDPMSchedule, rtc_guided_denoiser

    torch.manual_seed(0)
    horizon, dims = 6, 3
    net = torch.nn.Sequential(
        torch.nn.Linear(horizon * dims + 1, 32), torch.nn.Tanh(), torch.nn.Linear(32, horizon * dims)
    )

    def denoise(x, k):
        return net(torch.cat([x, k[:, None].float() / 10], dim=1))

    schedule = DDPMSchedule(10)
    target = torch.randn(1, horizon, dims)
    weights = torch.from_numpy(soft_mask(horizon, 2, 4)).float()
    noise = torch.randn(1, horizon * dims)

    def sample(beta):
        return schedule.sample(
            rtc_guided_denoiser(denoise, schedule, target, weights, beta), noise, torch.Generator().manual_seed(1)
        )

    with torch.inference_mode():
        off = sample(0.0).view(1, horizon, dims)
        with pytest.raises(RuntimeError):
            sample(5.0)  # the guidance term needs autograd
    with torch.no_grad():
        vanishing = sample(1e-9).view(1, horizon, dims)
        guided = sample(5.0).view(1, horizon, dims)
    torch.testing.assert_close(off, vanishing, atol=1e-5, rtol=0)
    torch.testing.assert_close(off[0, :2], target[0, :2], atol=1e-5, rtol=0)
    assert not torch.allclose(guided[0, 2:], off[0, 2:], atol=1e-4)  # with a weight, guidance moves the rest
