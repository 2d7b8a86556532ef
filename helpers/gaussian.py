"""Gaussian data x_0 ~ N(m, p²): every x_t is Gaussian, so the reverse process is exact.

With μ_t = √ᾱ_t · m and s_t² = ᾱ_t p² + 1 − ᾱ_t (the forward marginals), x_{t−1} and x_t are
jointly Gaussian with covariance √α_t s_{t−1}², which gives (SPEC §4.2)

    q(x_{t−1} | x_t) = N(μ_{t−1} + √α_t (s_{t−1}²/s_t²)(x_t − μ_t),  β_t s_{t−1}²/s_t²),
    E[ε | x_t]       = √(1 − ᾱ_t) (x_t − μ_t) / s_t².

Every kernel below has the signature ``kernel(x_t, t) -> (mean, var)`` of
:func:`helpers.diffusion.run_reverse`.
"""
import math

import torch

from .diffusion import eps_reverse_mean
from .schedules import Schedule


def _check_p(p: float):
    if not p > 0:
        raise ValueError(f"p (the data's standard deviation) must be > 0, got {p!r}")


def marginal_mean(s: Schedule, m: float) -> torch.Tensor:
    """μ_t = √ᾱ_t · m for t = 0..T, shape (T + 1,)."""
    return s.alpha_bar.sqrt() * m


def marginal_var(s: Schedule, p: float) -> torch.Tensor:
    """s_t² = ᾱ_t p² + 1 − ᾱ_t for t = 0..T, shape (T + 1,)."""
    _check_p(p)
    return s.alpha_bar * p ** 2 + 1 - s.alpha_bar


def exact_reverse_kernel(s: Schedule, m: float, p: float):
    """The true reverse kernel q(x_{t−1} | x_t) of Gaussian data (no x_0 needed)."""
    mu, var = marginal_mean(s, m), marginal_var(s, p)

    def kernel(x_t, t):
        s.check_t(t)
        gain = s.alpha[t].sqrt() * var[t - 1] / var[t]
        return mu[t - 1] + gain * (x_t - mu[t]), (s.beta[t] * var[t - 1] / var[t]).item()
    return kernel


def optimal_eps(s: Schedule, x_t: torch.Tensor, t: int, m: float, p: float) -> torch.Tensor:
    """E[ε | x_t] = √(1 − ᾱ_t)(x_t − μ_t)/s_t²: the best possible noise predictor (MSE)."""
    s.check_t(t)
    return (1 - s.alpha_bar[t]).sqrt() * (x_t - marginal_mean(s, m)[t]) / marginal_var(s, p)[t]


def optimal_eps_kernel(s: Schedule, m: float, p: float):
    """The DDPM sampler (corrected eq. 8, variance β̃_t) driven by the optimal ε."""
    _check_p(p)

    def kernel(x_t, t):
        eps = optimal_eps(s, x_t, t, m, p)
        return eps_reverse_mean(s, x_t, eps, t), s.posterior_variance[t].item()
    return kernel


def report_reverse_kernel(s: Schedule, m: float, p: float):
    """The report's eqs 6–7: eq. 4 with x_0 replaced by m, and p² added to β̃_t.

    Not the reverse process (SPEC §4.2): it lands on N(m, p²) at t = 0 only because ᾱ_0 = 1
    makes the last step ignore x_1; its intermediate marginals are wrong.
    """
    _check_p(p)

    def kernel(x_t, t):
        s.check_t(t)
        mean = s.posterior_coef_xt[t] * x_t + s.posterior_coef_x0[t] * m
        return mean, (s.posterior_variance[t] + p ** 2).item()
    return kernel


def prior_mismatch_kl(s: Schedule, x0: torch.Tensor) -> float:
    """Average KL( q(x_T | x_0) ‖ N(0, I) ) over data ``x0: (n, d)``, in nats.

    q(x_T | x_0) = N(√ᾱ_T x_0, (1 − ᾱ_T) I), so per point
    KL = ½ [ d (−ᾱ_T − log(1 − ᾱ_T)) + ᾱ_T ‖x_0‖² ]; zero exactly when ᾱ_T = 0.
    """
    ab, x0 = s.alpha_bar[-1].item(), torch.as_tensor(x0, dtype=torch.float64)
    d = x0.shape[1]
    return 0.5 * (d * (-ab - math.log1p(-ab)) + ab * (x0 ** 2).sum(1).mean().item())
