"""Noise schedules: β_t, α_t = 1 − β_t, ᾱ_t = ∏_{i≤t} α_i and the posterior coefficients.

One time-index convention rules the whole package: t runs from 1 to T and the value for
step t is stored at index t. Index 0 holds β_0 = 0, so ᾱ_0 = 1 (the data itself), and
"ᾱ_{t−1}" is always ``alpha_bar[t - 1]`` with no wrap-around at t = 1 (notebook 04, "Two other causes … checked").
All arrays are float64 tensors of shape (T + 1,).
"""
import math

import torch


class Schedule:
    """A variance schedule β_1..β_T and every quantity derived from it (Ho et al. 2020, §2)."""

    def __init__(self, beta_1_to_T, name: str = ""):
        beta = torch.as_tensor(beta_1_to_T, dtype=torch.float64).flatten()
        if len(beta) < 1:
            raise ValueError("T must be >= 1 (the schedule has no steps)")
        if not bool(((beta > 0) & (beta <= 1)).all()):
            raise ValueError(f"beta must lie in (0, 1] at every step, got range "
                             f"[{beta.min().item():.3g}, {beta.max().item():.3g}]")
        self.name = name
        self.beta = torch.cat([beta.new_zeros(1), beta])
        self.alpha = 1 - self.beta
        self.alpha_bar = torch.cumprod(self.alpha, 0)
        prev = torch.cat([self.alpha_bar[:1], self.alpha_bar[:-1]])
        denom = (1 - self.alpha_bar).clamp_min(1e-300)
        # eq. 5:  β̃_t = (1 − ᾱ_{t−1}) / (1 − ᾱ_t) · β_t
        self.posterior_variance = (1 - prev) / denom * self.beta
        # eq. 4:  μ̃_t = c_x0 · x_0 + c_xt · x_t
        self.posterior_coef_x0 = prev.sqrt() * self.beta / denom
        self.posterior_coef_xt = self.alpha.sqrt() * (1 - prev) / denom
        self.posterior_variance[0] = self.posterior_coef_x0[0] = self.posterior_coef_xt[0] = 0

    @property
    def T(self) -> int:
        return len(self.beta) - 1

    @property
    def log_snr(self) -> torch.Tensor:
        """log SNR_t = log ᾱ_t / (1 − ᾱ_t), shape (T + 1,); +inf at t = 0, −inf where ᾱ_t = 0."""
        return torch.log(self.alpha_bar) - torch.log1p(-self.alpha_bar)

    def check_t(self, t):
        """Raise a ValueError naming ``t`` unless every entry lies in 1..T."""
        tt = torch.as_tensor(t)
        if tt.is_floating_point() or tt.numel() == 0 or tt.min() < 1 or tt.max() > self.T:
            raise ValueError(f"t must be integer(s) in 1..{self.T}, got {t!r}")

    def at(self, values: torch.Tensor, t, like: torch.Tensor) -> torch.Tensor:
        """``values[t]`` shaped to broadcast against ``like``: (n, 1, ...) for t of shape (n,)."""
        self.check_t(t)
        if isinstance(t, int):
            return values[t].to(like)
        if t.shape != like.shape[:1]:
            raise ValueError(f"t must have shape ({like.shape[0]},) to match x, got {tuple(t.shape)}")
        return values.to(like.device)[t].to(like.dtype).view(-1, *[1] * (like.dim() - 1))

    def __repr__(self):
        return f"Schedule({self.name!r}, T={self.T}, sqrt_alpha_bar_T={self.alpha_bar[-1].sqrt():.3g})"


def _check_T(T):
    if not isinstance(T, int) or T < 1:
        raise ValueError(f"T must be an integer >= 1, got {T!r}")


def _check_beta(name, value):
    if not 0 < value < 1:
        raise ValueError(f"{name} must lie in (0, 1), got {value!r}")


def constant(T: int, beta: float = 0.02) -> Schedule:
    """β_t = β for every t."""
    _check_T(T)
    _check_beta("beta", beta)
    return Schedule(torch.full((T,), beta), "constant")


def linear(T: int, beta_1: float = 1e-4, beta_T: float = 0.02) -> Schedule:
    """β_t linear from β_1 to β_T (Ho et al. 2020 use 1e-4 → 0.02 with T = 1000)."""
    _check_T(T)
    _check_beta("beta_1", beta_1)
    _check_beta("beta_T", beta_T)
    return Schedule(torch.linspace(beta_1, beta_T, T, dtype=torch.float64), "linear")


def scaled_linear(T: int, beta_1: float = 1e-4, beta_T: float = 0.02, reference_T: int = 1000) -> Schedule:
    """Linear β scaled by ``reference_T / T`` so that ᾱ_T stays near its value at ``reference_T``.

    Σβ_t fixes log ᾱ_T ≈ −Σβ_t; Nichol & Dhariwal (2021, §3.2) scale Ho's β by 1000 / T.
    """
    _check_T(T)
    k = reference_T / T
    _check_beta("beta_T * reference_T / T", beta_T * k)
    sched = linear(T, beta_1 * k, beta_T * k)
    sched.name = "scaled linear"
    return sched


def cosine(T: int, s: float = 0.008, max_beta: float = 0.999) -> Schedule:
    """ᾱ_t = f(t) / f(0), f(t) = cos²((t/T + s) / (1 + s) · π/2); β_t = 1 − ᾱ_t/ᾱ_{t−1} ≤ max_beta.

    Nichol & Dhariwal (2021), eq. 17; the clip keeps β_T below 1.
    """
    _check_T(T)
    _check_beta("max_beta", max_beta)
    f = torch.cos((torch.arange(T + 1, dtype=torch.float64) / T + s) / (1 + s) * math.pi / 2) ** 2
    beta = (1 - f[1:] / f[:-1]).clamp(max=max_beta)
    return Schedule(beta, "cosine")


def zero_terminal_snr(schedule: Schedule) -> Schedule:
    """Rescale √ᾱ_t linearly so that √ᾱ_T = 0 while √ᾱ_1 is unchanged (Lin et al. 2024, Alg. 1).

    Then β_T = 1: x_T is exactly N(0, I), so an ε-predictor learns nothing at t = T and
    the sampler needs the v-parameterisation (see :mod:`helpers.diffusion`).
    """
    root = schedule.alpha_bar[1:].sqrt()
    root = (root - root[-1]) * root[0] / (root[0] - root[-1])
    alpha_bar = torch.cat([root.new_ones(1), root ** 2])
    return Schedule(1 - alpha_bar[1:] / alpha_bar[:-1], f"{schedule.name} zero-SNR")


SCHEDULES = {"constant": constant, "linear": linear, "scaled_linear": scaled_linear, "cosine": cosine}


def make_schedule(name: str, T: int, zero_snr: bool = False, **kwargs) -> Schedule:
    """Build a schedule by name (one of :data:`SCHEDULES`), optionally rescaled to zero terminal SNR."""
    if name not in SCHEDULES:
        raise ValueError(f"schedule must be one of {sorted(SCHEDULES)}, got {name!r}")
    sched = SCHEDULES[name](T, **kwargs)
    return zero_terminal_snr(sched) if zero_snr else sched
