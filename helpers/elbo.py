"""The variational bound (ELBO) of DDPM, term by term, exact for Gaussian data x_0 ~ N(m, p²).

Ho et al. 2020, eq. 5: for any reverse model p_θ,

    E[−log p_θ(x_0)] ≤ E_q[ L_T + Σ_{t=2}^{T} L_{t−1} + L_0 ],
    L_T     = KL( q(x_T | x_0) ‖ p(x_T) ),
    L_{t−1} = KL( q(x_{t−1} | x_t, x_0) ‖ p_θ(x_{t−1} | x_t) ),
    L_0     = −log p_θ(x_0 | x_1).

The model here is the best of the DDPM family for a chosen variance σ_t²: Gaussian kernels
p_θ(x_{t−1} | x_t) = N(E[x_{t−1} | x_t], σ_t²), whose mean is the ε-form mean driven by the optimal ε
(:func:`helpers.gaussian.optimal_eps`). For Gaussian data every term is a KL between Gaussians:
with v_t = Var(x_{t−1} | x_t) (:func:`helpers.gaussian.true_reverse_variance`),

    E L_{t−1} = ½ [ log(σ_t²/β̃_t) + v_t/σ_t² − 1 ],      E L_0 = ½ log(2π σ_1²) + v_1/(2σ_1²).

All values are in nats per data point.
"""
import math

import torch

from . import gaussian
from .schedules import Schedule

VARIANCES = ("posterior", "beta", "true")


def reverse_variance(s: Schedule, p: float, choice: str) -> torch.Tensor:
    """σ_t² for t = 0..T, shape (T + 1,): β̃_t (eq. 5), β_t (Ho et al.'s two choices) or the true v_t.

    β̃_1 = 0 would make L_0 infinite (a point mass cannot score a continuous x_0), so ``"posterior"``
    uses β_1 at t = 1, the other of Ho et al.'s choices.
    """
    if choice not in VARIANCES:
        raise ValueError(f"choice must be one of {VARIANCES}, got {choice!r}")
    if choice == "true":
        return gaussian.true_reverse_variance(s, p)
    var = (s.posterior_variance if choice == "posterior" else s.beta).clone()
    var[1] = s.beta[1]
    return var


def prior_term(s: Schedule, m: float, p: float, prior_mean: float = 0.0, prior_var: float = 1.0) -> float:
    """E_{x_0} KL( N(√ᾱ_T x_0, 1 − ᾱ_T) ‖ N(prior_mean, prior_var) ) for x_0 ~ N(m, p²): L_T."""
    ab = s.alpha_bar[-1].item()
    second_moment = (math.sqrt(ab) * m - prior_mean) ** 2 + ab * p ** 2
    return 0.5 * (math.log(prior_var / (1 - ab)) + (1 - ab + second_moment) / prior_var - 1)


def denoising_terms(s: Schedule, p: float, var: torch.Tensor) -> torch.Tensor:
    """E L_{t−1} at index t = 2..T (indices 0 and 1 hold 0), shape (T + 1,), for variances ``var: (T + 1,)``."""
    v = gaussian.true_reverse_variance(s, p)
    terms = torch.zeros_like(v)
    t = slice(2, None)
    terms[t] = 0.5 * (torch.log(var[t] / s.posterior_variance[t]) + v[t] / var[t] - 1)
    return terms


def reconstruction_term(s: Schedule, p: float, var: torch.Tensor) -> float:
    """E L_0 = E[−log N(x_0; E[x_0 | x_1], σ_1²)] = ½ log(2π σ_1²) + Var(x_0 | x_1)/(2σ_1²)."""
    v1, var1 = gaussian.true_reverse_variance(s, p)[1].item(), var[1].item()
    return 0.5 * math.log(2 * math.pi * var1) + v1 / (2 * var1)


def bound(s: Schedule, m: float, p: float, var: torch.Tensor, prior_mean: float = 0.0, prior_var: float = 1.0) -> dict:
    """{"L_T", "L_1..L_{T-1}", "L_0", "total"}: the negative ELBO and its parts, in nats."""
    terms = {"L_T": prior_term(s, m, p, prior_mean, prior_var),
             "L_1..L_{T-1}": denoising_terms(s, p, var).sum().item(),
             "L_0": reconstruction_term(s, p, var)}
    return {**terms, "total": sum(terms.values())}


def model_kernel(s: Schedule, m: float, p: float, var: torch.Tensor):
    """The model p_θ(x_{t−1} | x_t) = N(E[x_{t−1} | x_t], σ_t²) as a ``kernel(x_t, t) -> (mean, var)``."""
    exact = gaussian.exact_reverse_kernel(s, m, p)
    return lambda x_t, t: (exact(x_t, t)[0], var[t].item())


def model_marginal(s: Schedule, m: float, p: float, var: torch.Tensor, prior_mean: float = 0.0,
                   prior_var: float = 1.0) -> tuple[float, float]:
    """(mean, variance) of the model's x_0: the prior pushed through the linear-Gaussian kernels.

    Each kernel maps N(M, V) to N(μ_{t−1} + g_t (M − μ_t), g_t² V + σ_t²), g_t = √α_t s_{t−1}²/s_t².
    """
    mu, sv = gaussian.marginal_mean(s, m), gaussian.marginal_var(s, p)
    M, V = prior_mean, prior_var
    for t in range(s.T, 0, -1):
        g = (s.alpha[t].sqrt() * sv[t - 1] / sv[t]).item()
        M, V = mu[t - 1].item() + g * (M - mu[t].item()), g * g * V + var[t].item()
    return M, V


def model_nll(s: Schedule, m: float, p: float, var: torch.Tensor, **prior) -> float:
    """E_{x_0 ~ N(m, p²)}[−log p_θ(x_0)], exact: the quantity the bound bounds."""
    M, V = model_marginal(s, m, p, var, **prior)
    return 0.5 * math.log(2 * math.pi * V) + ((m - M) ** 2 + p ** 2) / (2 * V)


def data_entropy(p: float) -> float:
    """H(N(m, p²)) = ½ log(2πe p²): no model can score below it."""
    return 0.5 * math.log(2 * math.pi * math.e * p ** 2)


def eps_weights(s: Schedule, var: torch.Tensor) -> torch.Tensor:
    """λ_t = β_t² / (2σ_t² α_t (1 − ᾱ_t)) at t = 2..T (0 elsewhere), shape (T + 1,).

    Written with ε (Ho et al. 2020, eq. 12), L_{t−1} = λ_t E‖ε − ε_θ(x_t, t)‖² + C_t, with
    C_t = ½[log(σ_t²/β̃_t) + β̃_t/σ_t² − 1] free of θ (0 when σ_t² = β̃_t): the bound weights the
    noise-prediction error at step t by λ_t, where L_simple weights every t by 1.
    """
    weights = torch.zeros_like(s.beta)
    t = slice(2, None)
    weights[t] = s.beta[t] ** 2 / (2 * var[t] * s.alpha[t] * (1 - s.alpha_bar[t]))
    return weights
