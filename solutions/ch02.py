"""Solutions, notebook 02 (learning 2D shapes)."""
import torch


def eps_loss(model, sched, x0, t, eps):
    """ε-prediction loss of a batch: x_t by eq. 2 for each point's own t, then the mean squared
    error between model(x_t, t) and ε."""
    alpha_bar = sched.alpha_bar[t].reshape(-1, 1).to(x0.dtype)
    x_t = alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * eps
    return ((model(x_t, t) - eps) ** 2).mean()


def ancestral_step(sched, x_t, t, eps_hat, z):
    """One step of ancestral sampling: the mean of eq. 8 with 1/√α_t, plus σ_t z with σ_t² = β̃_t
    (eq. 5), and no noise on the last step t = 1."""
    beta, alpha, alpha_bar = sched.beta[t], sched.alpha[t], sched.alpha_bar[t]
    mean = (x_t - beta / (1 - alpha_bar).sqrt() * eps_hat) / alpha.sqrt()
    return mean + sched.posterior_variance[t].sqrt() * z if t > 1 else mean
