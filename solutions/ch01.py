"""Solutions, notebook 01 (the 1D process)."""
import torch


def forward_jump(sched, x0, t, eps):
    """x_t in one jump from x_0 (eq. 2): √ᾱ_t x_0 + √(1 − ᾱ_t) ε."""
    alpha_bar = sched.alpha_bar[t]
    return alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * eps


def reverse_kernel(sched, m, p, x_t, t):
    """Mean and variance of q(x_{t−1} | x_t) for data N(m, p²) (notebook 01, item 2).

    μ_t = √ᾱ_t m and s_t² = ᾱ_t p² + 1 − ᾱ_t are the forward marginals; conditioning the Gaussian
    pair (x_{t−1}, x_t), whose covariance is √α_t s²_{t−1}, gives the kernel."""
    mu = sched.alpha_bar.sqrt() * m
    s2 = sched.alpha_bar * p ** 2 + 1 - sched.alpha_bar
    gain = sched.alpha[t].sqrt() * s2[t - 1] / s2[t]
    return mu[t - 1] + gain * (x_t - mu[t]), (sched.beta[t] * s2[t - 1] / s2[t]).item()
