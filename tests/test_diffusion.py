import math

import numpy as np
import pytest
import torch

from helpers import diffusion as D
from helpers import gaussian
from helpers import schedules as S
from helpers import training
from conftest import assert_mc_close

N = 200_000


def test_closed_form_matches_iterated_forward(gen):
    s = S.linear(50, 0.02, 0.3)
    x0 = 3 + 0.5 * torch.randn(N, generator=gen, dtype=torch.float64)
    traj = D.forward_trajectory(s, x0, gen)
    assert traj.shape == (51, N)
    for t in (1, 10, 25, 50):
        closed = D.forward_sample(s, x0, t, torch.randn(N, generator=gen, dtype=torch.float64))
        # both must have mean √ᾱ_t·3 and variance ᾱ_t·0.25 + 1 − ᾱ_t (ᾱ recomputed in numpy)
        ab = np.prod(1 - np.linspace(0.02, 0.3, 50)[:t])
        mean, var = math.sqrt(ab) * 3, ab * 0.25 + 1 - ab
        for x in (traj[t], closed):
            assert_mc_close(x.mean(), mean, math.sqrt(var), N)
            assert_mc_close(x.var(), var, var * math.sqrt(2), N)


def test_posterior_by_regression(gen):
    """Simulate (x_{t−1}, x_t) given x_0; regress x_{t−1} on x_t: slope, intercept, residual."""
    s, t, x0 = S.linear(20, 0.05, 0.3), 7, torch.full((N,), 1.7, dtype=torch.float64)
    x_prev = D.forward_sample(s, x0, t - 1, torch.randn(N, generator=gen, dtype=torch.float64))
    x_t = D.forward_step(s, x_prev, t, torch.randn(N, generator=gen, dtype=torch.float64))
    slope, icept = np.polyfit(x_t.numpy(), x_prev.numpy(), 1)
    resid = x_prev.numpy() - (slope * x_t.numpy() + icept)
    assert abs(slope - s.posterior_coef_xt[t].item()) < 5e-3
    assert abs(icept - s.posterior_coef_x0[t].item() * 1.7) < 1e-2
    assert abs(resid.var() / s.posterior_variance[t].item() - 1) < 2e-2
    np.testing.assert_allclose(D.posterior_mean(s, x_t[:5], x0[:5], t), slope * x_t[:5] + icept, atol=2e-2)


def test_eps_reverse_mean_is_the_posterior_mean_at_predicted_x0(gen):
    s = S.cosine(100)
    x_t, eps = torch.randn(64, 2, generator=gen), torch.randn(64, 2, generator=gen)
    t = torch.randint(1, 101, (64,), generator=gen)
    via_x0 = D.posterior_mean(s, x_t, D.predict_x0(s, x_t, eps, t), t)
    torch.testing.assert_close(D.eps_reverse_mean(s, x_t, eps, t), via_x0, rtol=1e-4, atol=1e-4)


def test_eps_reverse_mean_by_hand_and_not_the_report_prefactor():
    s = S.Schedule([0.1, 0.2])  # α_2 = 0.8, ᾱ_2 = 0.72
    x_t, eps = torch.tensor([1.0]), torch.tensor([0.5])
    by_hand = (1.0 - 0.2 / math.sqrt(0.28) * 0.5) / math.sqrt(0.8)
    assert math.isclose(D.eps_reverse_mean(s, x_t, eps, 2).item(), by_hand, rel_tol=1e-6)
    report_eq8 = (1.0 - 0.2 / math.sqrt(0.28) * 0.5) / math.sqrt(0.72)
    assert abs(by_hand - report_eq8) > 0.04


def test_velocity_round_trip_even_at_zero_snr(gen):
    s = S.zero_terminal_snr(S.linear(50))
    x0, eps = torch.randn(10, 2, generator=gen), torch.randn(10, 2, generator=gen)
    for t in (1, 25, 50):
        v = D.velocity(s, x0, eps, t)
        torch.testing.assert_close(D.x0_from_velocity(s, D.forward_sample(s, x0, t, eps), v, t), x0)


def test_sampler_shapes_and_determinism():
    s = S.linear(10)
    model = lambda x, t: 0.1 * x  # noqa: E731
    a = D.sample(model, s, (7, 3, 2), torch.Generator().manual_seed(0), trajectory=True)
    b = D.sample(model, s, (7, 3, 2), torch.Generator().manual_seed(0), trajectory=True)
    assert a.shape == (11, 7, 3, 2) and torch.equal(a, b)
    c = D.sample(model, s, (7, 3, 2), torch.Generator().manual_seed(1))
    assert not torch.equal(a[0], c)


def test_sampler_with_the_oracle_v_at_zero_snr_propagates_moments_exactly(gen):
    """End to end through the v-path on N(m, p²) data. With the best v̂ (from E[ε|x_t] and
    E[x_0|x_t]) each step is x_{t−1} = a_t x_t + b_t + σ_t z, so the sampled mean and variance
    follow a scalar recursion, computed here in numpy from the definitions."""
    s, m, p = S.zero_terminal_snr(S.linear(100, 1e-3, 0.05)), 2.0, 0.5
    ab = s.alpha_bar

    def oracle_v(x, t):
        a = ab[t].view(-1, 1).to(x)
        var = a * p ** 2 + 1 - a
        eps = (1 - a).sqrt() * (x - a.sqrt() * m) / var
        x0 = m + a.sqrt() * p ** 2 / var * (x - a.sqrt() * m)
        return a.sqrt() * eps - (1 - a).sqrt() * x0
    with pytest.raises(ValueError, match="prediction"):
        D.sample(oracle_v, s, (10, 1), gen)
    x = D.sample(oracle_v, s, (N, 1), gen, prediction="v").double()

    abar = np.cumprod(np.r_[1.0, 1 - s.beta[1:].numpy()])
    mean, var = 0.0, 1.0
    for t in range(100, 0, -1):
        beta, prev, var_t = 1 - abar[t] / abar[t - 1], abar[t - 1], abar[t] * p ** 2 + 1 - abar[t]
        c_x0, c_xt = np.sqrt(prev) * beta / (1 - abar[t]), np.sqrt(1 - beta) * (1 - prev) / (1 - abar[t])
        gain = np.sqrt(abar[t]) * p ** 2 / var_t          # E[x_0|x_t] = m + gain (x_t − √ᾱ_t m)
        a, b = c_xt + c_x0 * gain, c_x0 * (m - gain * np.sqrt(abar[t]) * m)
        mean, var = a * mean + b, a ** 2 * var + beta * (1 - prev) / (1 - abar[t])
    assert_mc_close(x.mean(), mean, np.sqrt(var), N)
    assert_mc_close(x.var(), var, var * np.sqrt(2), N)
    assert abs(mean - m) < 0.01 and abs(np.sqrt(var) - p) < 0.05


@pytest.mark.parametrize("kwargs, word", [({"prediction": "x0"}, "prediction"),
                                          ({"variance": "learned"}, "variance")])
def test_sampler_bad_options(kwargs, word):
    with pytest.raises(ValueError, match=word):
        D.sample(lambda x, t: x, S.linear(5), (2, 2), **kwargs)


def test_ddim_with_exact_eps_is_deterministic_and_exact_for_a_point_mass(gen):
    """For data at a single point c the exact ε̂(x_t) = (x_t − √ᾱ_t c)/√(1 − ᾱ_t) and x̂_0 = c:
    DDIM must land on c from any x_T in any number of steps."""
    s, c = S.cosine(100), torch.tensor([0.7, -1.2])
    oracle = lambda x, t: (x - s.at(s.alpha_bar, t, x).sqrt() * c) / (1 - s.at(s.alpha_bar, t, x)).sqrt()  # noqa: E731
    for steps in (1, 7, 100):
        x = D.ddim_sample(oracle, s, (16, 2), steps, torch.Generator().manual_seed(0))
        torch.testing.assert_close(x, c.expand(16, 2), atol=1e-3, rtol=0)
    a = D.ddim_sample(oracle, s, (4, 2), 10, torch.Generator().manual_seed(3))
    assert torch.equal(a, D.ddim_sample(oracle, s, (4, 2), 10, torch.Generator().manual_seed(3)))
    assert D.ddim_timesteps(100, 4) == [100, 75, 50, 25, 0] and D.ddim_timesteps(10, 3) == [10, 7, 3, 0]
    with pytest.raises(ValueError, match="steps"):
        D.ddim_timesteps(10, 11)


def test_ddim_on_gaussian_data_is_the_affine_map_derived_by_hand(gen):
    """On N(m, p²) data, with the exact ε̂, each DDIM step is affine, x' = a x + b, from
    x̂_0 = m + √ᾱ p²/s² (x − μ) and ε̂ = √(1 − ᾱ)(x − μ)/s²; compose the steps in numpy."""
    s, m, p = S.linear(200, 1e-4, 0.05), 1.0, 0.3
    ab = s.alpha_bar
    def oracle(x, t):
        a = ab[t].view(-1, 1).to(x)
        return (1 - a).sqrt() * (x - a.sqrt() * m) / (a * p ** 2 + 1 - a)
    x = D.ddim_sample(oracle, s, (N, 1), 50, gen).double()
    a_total, b_total = 1.0, 0.0
    abar = np.cumprod(np.r_[1.0, 1 - s.beta[1:].numpy()])
    times = [round(200 * k / 50) for k in range(50, -1, -1)]
    for t, u in zip(times[:-1], times[1:]):
        mu, s2 = np.sqrt(abar[t]) * m, abar[t] * p ** 2 + 1 - abar[t]
        g0, ge = np.sqrt(abar[t]) * p ** 2 / s2, np.sqrt(1 - abar[t]) / s2      # x̂0, ε̂ gains on (x − μ)
        a = np.sqrt(abar[u]) * g0 + np.sqrt(1 - abar[u]) * ge
        b = np.sqrt(abar[u]) * (m - g0 * mu) - np.sqrt(1 - abar[u]) * ge * mu
        a_total, b_total = a * a_total, a * b_total + b
    assert_mc_close(x.mean(), b_total, abs(a_total), N)
    assert_mc_close(x.std(), abs(a_total), abs(a_total) / np.sqrt(2), N)
    assert abs(abs(a_total) - p) < 0.02


def test_clipped_x0_mean(gen):
    s = S.cosine(50)
    x_t, eps, t = torch.randn(32, 2, generator=gen), torch.randn(32, 2, generator=gen), 3
    # a clip wider than every x̂0 changes nothing; a clip at c bounds the x_0 term by hand
    torch.testing.assert_close(D.reverse_mean(s, eps, x_t, t, clip_x0=1e6), D.eps_reverse_mean(s, x_t, eps, t),
                               rtol=1e-4, atol=1e-4)
    clipped = D.reverse_mean(s, eps, x_t, t, clip_x0=0.5)
    x0 = ((x_t - (1 - s.alpha_bar[t]).sqrt() * eps) / s.alpha_bar[t].sqrt()).clamp(-0.5, 0.5)
    by_hand = s.posterior_coef_x0[t] * x0 + s.posterior_coef_xt[t] * x_t
    torch.testing.assert_close(clipped, by_hand.float(), rtol=1e-5, atol=1e-5)


def test_ideal_eps_of_one_point_is_exact_and_of_gaussian_data_is_the_gaussian_formula(gen):
    from helpers import gaussian as G
    s = S.linear(200)
    c = torch.tensor([[0.3, -1.2]], dtype=torch.float64)
    x_t = torch.randn(50, 2, generator=gen, dtype=torch.float64)
    ab = s.alpha_bar[60]
    assert torch.allclose(D.ideal_eps(s, c, x_t, 60), (x_t - ab.sqrt() * c) / (1 - ab).sqrt(), atol=1e-12)
    # 1D data drawn from N(3, 0.5²): E[ε | x_t] approaches notebook 01's closed form
    data = 3 + 0.5 * torch.randn(50_000, 1, generator=gen, dtype=torch.float64)
    mu, sd = G.marginal_mean(s, 3.0)[100], G.marginal_var(s, 0.5)[100].sqrt()
    grid = mu + sd * torch.linspace(-1.5, 1.5, 9, dtype=torch.float64)[:, None]   # the bulk of q(x_t)
    exact = G.optimal_eps(s, grid, 100, 3.0, 0.5)
    assert torch.allclose(D.ideal_eps(s, data, grid, 100), exact, atol=0.02)


def test_ideal_denoiser_has_zero_loss_on_one_point_and_a_zero_predictor_has_loss_one(gen):
    from helpers import training
    s = S.linear(20)
    one = torch.tensor([[0.5, 0.5]])
    assert training.loss_per_t(D.ideal_denoiser(s, one), s, one, 200, gen).abs().max() < 1e-6   # float32 rounding
    zero = training.loss_per_t(lambda x, t: torch.zeros_like(x), s, one, 4000, gen)
    assert zero.shape == (20,) and (zero - 1).abs().max() < 5 * (2 / 8000) ** 0.5
    with pytest.raises(ValueError, match="one t"):
        D.ideal_denoiser(s, one)(torch.zeros(2, 2), torch.tensor([1, 2]))


def test_ddim_starts_from_a_given_x_T(gen):
    s = S.linear(50)
    model = lambda x, t: torch.zeros_like(x)   # noqa: E731  ε̂ = 0: x̂_0 = x_t/√ᾱ_t, so DDIM maps x_T to x_T/√ᾱ_T
    x_T = torch.randn(7, 2, generator=gen)
    out = D.ddim_sample(model, s, (7, 2), 10, x_T=x_T)
    assert torch.allclose(out, x_T / s.alpha_bar[-1].sqrt().float(), rtol=1e-5)


def test_two_stage_runs_each_network_on_its_side_of_the_switch():
    high, low = (lambda x, t: x + 1.0), (lambda x, t: x * 0.0 - t[:, None].float())
    predict = D.two_stage(high, low, 20)
    x, t = torch.ones(6, 2), torch.tensor([1, 20, 21, 200, 5, 100])
    out = predict(x, t)
    expected = torch.where((t <= 20)[:, None], -t[:, None].float().expand(6, 2), torch.full((6, 2), 2.0))
    assert torch.equal(out, expected)
    with pytest.raises(ValueError, match="t_switch"):
        D.two_stage(high, low, -1)


def test_loss_gap_is_the_difference_of_the_two_loss_curves_with_its_standard_error():
    s = S.linear(20, 1e-3, 0.2)
    data = torch.randn(50, 2, generator=torch.Generator().manual_seed(1))
    half, zero = (lambda x, t: 0.5 * x), (lambda x, t: torch.zeros_like(x))
    gap, se = training.loss_gap(training.loss_per_draw(half, s, data, 3000, torch.Generator().manual_seed(3)),
                                training.loss_per_draw(zero, s, data, 3000, torch.Generator().manual_seed(3)))
    a = training.loss_per_t(half, s, data, 3000, torch.Generator().manual_seed(3))
    b = training.loss_per_t(zero, s, data, 3000, torch.Generator().manual_seed(3))
    torch.testing.assert_close(gap, a - b, rtol=1e-5, atol=1e-6)
    # by hand: per draw and coordinate, |x/2 - e|^2 - |e|^2 = x^2/4 - x e with x = x_t = sqrt(ab) x0 + sqrt(1-ab) e,
    # so the expected gap is (ab E[x0^2] + 1 - ab)/4 - sqrt(1 - ab) at every t
    ab = s.alpha_bar[1:].double()
    exact = (ab * (data.double() ** 2).mean() + 1 - ab) / 4 - (1 - ab).sqrt()
    assert ((gap.double() - exact).abs() < 5 * se.double()).all()
    # the standard error against an independent Monte Carlo of the per-draw difference (numpy, 200 000 draws per t)
    rng = np.random.default_rng(0)
    x0 = data.numpy()[rng.integers(len(data), size=200_000)]
    e = rng.standard_normal(x0.shape)
    for t in (1, 10, 20):
        a = s.alpha_bar[t].item()
        x = np.sqrt(a) * x0 + np.sqrt(1 - a) * e
        sd = (x ** 2 / 4 - x * e).mean(axis=1).std()
        assert abs(se[t - 1].item() / (sd / np.sqrt(3000)) - 1) < 0.1


def test_guided_eps_is_the_score_of_the_class_posterior_raised_to_w(gen):
    # also checks ideal_conditional: w = 1 must give the class's own score, w = 0 the score of all points
    # ε̃ = −√(1 − ᾱ_t) [∇ log q_t(x) + w ∇ log q_t(c | x)], with both gradients by autograd of the exact mixtures
    s = S.linear(100, 1e-4, 0.02)
    points = torch.cat([torch.randn(30, 2, generator=gen, dtype=torch.float64) * 0.3 + 1,
                        torch.randn(20, 2, generator=gen, dtype=torch.float64) * 0.3 - 1])
    labels = torch.repeat_interleave(torch.tensor([0, 1]), torch.tensor([30, 20]))
    t, x = 40, torch.randn(64, 2, generator=gen, dtype=torch.float64).requires_grad_()
    ab = s.alpha_bar[t].item()
    log_q = gaussian.log_mixture_density(x, ab ** 0.5 * points, (1 - ab) ** 0.5)
    log_q_c = gaussian.log_mixture_density(x, ab ** 0.5 * points[labels == 1], (1 - ab) ** 0.5) + math.log(20 / 50)
    score, = torch.autograd.grad(log_q.sum(), x, retain_graph=True)
    class_score, = torch.autograd.grad((log_q_c - log_q).sum(), x)    # ∇ log q_t(c | x) = ∇ log q_t(x, c) − ∇ log q_t(x)
    model = D.ideal_conditional(s, points, labels)     # the exact E[ε | x_t, c]; −1: of all points
    tt = torch.full((64,), t)
    for w in (0.0, 1.0, 3.0):
        expected = -(1 - ab) ** 0.5 * (score + w * class_score)
        assert torch.allclose(D.guided(model, 1, w)(x.detach(), tt), expected, atol=1e-8), w
    with pytest.raises(ValueError, match="w must be >= 0"):
        D.guided(model, 1, -1.0)


def test_restart_starts_from_the_forward_marginal_and_runs_the_last_t0_steps(gen):
    """On N(m, p²) data with the best ε̂, restarting at t0 is x_t0 ~ N(√ᾱ m, ᾱ p² + 1 − ᾱ) followed by the steps
    t0..1 of the reverse chain, each x_{t−1} = a_t x_t + b_t + σ_t z: the sampled mean and variance follow the scalar
    recursion computed here in numpy from the definitions (β̃_t, no noise at t = 1)."""
    s, m, p, t0 = S.cosine(200), 2.0, 0.5, 30
    abar = np.cumprod(np.r_[1.0, 1 - s.beta[1:].numpy()])

    def oracle_eps(x, t):
        a = s.alpha_bar[t].view(-1, 1).to(x)
        return (1 - a).sqrt() * (x - a.sqrt() * m) / (a * p ** 2 + 1 - a)
    x0 = m + p * torch.randn((N, 1), generator=gen, dtype=torch.float64)
    x = D.restart(D.ddpm_kernel(oracle_eps, s), s, x0, t0, gen)
    mean, var = np.sqrt(abar[t0]) * m, abar[t0] * p ** 2 + 1 - abar[t0]
    for t in range(t0, 0, -1):
        beta, prev, var_t = 1 - abar[t] / abar[t - 1], abar[t - 1], abar[t] * p ** 2 + 1 - abar[t]
        c_x0, c_xt = np.sqrt(prev) * beta / (1 - abar[t]), np.sqrt(1 - beta) * (1 - prev) / (1 - abar[t])
        gain = np.sqrt(abar[t]) * p ** 2 / var_t
        a, b = c_xt + c_x0 * gain, c_x0 * (m - gain * np.sqrt(abar[t]) * m)
        mean, var = a * mean + b, a ** 2 * var + beta * (1 - prev) / (1 - abar[t])
    assert_mc_close(x.mean(), mean, np.sqrt(var), N)
    assert_mc_close(x.var(), var, var * np.sqrt(2), N)
    assert D.restart(D.ddpm_kernel(oracle_eps, s), s, x0, 0, gen) is x0
    calls = []

    def spy(x, t):                      # records the steps and what enters the first; moves nothing
        calls.append((t, x))
        return x, 0.0
    D.restart(spy, s, x0, t0, torch.Generator().manual_seed(7))
    assert [t for t, _ in calls] == list(range(t0, 0, -1))
    first = [calls[0][1]]
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(7), dtype=x0.dtype)
    assert torch.equal(first[0], np.sqrt(abar[t0]) * x0 + np.sqrt(1 - abar[t0]) * noise)    # exactly x_t0 of eq. 2, at t0
    for bad in (-1, 201, 2.0):
        with pytest.raises(ValueError, match="t0 must be an integer in 0..200"):
            D.restart(D.ddpm_kernel(oracle_eps, s), s, x0, bad, gen)
