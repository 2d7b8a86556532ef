"""The DDPM forward and reverse processes for data of any shape (x: (n, ...), t: int or (n,)).

Equation numbers are the report's; the ε-form of the reverse mean uses the correct 1/√α_t
(the report's eq. 8 writes 1/√ᾱ_t: notebook 01, "Erratum: eq. 8's prefactor").
"""
import torch

from .runtime import check_choice
from .schedules import Schedule

PREDICTIONS = ("eps", "v")


def _randn_like(x: torch.Tensor, generator) -> torch.Tensor:
    """Standard normal noise shaped like ``x``, drawn on the CPU generator, moved to x's device."""
    return torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)


def forward_step(s: Schedule, x_prev: torch.Tensor, t, noise: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 1: x_t = √(1 − β_t) · x_{t−1} + √β_t · ε.

    With ``out`` (t an int) the step is written into ``out`` without temporaries."""
    if out is None:
        return s.at(s.alpha, t, x_prev).sqrt() * x_prev + s.at(s.beta, t, x_prev).sqrt() * noise
    return torch.mul(x_prev, s.alpha[t].sqrt().item(), out=out).add_(noise, alpha=s.beta[t].sqrt().item())


def forward_trajectory(s: Schedule, x0: torch.Tensor, generator=None) -> torch.Tensor:
    """Iterate eq. 1 from x_0; returns (T + 1, *x0.shape) with x_t at index t.

    Each step is :func:`forward_step` written in place into its row (no temporaries: this is the
    memory-bound hot path of notebook 01, timed by ``make bench``).
    """
    xs = x0.new_empty((s.T + 1, *x0.shape))
    xs[0] = x0
    for t in range(1, s.T + 1):
        forward_step(s, xs[t - 1], t, _randn_like(x0, generator), out=xs[t])
    return xs


def forward_sample(s: Schedule, x0: torch.Tensor, t, noise: torch.Tensor) -> torch.Tensor:
    """Eq. 2 in closed form: x_t = √ᾱ_t · x_0 + √(1 − ᾱ_t) · ε."""
    ab = s.at(s.alpha_bar, t, x0)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * noise


def posterior_mean(s: Schedule, x_t: torch.Tensor, x0: torch.Tensor, t) -> torch.Tensor:
    """Eq. 4: μ̃_t(x_t, x_0) = √ᾱ_{t−1} β_t/(1 − ᾱ_t) · x_0 + √α_t (1 − ᾱ_{t−1})/(1 − ᾱ_t) · x_t.
    """
    return s.at(s.posterior_coef_x0, t, x_t) * x0 + s.at(s.posterior_coef_xt, t, x_t) * x_t


def predict_x0(s: Schedule, x_t: torch.Tensor, eps: torch.Tensor, t) -> torch.Tensor:
    """Invert eq. 2 for x_0: x̂_0 = (x_t − √(1 − ᾱ_t) · ε) / √ᾱ_t."""
    ab = s.at(s.alpha_bar, t, x_t)
    return (x_t - (1 - ab).sqrt() * eps) / ab.sqrt()


def eps_reverse_mean(s: Schedule, x_t: torch.Tensor, eps: torch.Tensor, t) -> torch.Tensor:
    """Eq. 8 corrected: μ̃_t = (x_t − β_t/√(1 − ᾱ_t) · ε) / √α_t  (Ho et al. 2020, eq. 11)."""
    beta, ab = s.at(s.beta, t, x_t), s.at(s.alpha_bar, t, x_t)
    return (x_t - beta / (1 - ab).sqrt() * eps) / (1 - beta).sqrt()


BLOCK_ENTRIES = 2 ** 18   # entries of one block of a (points × centres) float64 matrix: 2 MB, which stays in cache


def kernel_logits(x: torch.Tensor, centres: torch.Tensor, var: float):
    """−‖x − c_i‖²/(2 var) + ‖x‖²/(2 var) = (x·c_i − ‖c_i‖²/2)/var for ``x: (n, d)``, ``centres: (N, d)``, as one
    matrix product per row block of x, each (rows, N) with about :data:`BLOCK_ENTRIES` entries (with 20 000 centres,
    blocks of 13 rows take a third of the time of blocks of 1024). The dropped ‖x‖²/(2 var) is the same for every i."""
    bias = -0.5 * (centres ** 2).sum(dim=1) / var                                                   # (N,)
    rows = max(1, BLOCK_ENTRIES // max(1, len(centres)))
    return (torch.addmm(bias, xc, centres.T, alpha=1 / var) for xc in x.split(rows))


def ideal_eps(s: Schedule, data: torch.Tensor, x_t: torch.Tensor, t: int) -> torch.Tensor:
    """E[ε | x_t] when x_0 is drawn uniformly from the finite set ``data: (N, d)``; ``x_t: (n, d)``.

    q(x_t) is the mixture (1/N) Σ_i N(√ᾱ_t x0_i, (1 − ᾱ_t) I), so E[x_0 | x_t] = Σ_i w_i x0_i with
    w = softmax_i(−‖x_t − √ᾱ_t x0_i‖² / (2(1 − ᾱ_t))), and eq. 2 gives
    E[ε | x_t] = (x_t − √ᾱ_t E[x_0 | x_t]) / √(1 − ᾱ_t): the minimiser of the training loss at t.
    The softmax ignores a term that is the same for every i, so :func:`kernel_logits` gives its logits (three
    times faster than distances).
    """
    s.check_t(t)
    ab = s.alpha_bar[t].item()
    x, data = x_t.double(), torch.as_tensor(data, dtype=torch.float64)
    centres, var = ab ** 0.5 * data, 1 - ab
    x0_hat = torch.cat([torch.softmax(logits, dim=1) @ data for logits in kernel_logits(x, centres, var)])
    return ((x - ab ** 0.5 * x0_hat) / var ** 0.5).to(x_t.dtype)


def ideal_denoiser(s: Schedule, data: torch.Tensor):
    """:func:`ideal_eps` with a network's signature ``predict(x_t: (n, d), t: (n,))`` (one t per call)."""
    def predict(x_t, t):
        if not bool((t == t[0]).all()):
            raise ValueError("the ideal denoiser takes one t per call")
        return ideal_eps(s, data, x_t, int(t[0]))
    return predict


def ideal_conditional(s: Schedule, points: torch.Tensor, labels: torch.Tensor):
    """The exact class-conditional predictor of a labelled finite set ``points: (N, d)``, ``labels: (N,)``, with a
    conditional network's signature ``model(x_t: (n, d), t: (n,), labels: (n,))`` (one t per call): row i gets
    :func:`ideal_eps` of the points of class ``labels[i]``, or of all points where it is −1 ("no class")."""
    points, classes = torch.as_tensor(points), torch.as_tensor(labels)

    def model(x_t, t, labels_):
        if not bool((t == t[0]).all()):
            raise ValueError("the ideal predictor takes one t per call")
        out = torch.empty_like(x_t)
        for c in torch.as_tensor(labels_).unique().tolist():
            rows = labels_ == c
            out[rows] = ideal_eps(s, points if c == -1 else points[classes == c], x_t[rows], int(t[0]))
        return out
    return model


def guided(model, label: int, w: float):
    """Classifier-free guidance (Ho & Salimans 2022): a denoiser ``predict(x_t: (n, d), t: (n,))`` giving
    ε̃ = ε_θ(x_t, t, ∅) + w · (ε_θ(x_t, t, c) − ε_θ(x_t, t, ∅)) for a class-conditional ``model(x, t, labels)``
    whose label −1 means "no class". w = 0 samples the unconditional model, w = 1 the conditional one, w > 1
    pushes past it (their eq. 6 writes 1 + w for our w). With ε = −√(1 − ᾱ_t) ∇ log q_t, ε̃ is the ε of
    ∇ log q_t(x) + w ∇ log q_t(c | x): the class's posterior raised to the power w."""
    if not w >= 0:
        raise ValueError(f"w must be >= 0, got {w!r}")

    def predict(x_t, t):
        if w in (0, 1):      # one of the two terms has weight 0: one pass of the network
            return model(x_t, t, torch.full((len(x_t),), label if w == 1 else -1, device=x_t.device))
        labels = torch.cat([torch.full((len(x_t),), label), torch.full((len(x_t),), -1)]).to(x_t.device)
        conditional, unconditional = model(torch.cat([x_t, x_t]), torch.cat([t, t]), labels).chunk(2)
        return unconditional + w * (conditional - unconditional)
    return predict


def two_stage(high_t_model, low_t_model, t_switch: int):
    """A denoiser ``predict(x_t: (n, d), t: (n,))`` that runs ``high_t_model`` where t > ``t_switch`` and
    ``low_t_model`` where t <= ``t_switch``: two networks, each used for one part of the reverse chain,
    to ask which part of the chain a difference between them comes from."""
    if not isinstance(t_switch, int) or t_switch < 0:
        raise ValueError(f"t_switch must be an integer >= 0, got {t_switch!r}")

    def predict(x_t, t):
        low = t <= t_switch
        out = x_t.new_empty(x_t.shape)
        if (~low).any():
            out[~low] = high_t_model(x_t[~low], t[~low])
        if low.any():
            out[low] = low_t_model(x_t[low], t[low])
        return out
    return predict


def velocity(s: Schedule, x0: torch.Tensor, eps: torch.Tensor, t) -> torch.Tensor:
    """The v-target of Salimans & Ho (2022): v = √ᾱ_t · ε − √(1 − ᾱ_t) · x_0."""
    ab = s.at(s.alpha_bar, t, x0)
    return ab.sqrt() * eps - (1 - ab).sqrt() * x0


def x0_from_velocity(s: Schedule, x_t: torch.Tensor, v: torch.Tensor, t) -> torch.Tensor:
    """x̂_0 = √ᾱ_t · x_t − √(1 − ᾱ_t) · v; finite even where ᾱ_t = 0."""
    ab = s.at(s.alpha_bar, t, x_t)
    return ab.sqrt() * x_t - (1 - ab).sqrt() * v


def check_prediction(s: Schedule, prediction: str):
    """Raise a ValueError unless ``prediction`` is known and can be sampled with ``s``."""
    check_choice("prediction", prediction, PREDICTIONS)
    if prediction == "eps" and s.alpha_bar[-1] == 0:
        raise ValueError("prediction='eps' cannot sample a schedule with alpha_bar_T = 0 "
                         "(x_T carries no signal, x_0 = 0/0); use prediction='v'")


def x0_from_output(s: Schedule, out: torch.Tensor, x_t: torch.Tensor, t, prediction: str = "eps"):
    """x̂_0 from a network output: eq. 2 inverted for ε̂ (:func:`predict_x0`), or from v̂."""
    check_choice("prediction", prediction, PREDICTIONS)
    return predict_x0(s, x_t, out, t) if prediction == "eps" else x0_from_velocity(s, x_t, out, t)


def reverse_mean(s: Schedule, out: torch.Tensor, x_t: torch.Tensor, t, prediction: str = "eps",
                 clip_x0: float | None = None):
    """Mean of p_θ(x_{t−1} | x_t) from a network output ``out`` (ε̂ or v̂).

    With ``clip_x0`` the prediction x̂_0 is clamped to [−clip_x0, clip_x0] before eq. 4 (the
    trick of image models, whose pixels live in [−1, 1]); otherwise an ε̂ goes through eq. 8.
    """
    if prediction == "eps" and clip_x0 is None:
        return eps_reverse_mean(s, x_t, out, t)
    x0 = x0_from_output(s, out, x_t, t, prediction)
    return posterior_mean(s, x_t, x0 if clip_x0 is None else x0.clamp(-clip_x0, clip_x0), t)


def far_point_factor(s: Schedule, t: int, prediction: str = "eps", clip_x0: float | None = None) -> float:
    """lim_{|x_t|→∞} |μ_t|/|x_t| of :func:`reverse_mean` for a network whose output is bounded.

    With eq. 4, μ_t = c₀ x̂_0 + c₁ x_t (c₀ = √ᾱ_{t−1} β_t/(1 − ᾱ_t), c₁ = √α_t (1 − ᾱ_{t−1})/(1 − ᾱ_t)):

    * ε̂ (eq. 8 corrected): μ_t = (x_t − β_t/√(1 − ᾱ_t) ε̂)/√α_t, so the factor is 1/√α_t;
    * v̂: x̂_0 = √ᾱ_t x_t − √(1 − ᾱ_t) v̂, so it is c₁ + c₀√ᾱ_t = √α_t (1 − ᾱ_{t−1}α_t)/(1 − ᾱ_t) = √α_t;
    * x̂_0 clipped (either target): x̂_0 stays bounded, so it is c₁.

    Above 1 a far point grows at step t, below 1 it shrinks (notebook 04, "explained")."""
    s.check_t(t)
    check_choice("prediction", prediction, PREDICTIONS)
    if clip_x0 is not None:
        return s.posterior_coef_xt[t].item()
    alpha = s.alpha[t].item()
    return alpha ** 0.5 if prediction == "v" else (1 / alpha ** 0.5 if alpha > 0 else float("inf"))


def run_reverse(kernel, x_T: torch.Tensor, T: int, generator=None, trajectory: bool = False):
    """Ancestral sampling x_{t−1} ~ N(mean, var), (mean, var) = kernel(x_t, t), t = T..1.

    Returns x_0, or the trajectory (T + 1, *x_T.shape) with x_t at index t.
    """
    x = x_T
    xs = x_T.new_empty((T + 1, *x_T.shape)) if trajectory else None
    for t in range(T, 0, -1):
        if trajectory:
            xs[t] = x
        mean, var = kernel(x, t)
        x = mean + torch.as_tensor(var, dtype=x.dtype).sqrt() * _randn_like(x, generator)
    if trajectory:
        xs[0] = x
    return xs if trajectory else x


def restart(kernel, s: Schedule, x0: torch.Tensor, t0: int, generator=None) -> torch.Tensor:
    """Draws ``x0: (n, ...)`` noised to step ``t0`` by q(x_t0 | x_0) (eq. 2, :func:`forward_sample`) and taken back to t = 0 by the reverse
    kernel ``kernel`` (:func:`run_reverse`, t = t0..1): the learned reverse process started from the true marginal
    q(x_t0) instead of from N(0, I) at T (the restart of SDEdit, Meng et al. 2022). ``t0 = 0`` returns ``x0``. The
    further the restarted draws fall from the data's law, the more error the kernels of steps t0..1 add."""
    if not isinstance(t0, int) or not 0 <= t0 <= s.T:
        raise ValueError(f"t0 must be an integer in 0..{s.T}, got {t0!r}")
    if t0 == 0:
        return x0
    x_t0 = forward_sample(s, x0, t0, _randn_like(x0, generator))
    return run_reverse(kernel, x_t0, t0, generator)


def ddpm_kernel(model, s: Schedule, prediction: str = "eps", variance: str = "posterior",
                clip_x0: float | None = None):
    """The learned reverse kernel: mean from the network (:func:`reverse_mean`), variance β̃_t (eq. 5)
    or β_t; no noise is added on the last step, t = 1, with either."""
    check_prediction(s, prediction)
    if variance not in ("posterior", "beta"):
        raise ValueError(f"variance must be 'posterior' or 'beta', got {variance!r}")
    var = s.posterior_variance if variance == "posterior" else s.beta

    @torch.no_grad()
    def kernel(x_t, t):
        tt = torch.full(x_t.shape[:1], t, dtype=torch.long, device=x_t.device)
        return reverse_mean(s, model(x_t, tt), x_t, t, prediction, clip_x0), var[t] if t > 1 else 0.0
    return kernel


def sample(model, s: Schedule, shape, generator=None, device="cpu", trajectory=False,
           prediction="eps", variance="posterior", clip_x0: float | None = None):
    """Draw ``shape`` = (n, ...) samples from the model, starting at x_T ~ N(0, I)."""
    x_T = torch.randn(tuple(shape), generator=generator).to(device)
    return run_reverse(ddpm_kernel(model, s, prediction, variance, clip_x0), x_T, s.T, generator, trajectory)


def ddim_timesteps(T: int, steps: int) -> list[int]:
    """``steps`` + 1 evenly spaced times from T down to 0 (rounded, distinct)."""
    if not isinstance(steps, int) or not 1 <= steps <= T:
        raise ValueError(f"steps must be an integer in 1..{T}, got {steps!r}")
    return sorted({round(T * k / steps) for k in range(steps + 1)}, reverse=True)


@torch.no_grad()
def ddim_sample(model, s: Schedule, shape, steps: int, generator=None, device="cpu", prediction="eps",
                x_T: torch.Tensor | None = None):
    """Deterministic DDIM (η = 0; Song et al. 2021, eq. 12) on ``steps`` of the T times:
    x_{t'} = √ᾱ_{t'} x̂_0 + √(1 − ᾱ_{t'}) ε̂ for consecutive times t > t'; ends at x̂_0.
    Starts at ``x_T`` when given (for example a draw of the true q(x_T)), else at N(0, I)."""
    check_prediction(s, prediction)
    x = (torch.randn(tuple(shape), generator=generator) if x_T is None else x_T).to(device)
    times = ddim_timesteps(s.T, steps)
    for t, t_next in zip(times[:-1], times[1:]):
        out = model(x, torch.full(x.shape[:1], t, dtype=torch.long, device=x.device))
        x0 = x0_from_output(s, out, x, t, prediction)
        ab, ab_next = s.at(s.alpha_bar, t, x), s.alpha_bar[t_next].to(x)
        eps = (x - ab.sqrt() * x0) / (1 - ab).sqrt()
        x = ab_next.sqrt() * x0 + (1 - ab_next).sqrt() * eps
    return x
