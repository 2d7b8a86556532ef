"""The Gaussian-mixture closed forms against numerical integration, finite differences and Monte Carlo."""
import numpy as np
import pytest
import torch
from scipy import stats

from helpers import diffusion as D
from helpers import gaussian as G
from helpers import mixture as X
from helpers import schedules as S
from conftest import assert_mc_close

N = 200_000
SCHED = S.linear(50, 0.02, 0.3)
MIX = X.Mixture((0.3, 0.7), (-1.0, 3.0), (0.3, 0.5))


def mixture_cdf(t):
    mu, var = X.components(SCHED, MIX, t)
    return lambda x: sum(w * stats.norm.cdf(x, m, v ** 0.5) for w, m, v in zip(MIX.weights, mu.tolist(), var.tolist()))


def test_density_is_the_data_density_convolved_with_the_forward_kernel():
    """q_t(x) = ∫ q_0(y) N(x; √ᾱ_t y, 1 − ᾱ_t) dy, integrated on a fine grid."""
    y = np.linspace(-4, 7, 40_001)
    q0 = sum(w * stats.norm.pdf(y, m, p) for w, m, p in zip(MIX.weights, MIX.means, MIX.sds))
    for t in (1, 3, 20):
        ab = SCHED.alpha_bar[t].item()
        x = np.linspace(-3, 5, 9)
        numeric = np.trapezoid(q0 * stats.norm.pdf(x[:, None], np.sqrt(ab) * y, np.sqrt(1 - ab)), y, axis=1)
        closed = X.log_density(SCHED, MIX, torch.tensor(x, dtype=torch.float64), t).exp().numpy()
        np.testing.assert_allclose(closed, numeric, rtol=1e-6, atol=1e-12)


def test_score_is_the_derivative_of_the_log_density():
    x, h = torch.linspace(-3, 5, 17, dtype=torch.float64), 1e-5
    for t in (0, 2, 30):
        numeric = (X.log_density(SCHED, MIX, x + h, t) - X.log_density(SCHED, MIX, x - h, t)) / (2 * h)
        torch.testing.assert_close(X.score(SCHED, MIX, x, t), numeric, rtol=1e-6, atol=1e-6)


def binned_means(x, values, edges):
    """Mean of ``values`` in each bin of x."""
    idx = np.digitize(x, edges)
    return [values[idx == i] for i in range(1, len(edges))]


@pytest.mark.parametrize("t", [3, 15])
def test_optimal_eps_and_tweedie_are_the_conditional_means(gen, t):
    """In narrow bins of x_t, the mean of the drawn ε (and x_0) equals the mean of ε*(x_t) (and x̂_0)."""
    x0, _ = MIX.sample(N, gen)
    eps = torch.randn(N, generator=gen, dtype=torch.float64)
    x_t = D.forward_sample(SCHED, x0, t, eps)
    eps_star, x0_hat = X.optimal_eps(SCHED, MIX, x_t, t), X.tweedie_x0(SCHED, MIX, x_t, t)
    edges = np.quantile(x_t.numpy(), np.linspace(0.05, 0.95, 10))
    for drawn, predicted in ((eps, eps_star), (x0, x0_hat)):
        for d, p in zip(binned_means(x_t.numpy(), drawn.numpy(), edges), binned_means(x_t.numpy(), predicted.numpy(), edges)):
            assert_mc_close(d.mean(), p.mean(), (d - p).std(), len(d))


def test_one_component_reduces_to_the_gaussian_formulas(gen):
    one = X.Mixture((1.0,), (3.0,), (0.5,))
    x = torch.randn(100, generator=gen, dtype=torch.float64)
    for t in (1, 10, 50):
        torch.testing.assert_close(X.optimal_eps(SCHED, one, x, t), G.optimal_eps(SCHED, x, t, 3.0, 0.5))
        mean, var = X.exact_reverse_kernel(SCHED, one, gen)(x, t)
        g_mean, g_var = G.exact_reverse_kernel(SCHED, 3.0, 0.5)(x, t)
        torch.testing.assert_close(mean, g_mean)
        assert torch.allclose(var, torch.tensor(g_var, dtype=torch.float64))


def test_exact_reverse_kernel_retraces_the_forward_marginals(gen):
    """Started from the true x_T (a forward draw), the mixture kernel's x_25 and x_0 follow q_25 and q_0."""
    n = 20_000
    x0, _ = MIX.sample(n, gen)
    x_T = D.forward_sample(SCHED, x0, SCHED.T, torch.randn(n, generator=gen, dtype=torch.float64))
    traj = D.run_reverse(X.exact_reverse_kernel(SCHED, MIX, gen), x_T, SCHED.T, gen, trajectory=True)
    for t in (25, 0):
        assert stats.kstest(traj[t].numpy(), mixture_cdf(t)).pvalue > 0.01


def test_ddpm_kernel_mean_is_the_mean_of_the_mixture_kernel(gen):
    x = torch.linspace(-3, 5, 9, dtype=torch.float64)
    exact = X.exact_reverse_kernel(SCHED, MIX, gen)
    kernels = [G.exact_reverse_kernel(SCHED, m, p) for m, p in zip(MIX.means, MIX.sds)]
    for t in (2, 20):
        r = X.responsibilities(SCHED, MIX, x, t)
        mixture_mean = sum(r[:, k] * kern(x, t)[0] for k, kern in enumerate(kernels))
        torch.testing.assert_close(X.ddpm_kernel(SCHED, MIX)(x, t)[0], mixture_mean)
        assert exact(x, t)[0].shape == x.shape


def test_mode_summary_recovers_weights_means_and_sds(gen):
    x0, _ = MIX.sample(N, gen)
    for (share, mean, sd), w, m, p in zip(X.mode_summary(MIX, x0), MIX.weights, MIX.means, MIX.sds):
        assert_mc_close(share, w, (w * (1 - w)) ** 0.5, N)
        assert abs(mean - m) < 0.01 and abs(sd - p) < 0.01


@pytest.mark.parametrize("kwargs, message", [
    (dict(weights=(0.5, 0.6), means=(0, 1), sds=(1, 1)), "sum to 1"),
    (dict(weights=(1.0,), means=(0, 1), sds=(1,)), "same length"),
    (dict(weights=(1.0,), means=(0,), sds=(0,)), "sds must be > 0"),
])
def test_bad_mixture_is_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        X.Mixture(**kwargs)


def test_t_outside_the_chain_is_named():
    with pytest.raises(ValueError, match="t must be an integer in 0..50"):
        X.components(SCHED, MIX, 51)


def test_moment_matched_kernel_has_the_exact_kernels_mean_and_variance(gen):
    """Draws of the mixture kernel at one x_t: their mean and variance are the moment-matched kernel's."""
    exact, matched = X.exact_reverse_kernel(SCHED, MIX, gen), X.moment_matched_kernel(SCHED, MIX)
    for t, x in ((3, 1.0), (18, 0.9), (30, 0.5)):          # between the modes, where both components count
        x_t = torch.full((N,), x, dtype=torch.float64)
        mean, var = exact(x_t, t)
        draws = mean + var.sqrt() * torch.randn(N, generator=gen, dtype=torch.float64)
        m, v = matched(x_t[:1], t)
        assert_mc_close(draws.mean(), m[0], v[0].sqrt(), N)
        assert_mc_close(draws.var(), v[0], v[0] * 2 ** 0.5 * 1.5, N)   # a mixture's kurtosis: a wider tolerance
        torch.testing.assert_close(m, X.ddpm_kernel(SCHED, MIX)(x_t[:1], t)[0])


def test_exact_kernel_is_a_mixture_not_one_gaussian(gen):
    """Between the modes at small t the exact kernel is two-humped: KS rejects a Gaussian of the same moments."""
    x_t = torch.full((20_000,), 0.5, dtype=torch.float64)
    mean, var = X.exact_reverse_kernel(SCHED, MIX, gen)(x_t, 3)
    draws = (mean + var.sqrt() * torch.randn(len(x_t), generator=gen, dtype=torch.float64)).numpy()
    m, v = X.moment_matched_kernel(SCHED, MIX)(x_t[:1], 3)
    assert stats.kstest(draws, "norm", args=(m.item(), v.sqrt().item())).pvalue < 1e-6


def test_ddpm_kernel_adds_the_posterior_variance():
    x = torch.linspace(-3, 5, 5, dtype=torch.float64)
    for t in (2, 30):
        assert X.ddpm_kernel(SCHED, MIX)(x, t)[1] == SCHED.posterior_variance[t].item()
