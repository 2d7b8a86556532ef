"""Solutions, notebook 04 (noise schedules)."""
from helpers import schedules


def smallest_T(beta_1=1e-4, beta_T=0.02, level=0.01):
    """The fewest steps at which the linear schedule β_1 → β_T reaches √ᾱ_T ≤ level."""
    T = 1
    while schedules.linear(T, beta_1, beta_T).alpha_bar[-1].sqrt() > level:
        T += 1
    return T


def ddim_step(sched, x_t, t, t_prev, eps_hat):
    """Deterministic DDIM step t → t_prev (η = 0): predict x̂_0 from ε̂ (eq. 2 inverted), then
    re-noise it to t_prev with the same ε̂."""
    alpha_bar, alpha_bar_prev = sched.alpha_bar[t], sched.alpha_bar[t_prev]
    x0 = (x_t - (1 - alpha_bar).sqrt() * eps_hat) / alpha_bar.sqrt()
    return alpha_bar_prev.sqrt() * x0 + (1 - alpha_bar_prev).sqrt() * eps_hat


def matching_constant_beta(T=200, beta_1=1e-4, beta_T=0.02):
    """The constant β with the same ᾱ_T as the linear schedule: solve (1 − β)^T = ᾱ_T."""
    alpha_bar_T = schedules.linear(T, beta_1, beta_T).alpha_bar[-1].item()
    return 1 - alpha_bar_T ** (1 / T)
