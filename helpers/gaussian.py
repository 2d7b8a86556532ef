"""Gaussian data x_0 ~ N(m, p²): every x_t is Gaussian, so the reverse process is exact.

With μ_t = √ᾱ_t · m and s_t² = ᾱ_t p² + 1 − ᾱ_t (the forward marginals), x_{t−1} and x_t are
jointly Gaussian with covariance √α_t s_{t−1}², which gives (notebook 01, "Three reverse processes")

    q(x_{t−1} | x_t) = N(μ_{t−1} + √α_t (s_{t−1}²/s_t²)(x_t − μ_t),  β_t s_{t−1}²/s_t²),
    E[ε | x_t]       = √(1 − ᾱ_t) (x_t − μ_t) / s_t².

Every kernel below has the signature ``kernel(x_t, t) -> (mean, var)`` of
:func:`helpers.diffusion.run_reverse`.
"""
import math

import torch

from .diffusion import eps_reverse_mean, kernel_logits
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


def true_reverse_variance(s: Schedule, p: float) -> torch.Tensor:
    """Var(x_{t−1} | x_t) = β_t s_{t−1}²/s_t² for t = 0..T, shape (T + 1,) (index 0 unused, 0).

    It exceeds β̃_t (eq. 5) by c_{x0,t}² Var(x_0 | x_t), c_{x0,t} = √ᾱ_{t−1} β_t/(1 − ᾱ_t) the
    weight of x_0 in eq. 4: β̃_t is the spread *given* x_0, this one also carries x_0's uncertainty.
    """
    var = marginal_var(s, p)
    out = s.beta * torch.cat([var[:1], var[:-1]]) / var
    out[0] = 0
    return out


def exact_reverse_kernel(s: Schedule, m: float, p: float):
    """The true reverse kernel q(x_{t−1} | x_t) of Gaussian data (no x_0 needed)."""
    mu, var, rev_var = marginal_mean(s, m), marginal_var(s, p), true_reverse_variance(s, p)

    def kernel(x_t, t):
        s.check_t(t)
        gain = s.alpha[t].sqrt() * var[t - 1] / var[t]
        return mu[t - 1] + gain * (x_t - mu[t]), rev_var[t].item()
    return kernel


def optimal_eps(s: Schedule, x_t: torch.Tensor, t: int, m: float, p: float) -> torch.Tensor:
    """E[ε | x_t] = √(1 − ᾱ_t)(x_t − μ_t)/s_t²: the best possible noise predictor (MSE)."""
    s.check_t(t)
    return (1 - s.alpha_bar[t]).sqrt() * (x_t - marginal_mean(s, m)[t]) / marginal_var(s, p)[t]


def optimal_eps_kernel(s: Schedule, m: float, p: float, exact_last: int = 0, report_prefactor: bool = False):
    """The DDPM sampler (corrected eq. 8, variance β̃_t of eq. 5) driven by the optimal ε.

    ``exact_last = k`` uses the true reverse variance (:func:`true_reverse_variance`) instead of
    β̃_t at the last k steps, t = 1..k; with k = T the kernel is the exact one. With
    ``report_prefactor`` the mean is the report's eq. 8 as printed, with 1/√ᾱ_t in place of 1/√α_t.
    """
    _check_p(p)
    if not (isinstance(exact_last, int) and 0 <= exact_last <= s.T):
        raise ValueError(f"exact_last must be an integer in 0..{s.T}, got {exact_last!r}")
    variance = torch.where(torch.arange(s.T + 1) <= exact_last, true_reverse_variance(s, p), s.posterior_variance)

    def kernel(x_t, t):
        eps = optimal_eps(s, x_t, t, m, p)
        mean = eps_reverse_mean(s, x_t, eps, t)
        if report_prefactor:
            mean = mean * (s.alpha[t] / s.alpha_bar[t]).sqrt()     # 1/√α_t → 1/√ᾱ_t
        return mean, variance[t].item()
    return kernel


def report_reverse_kernel(s: Schedule, m: float, p: float):
    """The report's eqs 6–7: eq. 4 with x_0 replaced by m, and p² added to β̃_t.

    Not the reverse process (notebook 01, errata): it lands on N(m, p²) at t = 0 only because ᾱ_0 = 1
    makes the last step ignore x_1; its intermediate marginals are wrong.
    """
    _check_p(p)

    def kernel(x_t, t):
        s.check_t(t)
        mean = s.posterior_coef_xt[t] * x_t + s.posterior_coef_x0[t] * m
        return mean, (s.posterior_variance[t] + p ** 2).item()
    return kernel


def prior_term_kl(s: Schedule, x0: torch.Tensor) -> float:
    """The ELBO's prior term L_T = E_{x_0} KL( q(x_T | x_0) ‖ N(0, I) ) over data ``x0: (n, d)``, in nats.

    q(x_T | x_0) = N(√ᾱ_T x_0, (1 − ᾱ_T) I), so per point
    KL = ½ [ d (−ᾱ_T − log(1 − ᾱ_T)) + ᾱ_T ‖x_0‖² ]; zero exactly when ᾱ_T = 0. It bounds the
    marginal mismatch :func:`prior_marginal_kl` from above, by the mutual information I(x_0; x_T).
    """
    ab, x0 = s.alpha_bar[-1].item(), torch.as_tensor(x0, dtype=torch.float64)
    d = x0.shape[1]
    return 0.5 * (d * (-ab - math.log1p(-ab)) + ab * (x0 ** 2).sum(1).mean().item())


def log_mixture_density(x: torch.Tensor, centres: torch.Tensor, sd: float) -> torch.Tensor:
    """log of (1/N) Σ_i N(x; c_i, sd² I) for ``x: (n, d)``, ``centres: (N, d)``: ``(n,)``, in row blocks of x."""
    d, N = x.shape[1], len(centres)
    const = -math.log(N) - 0.5 * d * math.log(2 * math.pi * sd ** 2)
    var = sd ** 2
    parts = [torch.logsumexp(logits, dim=1) for logits in kernel_logits(x, centres, var)]
    return torch.cat(parts) - 0.5 * (x ** 2).sum(dim=1) / var + const       # the ‖x‖² term kernel_logits leaves out


def prior_marginal_kl(s: Schedule, x0, n: int = 20_000, generator=None) -> tuple[float, float]:
    """KL( q(x_T) ‖ N(0, I) ) in nats per point for the finite data set ``x0: (N, d)``, by Monte Carlo.

    q(x_T) = (1/N) Σ_i N(√ᾱ_T x0_i, (1 − ᾱ_T) I) is an exact mixture, so KL = E_q[log q − log N(0, I)]
    is averaged over n draws from q. Returns (estimate, standard error). This is the mismatch the
    sampler starts from; 0 exactly when ᾱ_T = 0.
    """
    x0 = torch.as_tensor(x0, dtype=torch.float64)
    ab = s.alpha_bar[-1].item()
    if ab == 0:
        return 0.0, 0.0
    pick = torch.randint(len(x0), (n,), generator=generator)
    x_T = math.sqrt(ab) * x0[pick] + math.sqrt(1 - ab) * torch.randn(n, x0.shape[1], generator=generator, dtype=torch.float64)
    log_q = log_mixture_density(x_T, math.sqrt(ab) * x0, math.sqrt(1 - ab))
    log_prior = -0.5 * (x_T ** 2).sum(1) - 0.5 * x0.shape[1] * math.log(2 * math.pi)
    ratio = log_q - log_prior
    return ratio.mean().item(), (ratio.std() / math.sqrt(n)).item()
