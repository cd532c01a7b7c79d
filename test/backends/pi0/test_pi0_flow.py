"""Shared flow-matching blocks: time embedding, Euler sampler, RTC guidance (openpi convention)."""

import math

import pytest
import torch

from vla_ros.backends.blocks.flow import (
    euler_integrate,
    rtc_guidance_weight,
    rtc_guided,
    sincos_time_embedding,
)


def test_time_embedding_is_sin_then_cos_over_geometric_periods():
    emb = sincos_time_embedding(torch.tensor([0.0, 0.5]), 8, 4e-3, 4.0)
    assert emb.shape == (2, 8) and emb.dtype == torch.float32
    torch.testing.assert_close(emb[0], torch.tensor([0.0] * 4 + [1.0] * 4))
    periods = 4e-3 * (4.0 / 4e-3) ** torch.linspace(0, 1, 4, dtype=torch.float64)
    torch.testing.assert_close(emb[1, :4].double(), torch.sin(2 * math.pi * 0.5 / periods), rtol=0, atol=1e-6)
    torch.testing.assert_close(emb[1, 4:].double(), torch.cos(2 * math.pi * 0.5 / periods), rtol=0, atol=1e-6)
    with pytest.raises(ValueError):
        sincos_time_embedding(torch.zeros(1), 7)


def test_euler_is_exact_on_the_straight_flow_to_a_point():
    # x_t = t eps + (1 - t) a has velocity (x - a) / t: Euler follows the straight line exactly
    a = torch.tensor([[0.3, -1.2, 2.0]])
    eps = torch.tensor([[1.0, 0.5, -0.7]])
    for n in (1, 3, 10):
        out = euler_integrate(lambda x, t: (x - a) / t, eps, n)
        torch.testing.assert_close(out, a, atol=1e-6, rtol=0)


def test_euler_on_a_linear_field_matches_the_closed_form_and_converges_first_order():
    # dx/dt = k x from t = 1 to 0: exact x(0) = x(1) e^{-k}; Euler gives x(1) (1 - k/n)^n
    k, x1 = 1.5, torch.tensor([[2.0, -1.0]], dtype=torch.float64)
    errors = []
    for n in (10, 20, 40, 80):
        out = euler_integrate(lambda x, t: k * x, x1, n)
        torch.testing.assert_close(out, x1 * (1 - k / n) ** n, rtol=1e-12, atol=0)
        errors.append((out - x1 * math.exp(-k)).abs().max().item())
    ratios = [errors[i] / errors[i + 1] for i in range(3)]
    assert all(1.8 < r < 2.2 for r in ratios), ratios  # error ~ 1/n


def test_euler_evaluates_the_openpi_time_grid():
    seen = []
    euler_integrate(lambda x, t: seen.append(t) or torch.zeros_like(x), torch.zeros(1), 10)
    assert seen == pytest.approx([1.0 - k / 10 for k in range(10)])
    with pytest.raises(ValueError):
        euler_integrate(lambda x, t: x, torch.zeros(1), 0)


def test_rtc_weight_schedule():
    assert rtc_guidance_weight(1.0, 5.0) == 5.0  # pure noise: clipped at beta
    tau = 0.75  # t = 0.25
    r2 = (1 - tau) ** 2 / (tau**2 + (1 - tau) ** 2)
    assert rtc_guidance_weight(0.25, 100.0) == pytest.approx((1 - tau) / (tau * r2))
    assert rtc_guidance_weight(0.25, 1.0) == 1.0


def test_rtc_guidance_pulls_the_weighted_points_to_the_target():
    # a field whose predicted clean chunk depends on x: v = x, clean = (1 - t) x
    x1 = torch.randn(1, 6, 2, generator=torch.Generator().manual_seed(0))
    target = torch.full((1, 6, 2), 0.5)
    weights = torch.tensor([1.0, 1.0, 0.5, 0.2, 0.0, 0.0])
    plain = euler_integrate(lambda x, t: x, x1, 10)
    guided = euler_integrate(rtc_guided(lambda x, t: x, target, weights, 5.0), x1, 10)
    before = (plain - target)[0, :2].norm()
    after = (guided - target)[0, :2].norm()
    assert after < 0.5 * before
    torch.testing.assert_close(guided[0, 4:], plain[0, 4:])  # free points: independent here, untouched
    unweighted = euler_integrate(rtc_guided(lambda x, t: x, target, torch.zeros(6), 5.0), x1, 10)
    torch.testing.assert_close(unweighted, plain)
