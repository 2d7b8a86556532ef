"""The closed-form ELBO terms against Monte Carlo along sampled forward chains."""
import math

import pytest
import torch

from helpers import diffusion as D
from helpers import elbo as E
from helpers import gaussian as G
from helpers import schedules as S
from conftest import assert_mc_close

N, M, P = 200_000, 3.0, 0.5
SCHED = S.linear(50, 0.02, 0.3)


def log_normal(x, mean, var):
    return -0.5 * torch.log(2 * math.pi * torch.as_tensor(var, dtype=torch.float64)) - 0.5 * (x - mean) ** 2 / var


@pytest.mark.parametrize("choice", E.VARIANCES)
def test_bound_is_the_monte_carlo_mean_of_log_q_over_p_along_forward_chains(gen, choice):
    """−ELBO = E_q[log q(x_{1:T} | x_0) − log p_θ(x_{0:T})], averaged over chains drawn with eq. 1."""
    var = E.reverse_variance(SCHED, P, choice)
    xs = D.forward_trajectory(SCHED, M + P * torch.randn(N, generator=gen, dtype=torch.float64), gen)
    kernel = E.model_kernel(SCHED, M, P, var)
    log_ratio = -log_normal(xs[-1], 0.0, 1.0)
    for t in range(1, SCHED.T + 1):
        log_ratio += log_normal(xs[t], SCHED.alpha[t].sqrt() * xs[t - 1], SCHED.beta[t])
        mean, v = kernel(xs[t], t)
        log_ratio -= log_normal(xs[t - 1], mean, v)
    assert_mc_close(log_ratio.mean(), E.bound(SCHED, M, P, var)["total"], log_ratio.std(), N)


def test_each_denoising_term_is_the_mean_gaussian_kl_given_x0(gen):
    var = E.reverse_variance(SCHED, P, "beta")
    terms, kernel = E.denoising_terms(SCHED, P, var), E.model_kernel(SCHED, M, P, var)
    for t in (2, 10, 50):
        x0 = M + P * torch.randn(N, generator=gen, dtype=torch.float64)
        x_t = D.forward_sample(SCHED, x0, t, torch.randn(N, generator=gen, dtype=torch.float64))
        mu_post, beta_post = D.posterior_mean(SCHED, x_t, x0, t), SCHED.posterior_variance[t]
        mu_model, v = kernel(x_t, t)
        kl = 0.5 * (math.log(v / beta_post) + (beta_post + (mu_post - mu_model) ** 2) / v - 1)
        assert_mc_close(kl.mean(), terms[t], kl.std(), N)
    assert terms[:2].abs().sum() == 0


def test_eps_weight_times_the_optimal_eps_error_gives_the_term(gen):
    """With σ_t² = β̃_t the constant C_t is 0, so L_{t−1} = λ_t E(ε − ε*)² (Ho et al. eq. 12)."""
    var = E.reverse_variance(SCHED, P, "posterior")
    terms, weights = E.denoising_terms(SCHED, P, var), E.eps_weights(SCHED, var)
    for t in (2, 25, 50):
        eps = torch.randn(N, generator=gen, dtype=torch.float64)
        x_t = D.forward_sample(SCHED, M + P * torch.randn(N, generator=gen, dtype=torch.float64), t, eps)
        sq = (eps - G.optimal_eps(SCHED, x_t, t, M, P)) ** 2
        assert_mc_close(weights[t] * sq.mean(), terms[t], weights[t] * sq.std(), N)


def test_hand_computed_weight_at_t_2():
    var = E.reverse_variance(SCHED, P, "posterior")
    b1, b2 = SCHED.beta[1].item(), SCHED.beta[2].item()
    # β̃_2 = β_1 β_2 / (1 − ᾱ_2), so λ_2 = β_2² / (2 β̃_2 α_2 (1 − ᾱ_2)) = β_2 / (2 α_2 β_1)
    assert E.eps_weights(SCHED, var)[2].item() == pytest.approx(b2 / (2 * (1 - b2) * b1), rel=1e-12)


def test_model_marginal_matches_sampling_the_model(gen):
    var = E.reverse_variance(SCHED, P, "posterior")
    x0 = D.run_reverse(E.model_kernel(SCHED, M, P, var), torch.randn(N, generator=gen, dtype=torch.float64), SCHED.T, gen)
    mean, v = E.model_marginal(SCHED, M, P, var)
    assert_mc_close(x0.mean(), mean, math.sqrt(v), N)
    assert_mc_close(x0.var(), v, v * math.sqrt(2), N)


@pytest.mark.parametrize("choice", E.VARIANCES)
def test_entropy_nll_and_bound_are_ordered(choice):
    var = E.reverse_variance(SCHED, P, choice)
    assert E.data_entropy(P) <= E.model_nll(SCHED, M, P, var) <= E.bound(SCHED, M, P, var)["total"]


def test_exact_kernels_and_the_true_prior_make_the_bound_the_entropy():
    """With p(x_T) = q(x_T) and p_θ = q(x_{t−1} | x_t), −ELBO telescopes to E[−log q(x_0)] = H."""
    prior = dict(prior_mean=G.marginal_mean(SCHED, M)[-1].item(), prior_var=G.marginal_var(SCHED, P)[-1].item())
    var = E.reverse_variance(SCHED, P, "true")
    assert E.bound(SCHED, M, P, var, **prior)["total"] == pytest.approx(E.data_entropy(P), abs=1e-10)
    assert E.model_nll(SCHED, M, P, var, **prior) == pytest.approx(E.data_entropy(P), abs=1e-10)


def test_bad_variance_choice_is_named():
    with pytest.raises(ValueError, match="choice must be one of"):
        E.reverse_variance(SCHED, P, "posterior_variance")


def test_variance_choices_are_ho_et_al_s_with_beta_1_at_the_last_step():
    b = SCHED.beta
    post = E.reverse_variance(SCHED, P, "posterior")
    assert post[1] == b[1] and E.reverse_variance(SCHED, P, "beta")[1] == b[1]
    ab2 = (1 - b[1]) * (1 - b[2])
    assert post[2].item() == pytest.approx((b[1] * b[2] / (1 - ab2)).item(), rel=1e-12)   # β̃_2 by hand
    torch.testing.assert_close(E.reverse_variance(SCHED, P, "beta")[2:], b[2:])
