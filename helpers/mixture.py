"""1D Gaussian-mixture data: every x_t is again a mixture, so the score, the optimal ε and the
exact reverse kernel stay closed form (notebook 01, "Two modes").

x_0 ~ Σ_k w_k N(m_k, p_k²). Which component a point came from never changes along the chain, so with
μ_{k,t} = √ᾱ_t m_k and s_{k,t}² = ᾱ_t p_k² + 1 − ᾱ_t:

    q_t(x)           = Σ_k w_k N(x; μ_{k,t}, s_{k,t}²),
    r_k(x, t)        = w_k N(x; μ_{k,t}, s_{k,t}²) / q_t(x)                (P(component k | x_t = x)),
    ∇ log q_t(x)     = −Σ_k r_k (x − μ_{k,t}) / s_{k,t}²                   (the score),
    ε*(x, t)         = E[ε | x_t = x] = −√(1 − ᾱ_t) ∇ log q_t(x),
    x̂_0(x, t)        = E[x_0 | x_t = x] = (x + (1 − ᾱ_t) ∇ log q_t(x)) / √ᾱ_t   (Tweedie's formula),
    q(x_{t−1} | x_t) = Σ_k r_k(x_t, t) q_k(x_{t−1} | x_t),

q_k the exact Gaussian kernel of component k (:func:`helpers.gaussian.exact_reverse_kernel`).
Tensors: ``x: (n,)`` float64.
"""
import math
from dataclasses import dataclass

import torch

from . import gaussian
from .diffusion import eps_reverse_mean
from .schedules import Schedule


@dataclass(frozen=True)
class Mixture:
    """Weights w_k (positive, summing to 1), means m_k and standard deviations p_k > 0."""
    weights: tuple
    means: tuple
    sds: tuple

    def __post_init__(self):
        if not len(self.weights) == len(self.means) == len(self.sds) >= 1:
            raise ValueError("weights, means and sds must have the same length >= 1, got "
                             f"{len(self.weights)}, {len(self.means)}, {len(self.sds)}")
        if min(self.weights) <= 0 or abs(sum(self.weights) - 1) > 1e-9:
            raise ValueError(f"weights must be positive and sum to 1, got {self.weights}")
        if min(self.sds) <= 0:
            raise ValueError(f"sds must be > 0, got {self.sds}")

    def sample(self, n: int, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(x_0: (n,), component: (n,)) drawn from the mixture."""
        k = torch.multinomial(torch.tensor(self.weights, dtype=torch.float64), n, replacement=True, generator=generator)
        means, sds = torch.tensor(self.means, dtype=torch.float64), torch.tensor(self.sds, dtype=torch.float64)
        return means[k] + sds[k] * torch.randn(n, generator=generator, dtype=torch.float64), k


def components(s: Schedule, mix: Mixture, t: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(μ_{k,t}, s_{k,t}²), each (K,): the components of q_t, t in 0..T."""
    if not (isinstance(t, int) and 0 <= t <= s.T):
        raise ValueError(f"t must be an integer in 0..{s.T}, got {t!r}")
    mu = torch.stack([gaussian.marginal_mean(s, m)[t] for m in mix.means])
    var = torch.stack([gaussian.marginal_var(s, p)[t] for p in mix.sds])
    return mu, var


def _log_joint(s: Schedule, mix: Mixture, x: torch.Tensor, t: int) -> torch.Tensor:
    """log w_k + log N(x; μ_{k,t}, s_{k,t}²): (n, K)."""
    mu, var = components(s, mix, t)
    w = torch.tensor(mix.weights, dtype=torch.float64)
    return w.log() - 0.5 * torch.log(2 * math.pi * var) - 0.5 * (x[:, None] - mu) ** 2 / var


def log_density(s: Schedule, mix: Mixture, x: torch.Tensor, t: int) -> torch.Tensor:
    """log q_t(x): (n,)."""
    return torch.logsumexp(_log_joint(s, mix, x, t), dim=1)


def responsibilities(s: Schedule, mix: Mixture, x: torch.Tensor, t: int) -> torch.Tensor:
    """r_k(x, t) = P(component k | x_t = x): (n, K); rows sum to 1."""
    return torch.softmax(_log_joint(s, mix, x, t), dim=1)


def score(s: Schedule, mix: Mixture, x: torch.Tensor, t: int) -> torch.Tensor:
    """∇_x log q_t(x): (n,)."""
    mu, var = components(s, mix, t)
    return -(responsibilities(s, mix, x, t) * (x[:, None] - mu) / var).sum(1)


def optimal_eps(s: Schedule, mix: Mixture, x: torch.Tensor, t: int) -> torch.Tensor:
    """ε*(x, t) = E[ε | x_t = x] = −√(1 − ᾱ_t) ∇ log q_t(x): the minimiser of the ε-loss at t."""
    return -(1 - s.alpha_bar[t]).sqrt() * score(s, mix, x, t)


def tweedie_x0(s: Schedule, mix: Mixture, x: torch.Tensor, t: int) -> torch.Tensor:
    """E[x_0 | x_t = x] = (x + (1 − ᾱ_t) ∇ log q_t(x)) / √ᾱ_t (Tweedie's formula)."""
    ab = s.alpha_bar[t]
    return (x + (1 - ab) * score(s, mix, x, t)) / ab.sqrt()


def _component_kernels(s: Schedule, mix: Mixture):
    """``parts(x_t, t) -> (means: (n, K), variances: (K,))`` of each component's Gaussian reverse kernel."""
    kernels = [gaussian.exact_reverse_kernel(s, m, p) for m, p in zip(mix.means, mix.sds)]

    def parts(x_t, t):
        pairs = [kern(x_t, t) for kern in kernels]
        return (torch.stack([mean for mean, _ in pairs], dim=1),
                torch.tensor([var for _, var in pairs], dtype=x_t.dtype))
    return parts


def exact_reverse_kernel(s: Schedule, mix: Mixture, generator=None):
    """q(x_{t−1} | x_t) as a ``kernel(x_t, t) -> (mean, var)`` for :func:`helpers.diffusion.run_reverse`:
    each point first draws its component k with probability r_k(x_t, t), then gets that
    component's Gaussian kernel (a draw from the mixture kernel, one component per point)."""
    parts = _component_kernels(s, mix)

    def kernel(x_t, t):
        u = torch.rand(len(x_t), 1, generator=generator, dtype=x_t.dtype)
        k = (u > responsibilities(s, mix, x_t, t).cumsum(1)).sum(1).clamp_max(len(mix.weights) - 1)
        means, variances = parts(x_t, t)
        return means.gather(1, k[:, None])[:, 0], variances[k]
    return kernel


def ddpm_kernel(s: Schedule, mix: Mixture):
    """The DDPM sampler driven by the optimal ε: mean from the ε-form (corrected eq. 8), variance β̃_t.
    Its mean is E[x_{t−1} | x_t], the mixture kernel's mean; its spread is one Gaussian's."""
    return lambda x_t, t: (eps_reverse_mean(s, x_t, optimal_eps(s, mix, x_t, t), t), s.posterior_variance[t].item())


def moment_matched_kernel(s: Schedule, mix: Mixture):
    """One Gaussian per step with the exact kernel's mean *and* variance:
    Var(x_{t−1} | x_t) = Σ_k r_k (v_k + μ_k²) − (Σ_k r_k μ_k)², μ_k and v_k each component's Gaussian kernel.
    The control for :func:`ddpm_kernel`: the same mean, only the variance changed."""
    parts = _component_kernels(s, mix)

    def kernel(x_t, t):
        r = responsibilities(s, mix, x_t, t)                                               # (n, K)
        means, variances = parts(x_t, t)                                                    # (n, K), (K,)
        mean = (r * means).sum(1)
        return mean, (r * (variances + means ** 2)).sum(1) - mean ** 2
    return kernel


def mode_summary(mix: Mixture, x0: torch.Tensor) -> list[tuple[float, float, float]]:
    """[(share, mean, sd)] per component of the points ``x0: (n,)``, each point given to the component
    of highest responsibility at t = 0 (the same rule for data and for samples)."""
    w = torch.tensor(mix.weights, dtype=torch.float64)
    mu, sd = torch.tensor(mix.means, dtype=torch.float64), torch.tensor(mix.sds, dtype=torch.float64)
    label = (w.log() - sd.log() - 0.5 * ((x0[:, None] - mu) / sd) ** 2).argmax(1)
    return [((label == k).double().mean().item(), x0[label == k].mean().item(), x0[label == k].std().item())
            for k in range(len(mix.weights))]
