import math

import numpy as np
import pytest
import torch

from helpers import diffusion as D
from helpers import gaussian as G
from helpers import schedules as S
from conftest import assert_mc_close

N, M, P = 200_000, 3.0, 0.5
SCHED = S.linear(50, 0.02, 0.3)


def forward_marginals(gen):
    """Forward marginals by simulation: (T + 1, N) from x_0 ~ N(m, p²)."""
    x0 = M + P * torch.randn(N, generator=gen, dtype=torch.float64)
    return D.forward_trajectory(SCHED, x0, gen)


def test_marginals_match_simulation(gen):
    xs = forward_marginals(gen)
    mu, var = G.marginal_mean(SCHED, M), G.marginal_var(SCHED, P)
    for t in (0, 5, 20, 50):
        assert_mc_close(xs[t].mean(), mu[t], var[t].sqrt(), N)
        assert_mc_close(xs[t].var(), var[t], var[t] * math.sqrt(2), N)


def test_optimal_eps_is_the_regression_of_eps_on_x_t(gen):
    t = 10
    x0 = M + P * torch.randn(N, generator=gen, dtype=torch.float64)
    eps = torch.randn(N, generator=gen, dtype=torch.float64)
    x_t = D.forward_sample(SCHED, x0, t, eps)
    slope, icept = np.polyfit(x_t.numpy(), eps.numpy(), 1)  # E[ε|x_t] is linear for Gaussians
    pred = G.optimal_eps(SCHED, torch.tensor([0.0, 1.0], dtype=torch.float64), t, M, P)
    assert abs(pred[0] - icept) < 0.01 and abs(pred[1] - pred[0] - slope) < 0.01
    # and it beats any other predictor in MSE, e.g. a 10 % larger gain
    mse = lambda e: ((e - eps) ** 2).mean().item()  # noqa: E731
    best = G.optimal_eps(SCHED, x_t, t, M, P)
    assert mse(best) < mse(1.1 * best) and mse(best) < mse(0.9 * best)


def test_exact_reverse_reproduces_every_forward_marginal(gen):
    mu, var = G.marginal_mean(SCHED, M), G.marginal_var(SCHED, P)
    x_T = mu[-1] + var[-1].sqrt() * torch.randn(N, generator=gen, dtype=torch.float64)
    traj = D.run_reverse(G.exact_reverse_kernel(SCHED, M, P), x_T, SCHED.T, gen, trajectory=True)
    for t in range(0, 51, 5):
        assert_mc_close(traj[t].mean(), mu[t], var[t].sqrt(), N)
        assert_mc_close(traj[t].var(), var[t], var[t] * math.sqrt(2), N)


def test_report_reverse_is_right_at_zero_only(gen):
    """Eqs 6–7 land on N(m, p²) at t = 0, yet their intermediate marginals are off."""
    x_T = torch.randn(N, generator=gen, dtype=torch.float64)
    traj = D.run_reverse(G.report_reverse_kernel(SCHED, M, P), x_T, SCHED.T, gen, trajectory=True)
    assert_mc_close(traj[0].mean(), M, P, N)
    assert_mc_close(traj[0].std(), P, P / math.sqrt(2), N)
    std = G.marginal_var(SCHED, P).sqrt()
    assert traj[10].std() > 1.3 * std[10]  # p² added at every step inflates the spread


def test_ddpm_with_optimal_eps_follows_its_moment_recursion(gen):
    """With ε̂ = E[ε|x_t] each DDPM step is x_{t−1} = a_t x_t + b_t + σ_t z (σ_t² = β̃_t), so the
    sampled moments follow a scalar recursion, computed here from the definitions in numpy.
    It does not end at p exactly: β̃_t is not the true reverse variance of Gaussian data."""
    x_T = torch.randn(N, generator=gen, dtype=torch.float64)
    x0 = D.run_reverse(G.optimal_eps_kernel(SCHED, M, P), x_T, SCHED.T, gen)
    beta = np.r_[0.0, np.linspace(0.02, 0.3, 50)]
    abar = np.cumprod(1 - beta)
    mean, var = 0.0, 1.0
    for t in range(50, 0, -1):
        s2, mu = abar[t] * P ** 2 + 1 - abar[t], np.sqrt(abar[t]) * M
        a, b = (1 - beta[t] / s2) / np.sqrt(1 - beta[t]), beta[t] * mu / s2 / np.sqrt(1 - beta[t])
        mean, var = a * mean + b, a ** 2 * var + (1 - abar[t - 1]) / (1 - abar[t]) * beta[t]
    assert_mc_close(x0.mean(), mean, np.sqrt(var), N)
    assert_mc_close(x0.var(), var, var * np.sqrt(2), N)
    assert abs(mean - M) < 0.01 and 0.4 < np.sqrt(var) < 0.5


@pytest.mark.parametrize("make", [G.exact_reverse_kernel, G.report_reverse_kernel, G.optimal_eps_kernel])
def test_bad_p_is_named(make):
    with pytest.raises(ValueError, match=r"\bp\b"):
        make(SCHED, M, 0.0)


def test_optimal_eps_rejects_bad_t():
    with pytest.raises(ValueError, match=r"\bt\b"):
        G.optimal_eps(SCHED, torch.zeros(3), 0, M, P)


def test_prior_term_kl_matches_torch_distributions():
    """Independent: torch.distributions' KL between the diagonal Gaussians, averaged over data."""
    from torch.distributions import Normal, kl_divergence
    x0 = torch.tensor([[1.0, -0.5], [0.2, 2.0], [0.0, 0.0]], dtype=torch.float64)
    s = S.linear(200)
    ab = s.alpha_bar[-1]
    kl = kl_divergence(Normal(ab.sqrt() * x0, (1 - ab).sqrt()), Normal(0.0, 1.0)).sum(1).mean()
    assert math.isclose(G.prior_term_kl(s, x0), kl.item(), rel_tol=1e-9)
    assert G.prior_term_kl(S.zero_terminal_snr(s), x0) == 0


def test_true_reverse_variance_is_the_residual_of_regressing_x_prev_on_x_t(gen):
    """Independent: simulate (x_{t−1}, x_t) pairs and regress; the residual variance is Var(x_{t−1} | x_t)."""
    x0 = M + P * torch.randn(N, generator=gen, dtype=torch.float64)
    for t in (1, 2, 10, 40):
        x_prev = D.forward_sample(SCHED, x0, t - 1, torch.randn(N, generator=gen, dtype=torch.float64)) if t > 1 else x0
        x_t = D.forward_step(SCHED, x_prev, t, torch.randn(N, generator=gen, dtype=torch.float64))
        slope, icept = np.polyfit(x_t.numpy(), x_prev.numpy(), 1)
        resid = (x_prev.numpy() - slope * x_t.numpy() - icept).var()
        expected = G.true_reverse_variance(SCHED, P)[t].item()
        assert abs(resid - expected) <= 5 * expected * math.sqrt(2 / N), (t, resid, expected)


def test_true_reverse_variance_exceeds_posterior_variance_by_the_x0_term():
    """β_t s²_{t−1}/s²_t = β̃_t + c_{x0,t}² Var(x_0 | x_t), Var(x_0 | x_t) = p²(1 − ᾱ_t)/s_t² (hand-derived)."""
    t = torch.arange(1, SCHED.T + 1)
    ab, ab_prev, beta = SCHED.alpha_bar[t], SCHED.alpha_bar[t - 1], SCHED.beta[t]
    s2 = ab * P ** 2 + 1 - ab
    c_x0 = ab_prev.sqrt() * beta / (1 - ab)
    expected = (1 - ab_prev) / (1 - ab) * beta + c_x0 ** 2 * P ** 2 * (1 - ab) / s2
    assert torch.allclose(G.true_reverse_variance(SCHED, P)[1:], expected, rtol=1e-12)
    assert math.isclose(G.true_reverse_variance(SCHED, P)[1].item(), 0.02 * 0.25 / (0.98 * 0.25 + 0.02), rel_tol=1e-12)


def test_optimal_eps_sampler_with_the_true_variance_everywhere_returns_p(gen):
    """Started from the exact q(x_T), the ε* sampler with Var(x_{t−1}|x_t) at every step is the exact kernel."""
    mu, var = G.marginal_mean(SCHED, M), G.marginal_var(SCHED, P)
    x_T = mu[-1] + var[-1].sqrt() * torch.randn(N, generator=gen, dtype=torch.float64)
    x0 = D.run_reverse(G.optimal_eps_kernel(SCHED, M, P, exact_last=SCHED.T), x_T, SCHED.T, gen)
    assert_mc_close(x0.mean(), M, P, N)
    assert_mc_close(x0.std(), P, P / math.sqrt(2), N)
    only_last = D.run_reverse(G.optimal_eps_kernel(SCHED, M, P, exact_last=1), x_T, SCHED.T, gen)
    assert 0.44 + 0.01 < only_last.std() < P - 0.02    # the last step alone closes part of the gap


def test_report_prefactor_blows_the_sampler_up(gen):
    x_T = torch.randn(1000, generator=gen, dtype=torch.float64)
    x0 = D.run_reverse(G.optimal_eps_kernel(SCHED, M, P, report_prefactor=True), x_T, SCHED.T, gen)
    assert x0.abs().median() > 1e6    # ∏ 1/√ᾱ_t over 50 steps


def test_exact_last_is_checked():
    with pytest.raises(ValueError, match="exact_last"):
        G.optimal_eps_kernel(SCHED, M, P, exact_last=51)


def test_prior_marginal_kl_of_one_point_is_the_prior_term(gen):
    """One data point: q(x_T) = q(x_T | x_0), so marginal KL = L_T (closed form)."""
    s, x0 = S.linear(200), torch.tensor([[0.8, -0.6]], dtype=torch.float64)
    kl, se = G.prior_marginal_kl(s, x0, 20_000, gen)
    assert abs(kl - G.prior_term_kl(s, x0)) <= 5 * se + 1e-12


def test_prior_marginal_kl_of_gaussian_data_is_the_gaussian_kl(gen):
    """Many points from N(0, p² I): q(x_T) ≈ N(0, v I), v = ᾱ_T p² + 1 − ᾱ_T, KL = d/2 (v − 1 − log v),
    well below the prior term L_T, which also counts I(x_0; x_T)."""
    s, p = S.linear(200), 1.5
    x0 = p * torch.randn(20_000, 2, generator=gen, dtype=torch.float64)
    v = s.alpha_bar[-1].item() * p ** 2 + 1 - s.alpha_bar[-1].item()
    kl, se = G.prior_marginal_kl(s, x0, 20_000, gen)
    assert abs(kl - (v - 1 - math.log(v))) <= 5 * se + 2e-3, (kl, se, v - 1 - math.log(v))
    assert kl < 0.5 * G.prior_term_kl(s, x0)
    assert G.prior_marginal_kl(S.zero_terminal_snr(s), x0) == (0.0, 0.0)


def test_log_mixture_density_is_exact_far_from_narrow_centres():
    """The matrix-product form drops nothing: against the sum of the Gaussian densities written out, in log space,
    at points more than 100 sd from every centre, with more centres than one row block holds."""
    gen = torch.Generator().manual_seed(3)
    centres = torch.randn(30_000, 2, generator=gen, dtype=torch.float64)
    x = torch.cat([torch.randn(5, 2, generator=gen, dtype=torch.float64), torch.tensor([[4.0, -3.0], [0.0, 9.0]])])
    sd = 0.05
    by_hand = torch.logsumexp(-((x[:, None] - centres[None]) ** 2).sum(-1) / (2 * sd ** 2), dim=1) \
        - math.log(len(centres)) - math.log(2 * math.pi * sd ** 2)
    torch.testing.assert_close(G.log_mixture_density(x, centres, sd), by_hand, rtol=1e-12, atol=1e-9)
