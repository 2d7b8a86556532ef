"""Checks for the exercises at the end of each notebook; each says what is wrong, not only that it is.

A check takes the reader's answer (a function or a number), computes the expected answer on its
own — a closed form, a hand derivation or the known truth behind generated data, never a
solution — and returns a :class:`Feedback`: true when the answer is right, shown as one line in
the notebook. Where a wrong answer matches a common slip (ᾱ_t for √ᾱ_t, an index off by one,
the report's misprinted eq. 8) the feedback names it. An unfilled stub (a body of ``...`` that
returns None, or ``answer = None``) gets a "not attempted" feedback instead of an exception, so a
notebook with open exercises still runs from top to bottom. Solutions: ``solutions/chNN.py``.
"""
import functools
import math

import numpy as np
import torch

from . import data, radial, schedules, stars, starsets

ATOL = 1e-6        # absolute tolerance when an answer has a closed form


class Feedback:
    """The verdict on one answer: ``bool(feedback)`` says whether it is right, ``status`` is one of
    "correct", "wrong", "not attempted", and ``message`` says why."""

    def __init__(self, status: str, message: str):
        self.status, self.message = status, message

    def __bool__(self):
        return self.status == "correct"

    def __repr__(self):
        return f"{self.status.capitalize()}: {self.message}"


class Wrong(Exception):
    """Raised inside a check with the hint for the reader."""
    status = "wrong"


class NotAttempted(Wrong):
    status = "not attempted"


class Undecided(Wrong):
    """The measurement cannot decide between the answers: neither right nor wrong."""
    status = "undecided"


def exercise(check):
    """A check that raises :class:`Wrong` with a hint, or returns the success message, turned into
    one that returns a :class:`Feedback` (never raises for a wrong answer)."""
    @functools.wraps(check)
    def run(*args, **kwargs):
        try:
            return Feedback("correct", check(*args, **kwargs))
        except Wrong as wrong:
            return Feedback(wrong.status, str(wrong))
    return run


def call(fn, *args):
    """``fn(*args)``, or :class:`Wrong` / :class:`NotAttempted` saying what went wrong."""
    name = getattr(fn, "__name__", "your answer")
    if not callable(fn):
        raise NotAttempted(f"expected a function, got {fn!r}; define the function in the cell above")
    try:
        result = fn(*args)
    except NotImplementedError:
        raise NotAttempted(f"{name} raises NotImplementedError; replace it by your code") from None
    except Exception as err:   # any error of the reader's code is feedback, not a crash
        raise Wrong(f"{name} raised {type(err).__name__}: {err}") from None
    if result is None:
        raise NotAttempted(f"{name} returned None; write its body in place of the `...`")
    return result


def number(answer, name: str) -> float:
    """The reader's numeric answer as a float, or :class:`Wrong` / :class:`NotAttempted`."""
    if answer is None:
        raise NotAttempted(f"{name} is None; set it to your answer")
    try:
        return float(answer)
    except (TypeError, ValueError):
        raise Wrong(f"{name} must be a number, got {answer!r}") from None


def tensor(value, name: str, shape=None) -> torch.Tensor:
    """``value`` as a float64 tensor (of ``shape`` when given), or :class:`Wrong` naming what differs."""
    try:
        value = torch.as_tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise Wrong(f"{name} must be a tensor or a number, got {type(value).__name__}") from None
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise Wrong(f"{name} has shape {tuple(value.shape)}, expected {tuple(shape)}")
    return value


def close(a, b, atol: float = ATOL) -> bool:
    return bool(torch.allclose(torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64),
                               atol=atol, rtol=1e-5))


def same_twice(fn, args, name: str, given: str):
    """``fn(*args)`` called twice: the result, or :class:`Wrong` when the two calls differ (the answer drew its
    own random numbers instead of using ``given``, the ones passed in)."""
    first, second = call(fn, *args), call(fn, *args)
    try:
        differ = not torch.equal(torch.as_tensor(first), torch.as_tensor(second))
    except (TypeError, ValueError, RuntimeError):
        return first
    if differ:
        raise Wrong(f"two calls of {name} with the same inputs gave different results: you drew fresh random numbers; "
                    f"use the {given} passed in")
    return first


def distinct(value: float, level: float, digits: int = 4) -> str:
    """``value`` with as many decimals as it takes (from ``digits``) not to print as ``level``."""
    while digits < 12 and float(f"{value:.{digits}f}") == level:
        digits += 1
    return f"{value:.{digits}f}"


def significant_figures(value: float, expected: float, figures: int) -> bool:
    """Whether ``value`` agrees with ``expected`` to ``figures`` significant figures (half a unit in the last)."""
    unit = 10.0 ** (math.floor(math.log10(abs(expected))) - figures + 1)
    return abs(value - expected) <= 0.5 * unit + 1e-15


def diagnose(actual, slips: dict, fallback):
    """Raise :class:`Wrong` with the hint of the first slip whose value ``actual`` matches, else with
    ``fallback`` (a message, or a function that composes it only when needed)."""
    for hint, value in slips.items():
        if close(actual, value):
            raise Wrong(hint)
    raise Wrong(fallback() if callable(fallback) else fallback)


def alpha_bar_by_hand(s: schedules.Schedule) -> torch.Tensor:
    """ᾱ_t = ∏_{i≤t} (1 − β_i) for t = 0..T, multiplied out here from β alone (float64)."""
    return torch.as_tensor(np.cumprod(1 - s.beta.double().numpy()))


def _check_schedule(s):
    if not isinstance(s, schedules.Schedule):
        raise ValueError(f"sched must be a helpers.schedules.Schedule, got {type(s).__name__}")
    return s


# --- notebook 01: the 1D process -----------------------------------------------------------


def stats(x: torch.Tensor) -> str:
    return f"mean {x.mean():.3f} and std {x.std():.3f}"


def iterate_forward(s: schedules.Schedule, x0: torch.Tensor, t: int, generator) -> torch.Tensor:
    """x_t by eq. 1 applied t times from ``x0``: √(1 − β_i) x_{i−1} + √β_i z_i."""
    x = x0.clone()
    for i in range(1, t + 1):
        x = (1 - s.beta[i]).sqrt() * x + s.beta[i].sqrt() * torch.randn(x.shape, generator=generator, dtype=x.dtype)
    return x


@exercise
def check_forward_jump(forward_jump, sched, m: float = 3.0, n: int = 20_000):
    """Exercise 01.1: ``forward_jump(sched, x0, t, eps)`` must return x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε (eq. 2).

    Checked exactly for given ε at t = 1, T/5 and T, and against eq. 1 iterated t times (mean and
    std over ``n`` draws from x_0 = ``m``)."""
    s, gen = _check_schedule(sched), torch.Generator().manual_seed(1)
    ab = alpha_bar_by_hand(s)
    x0 = torch.full((n,), m, dtype=torch.float64)
    for t in sorted({1, max(1, s.T // 5), s.T}):
        eps = torch.randn(n, generator=gen, dtype=torch.float64)
        mine = tensor(same_twice(forward_jump, (s, x0, t, eps), "forward_jump", "eps"), f"forward_jump(sched, x0, {t}, eps)", x0.shape)
        iterated = iterate_forward(s, x0, t, gen)
        expected = ab[t].sqrt() * x0 + (1 - ab[t]).sqrt() * eps
        compared = (f"from x_0 = {m} to t = {t}, your x_t has {stats(mine)}; eq. 1 step by step gives {stats(iterated)}")
        if close(mine, expected):
            continue
        a, b, ab_prev = s.alpha[t], s.beta[t], ab[t - 1]
        if close(mine, x0):
            raise Wrong(f"at t = {t} your x_t is x_0 itself: no noise was added"
                        + (", or ᾱ was read at index t − 1 (index 0 holds ᾱ_0 = 1)" if t == 1 else "")
                        + f"; eq. 2 gives √ᾱ_t x_0 + √(1 − ᾱ_t) ε; {compared}")
        diagnose(mine, {
            f"at t = {t} you used ᾱ_t and 1 − ᾱ_t where eq. 2 has their square roots":
                ab[t] * x0 + (1 - ab[t]) * eps,
            f"at t = {t} the noise is scaled by 1 − ᾱ_t; eq. 2 scales it by √(1 − ᾱ_t)":
                ab[t].sqrt() * x0 + (1 - ab[t]) * eps,
            f"at t = {t} that is one step of eq. 1 (α_t and β_t of step t alone); the jump uses ᾱ_t = α_1···α_t":
                a.sqrt() * x0 + b.sqrt() * eps,
            f"at t = {t} you read ᾱ at index t − 1; in this series index t holds ᾱ_t (index 0 holds ᾱ_0 = 1)":
                ab_prev.sqrt() * x0 + (1 - ab_prev).sqrt() * eps,
            f"at t = {t} the noise enters with a minus sign; eq. 2 adds √(1 − ᾱ_t) ε":
                ab[t].sqrt() * x0 - (1 - ab[t]).sqrt() * eps,
        }, lambda: f"at t = {t} your x_t differs from eq. 2 with the given ε by up to {(mine - expected).abs().max():.3g} "
                   f"(matching statistics are not enough: every value must match); {compared}")
    return f"eq. 2 exact at t = 1, {max(1, s.T // 5)} and {s.T}; {compared}"


@exercise
def check_reverse_kernel(reverse_kernel, sched, m: float = 3.0, p: float = 0.5):
    """Exercise 01.2: ``reverse_kernel(sched, m, p, x_t, t)`` must return (mean, var) of q(x_{t−1} | x_t)
    for data N(m, p²).

    Expected values by conditioning the joint Gaussian of (x_{t−1}, x_t): the marginal variances
    come from the recursion s_t² = α_t s_{t−1}² + β_t, the covariance is √α_t s_{t−1}²."""
    s = _check_schedule(sched)
    mu, var = [m], [p ** 2]
    for t in range(1, s.T + 1):
        mu.append(math.sqrt(s.alpha[t]) * mu[-1])
        var.append(s.alpha[t].item() * var[-1] + s.beta[t].item())
    x_t = torch.linspace(-2.0, 4.0, 7, dtype=torch.float64)
    ab = alpha_bar_by_hand(s)
    for t in dict.fromkeys((s.T // 2, s.T, 1)):      # t = 1 last: there several slips coincide (β̃_1 = 0, s_0² = p²)
        out = call(reverse_kernel, s, m, p, x_t, t)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise Wrong(f"reverse_kernel must return a pair (mean, var), got {type(out).__name__}")
        mean, v = tensor(out[0], f"the mean at t = {t}", x_t.shape), tensor(out[1], f"the variance at t = {t}")
        if v.numel() > 1:
            raise Wrong(f"the variance at t = {t} does not depend on x_t: return one number, got shape {tuple(v.shape)}")
        v = v.item()
        cov = math.sqrt(s.alpha[t]) * var[t - 1]
        exp_mean, exp_var = mu[t - 1] + cov / var[t] * (x_t - mu[t]), var[t - 1] - cov ** 2 / var[t]
        if not close(mean, exp_mean):
            report_mean = s.posterior_coef_xt[t] * x_t + s.posterior_coef_x0[t] * m
            diagnose(mean, {
                f"at t = {t} your mean is eq. 4 with x_0 replaced by m (the report's eq. 6); it ignores "
                f"how x_t informs x_0. Condition the Gaussian pair (x_{{t−1}}, x_t) instead": report_mean,
            }, f"at t = {t}, x_t = {x_t[0]:.1f} your mean is {mean[0]:.4f}, expected {exp_mean[0]:.4f}; "
               f"it should be μ_{{t−1}} + √α_t (s²_{{t−1}}/s²_t)(x_t − μ_t)")
        if not abs(v - exp_var) <= ATOL:
            tilde = ((1 - ab[t - 1]) / (1 - ab[t]) * s.beta[t]).item()
            diagnose(v, {
                f"at t = {t} your variance is β̃_t of eq. 5, the spread when x_0 is known; "
                f"without x_0 it is larger, β_t s²_{{t−1}}/s²_t": tilde,
                f"at t = {t} your variance is β̃_t + p², the report's eq. 7, which notebook 01 shows is wrong": tilde + p ** 2,
                f"at t = {t} you returned the standard deviation; return the variance": math.sqrt(exp_var),
                f"at t = {t} your variance is s²_{{t−1}}, the marginal variance of x_{{t−1}}; condition on x_t: "
                f"s²_{{t−1}} − cov²/s²_t": var[t - 1],
            }, f"at t = {t} your variance is {v:.5f}, expected β_t s²_{{t−1}}/s²_t = {exp_var:.5f}")
    return "mean and variance match the exact reverse kernel at t = 1, T/2 and T"


# --- notebook 02: learning 2D shapes -------------------------------------------------------


class Probe(torch.nn.Module):
    """A fixed stand-in for the network, output 0.5·x_t + t/T, that records the t it was given."""

    def __init__(self, T: int):
        super().__init__()
        self.T, self.seen_t = T, []

    def forward(self, x, t):
        self.seen_t.append(t)
        return 0.5 * x + torch.as_tensor(t, dtype=x.dtype).reshape(-1, 1) / self.T


@exercise
def check_eps_loss(eps_loss, sched, shape: str = "circle", n: int = 64):
    """Exercise 02.1: ``eps_loss(model, sched, x0, t, eps)`` must form x_t by eq. 2 and return the
    mean squared error between model(x_t, t) and ε, over points and coordinates."""
    s, gen = _check_schedule(sched), torch.Generator().manual_seed(2)
    x0 = torch.as_tensor(data.load_shape(shape)[:n], dtype=torch.float64)
    t = torch.randint(1, s.T + 1, (n,), generator=gen)
    eps = torch.randn(x0.shape, generator=gen, dtype=torch.float64)
    probe = Probe(s.T)
    loss = tensor(same_twice(eps_loss, (probe, s, x0, t, eps), "eps_loss", "t and eps"), "the loss", ())
    if not probe.seen_t:
        raise Wrong("eps_loss never called the model; the loss compares model(x_t, t) with ε")
    seen = torch.as_tensor(probe.seen_t[-1]).flatten()
    if not seen.is_floating_point() and len(seen.unique()) == 1 and seen[0].item() in t.tolist():
        raise Wrong(f"the model got one t ({seen[0].item()}) for the whole batch; each point has its own t: pass the tensor t")
    if not seen.is_floating_point() and torch.equal(seen.long(), t - 1):
        raise Wrong("the model got t − 1 for each point; give it the t the point was noised to")
    if not torch.equal(seen.long(), t):
        raise Wrong("the model was not given the integer t of each point; call model(x_t, t) with the t passed in")
    ab = alpha_bar_by_hand(s)[t].reshape(-1, 1)
    out = lambda x_t: 0.5 * x_t + t.reshape(-1, 1) / s.T
    x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
    expected = ((out(x_t) - eps) ** 2).mean()
    if close(loss, expected):
        return f"{expected:.4f}: x_t from eq. 2 and the mean squared error to ε, as helpers.training.diffusion_loss forms them"
    ab_prev, ab_first = alpha_bar_by_hand(s)[t - 1].reshape(-1, 1), alpha_bar_by_hand(s)[t[0]]
    diagnose(loss, {
        "you compared the output with x_0; the ε-prediction loss compares it with the noise ε": ((out(x_t) - x0) ** 2).mean(),
        "x_t used ᾱ at index t − 1; in this series index t holds ᾱ_t":
            ((out(ab_prev.sqrt() * x0 + (1 - ab_prev).sqrt() * eps) - eps) ** 2).mean(),
        "x_t used the first point's t for every point; index sched.alpha_bar with the whole tensor t":
            ((out(ab_first.sqrt() * x0 + (1 - ab_first).sqrt() * eps) - eps) ** 2).mean(),
        "the noise enters x_t with a minus sign; eq. 2 adds √(1 − ᾱ_t) ε":
            ((out(ab.sqrt() * x0 - (1 - ab).sqrt() * eps) - eps) ** 2).mean(),
        "x_t has no noise in it; eq. 2 adds √(1 − ᾱ_t) ε to √ᾱ_t x_0": ((out(ab.sqrt() * x0) - eps) ** 2).mean(),
        "the model was given x_0; give it the noised x_t of eq. 2": ((out(x0) - eps) ** 2).mean(),
        "x_t used ᾱ_t and 1 − ᾱ_t where eq. 2 has their square roots":
            ((out(ab * x0 + (1 - ab) * eps) - eps) ** 2).mean(),
        "you summed the squared errors; the loss is their mean": ((out(x_t) - eps) ** 2).sum(),
        "you summed over the 2 coordinates and averaged over points; average over both (2× smaller)":
            ((out(x_t) - eps) ** 2).sum(1).mean(),
        "that is the mean absolute error (an L1 loss); the ε-prediction loss is the mean squared error":
            (out(x_t) - eps).abs().mean(),
    }, f"your loss is {loss:.4f}, expected {expected:.4f}")


@exercise
def check_ancestral_step(ancestral_step, sched):
    """Exercise 02.2: ``ancestral_step(sched, x_t, t, eps_hat, z)`` must return
    x_{t−1} = (x_t − β_t/√(1 − ᾱ_t) ε̂)/√α_t + σ_t z with σ_t² = β̃_t (eq. 5), and no noise at t = 1."""
    s, gen = _check_schedule(sched), torch.Generator().manual_seed(3)
    ab = alpha_bar_by_hand(s)
    for t in sorted({s.T, s.T // 2, 1}, reverse=True):
        x_t, eps_hat, z = (torch.randn(5, 2, generator=gen, dtype=torch.float64) for _ in range(3))
        mine = tensor(same_twice(ancestral_step, (s, x_t, t, eps_hat, z), "ancestral_step", "z"), f"x_{{t−1}} at t = {t}", x_t.shape)
        beta, alpha = s.beta[t].item(), 1 - s.beta[t].item()
        mean = (x_t - beta / math.sqrt(1 - ab[t]) * eps_hat) / math.sqrt(alpha)
        sigma = math.sqrt((1 - ab[t - 1]) / (1 - ab[t]) * beta) if t > 1 else 0.0
        if close(mine, mean + sigma * z):
            continue
        misprint = (x_t - beta / math.sqrt(1 - ab[t]) * eps_hat) / math.sqrt(ab[t])
        slips = {
            f"at t = {t} you divided by √ᾱ_t, the misprint of the report's eq. 8; the prefactor is 1/√α_t "
            f"(Ho et al. 2020, eq. 11)": misprint + sigma * z,
            f"at t = {t} you added no noise; x_{{t−1}} = mean + σ_t z with σ_t² = β̃_t": mean,
            f"at t = {t} your noise has σ_t² = β_t, Ho et al.'s other choice: a valid sampler too (notebook 01's bound "
            f"table compares the two), but this exercise asks for β̃_t (eq. 5), the variance notebooks 02–04 sample with, "
            f"so that your step can replace helpers.diffusion's":
                mean + math.sqrt(beta) * z,
            f"at t = {t} you scaled z by the variance β̃_t; scale it by the standard deviation σ_t = √β̃_t":
                mean + sigma ** 2 * z,
            f"at t = {t} the predicted noise is added; the mean subtracts β_t/√(1 − ᾱ_t) ε̂":
                (x_t + beta / math.sqrt(1 - ab[t]) * eps_hat) / math.sqrt(alpha) + sigma * z,
            f"at t = {t} the noise coefficient of your mean is √(1 − ᾱ_t), which is β_t/√(1 − ᾱ_t) with 1 − ᾱ_t in place "
            f"of β_t; the mean subtracts β_t/√(1 − ᾱ_t) ε̂":
                (x_t - math.sqrt(1 - ab[t]) * eps_hat) / math.sqrt(alpha) + sigma * z,
            f"at t = {t} you read ᾱ at index t − 1 in √(1 − ᾱ_t); in this series index t holds ᾱ_t":
                (x_t - beta / math.sqrt(1 - ab[t - 1]) * eps_hat) / math.sqrt(alpha) + sigma * z,
            f"at t = {t} your noise has the variance of step t − 1 (β̃_{{t−1}}, index t − 1); step t adds σ_t² = β̃_t, "
            f"at index t": mean + math.sqrt(s.posterior_variance[t - 1].item()) * z,
        } if t > 1 else {
            "at t = 1 the step returns the mean: no noise is added on the way to x_0": mean + math.sqrt(beta) * z,
        }
        diagnose(mine, slips, f"at t = {t} your x_{{t−1}} differs from the expected value by up to "
                              f"{(mine - mean - sigma * z).abs().max():.3g}")
    return f"one reverse step of eq. 8 (with 1/√α_t) and σ_t² = β̃_t, checked at t = {s.T}, {s.T // 2} and 1"


# --- notebook 03: stars --------------------------------------------------------------------


def star_profiles(arms=(3, 5, 6, 7, 8, 10, 12), bins: int = 128, jitter: float = 0.01, seed: int = 3):
    """Radial profiles (m, bins) of jittered stars with known arm counts: the given ``arms``
    (:func:`helpers.starsets.stars_with_arms`), then 16 stars drawn like the training data (5–8 arms).
    Returns (profiles as numpy, arm counts)."""
    drawn, drawn_params = data.star_dataset(16, jitter=jitter, seed=seed)
    points = np.concatenate([starsets.stars_with_arms(arms, seed, 1024, jitter), drawn])
    return radial.encode(points, bins)[1].numpy(), np.concatenate([np.asarray(arms, dtype=np.int64), drawn_params["arms"]])


def tip_at_ends(profiles: np.ndarray, arms: np.ndarray, within: float = 2.0) -> np.ndarray:
    """Whether each star's profile (m, K) has a tip within ``within`` samples of the place where the array wraps,
    between index K − 1 and index 0 (position −½): the phase of the profile's a-th harmonic puts the tips at
    j = K(n − arg F_a/2π)/a."""
    K = profiles.shape[1]
    spectrum = np.fft.rfft(profiles - profiles.mean(1, keepdims=True), axis=1)
    phase = np.angle(spectrum[np.arange(len(arms)), arms])
    period = K / arms
    offset = ((-phase / (2 * np.pi)) * period + 0.5) % period     # first tip, in samples from the wrap point
    return np.minimum(offset, period - offset) <= within


@exercise
def check_count_arms(count_arms):
    """Exercise 03.1: ``count_arms(profile)`` must return the number of arms of the star whose radial
    profile r_k (K angles, :func:`helpers.radial.encode`) is given. The truth is the arm count each
    test star was generated with: 3–12 arms, jitter as in the data."""
    profiles, truth = star_profiles()
    counts = [call(count_arms, profile.copy()) for profile in profiles]
    try:
        counts = np.array([int(c) for c in counts])
    except (TypeError, ValueError):
        raise Wrong(f"count_arms must return an integer, got {counts[0]!r}") from None
    wrong = counts != truth
    if not wrong.any():
        return f"all {len(truth)} stars counted right ({sorted(set(truth.tolist()))} arms)"
    K = profiles.shape[1]
    if (counts == K - truth).any():
        raise Wrong(f"you returned K − a for {(counts == K - truth).sum()} stars (e.g. {K - truth[counts == K - truth][0]} for "
                    f"{truth[counts == K - truth][0]} arms): the full FFT of a real profile is mirrored, |F_k| = |F_(K−k)|, "
                    f"so search the frequencies 1..K/2 only (np.fft.rfft)")
    if (counts == 2 * truth).all():
        raise Wrong("you counted every corner: each arm has a tip and an inner corner; count the tips only")
    raise Wrong(f"wrong on {wrong.sum()} of {len(truth)} stars: " + "; ".join(arm_count_slips(profiles, truth, counts)))


def arm_count_slips(profiles: np.ndarray, truth: np.ndarray, counts: np.ndarray) -> list[str]:
    """One diagnosis per kind of miscount among the stars (profiles (m, K), true arm counts, the reader's counts)."""
    def listed(mask):
        return ", ".join(f"{t} arms counted {c}" for t, c in list(zip(truth[mask], counts[mask]))[:3])
    wrong, ends = counts != truth, tip_at_ends(profiles, truth)
    kinds = {
        "twice the arms": (wrong & (counts == 2 * truth),
                           "each inner corner was counted as a tip: along a straight edge r(θ) dips below both of its ends, "
                           "so an inner corner can be a small local maximum; count only the peaks that rise above the profile's mean"),
        "a few too many": (wrong & (counts > truth) & (counts < 2 * truth),
                           "a small bump that is not a tip (from the jitter or at an inner corner) was counted: ask each peak to "
                           "stand out from its surroundings (a minimum prominence), or take the strongest Fourier frequency"),
        "far too many": (wrong & (counts > 2 * truth),
                         "the jitter makes small bumps; smooth the profile first, or take its strongest Fourier frequency"),
        "too few, a tip at the ends": (wrong & (counts < truth) & (counts > 0) & ends,
                                       "the profile is periodic, so a tip cut in two by the ends of the array is one tip: "
                                       "compare the ends with each other (np.roll)"),
        "no arms at all": (wrong & (counts == 0),
                           "the strongest frequency of the spectrum is the constant term (frequency 0, the mean radius): "
                           "subtract the mean or start the search at frequency 1"),
        "too few": (wrong & (counts < truth) & (counts > 0) & ~ends,
                    "a tip was missed: a threshold or smoothing that is too strong flattens a short arm"),
    }
    return [f"{mask.sum()} with {kind} ({listed(mask)}): {why}" for kind, (mask, why) in kinds.items() if mask.any()]


@exercise
def check_star_chamfer(star_chamfer, seed: int = 4):
    """Exercise 03.2: ``star_chamfer(a, b)`` for point sets a (n, 2), b (m, 2) must return the stars'
    Chamfer distance, mean_a min_b |a − b|² + mean_b min_a |a − b|² (squared, summed both ways).
    Checked against all pairwise distances, on two stars of different sizes."""
    pair = data.star_dataset(2, seed=seed)[0].astype(np.float64)
    a, b = pair[0, ::8], pair[1, ::5]                       # 128 and 205 points
    d = np.sqrt(((a[:, None] - b[None]) ** 2).sum(-1))        # (n, m) distances
    ab, ba = d.min(1), d.min(0)
    mine = number(call(star_chamfer, a.copy(), b.copy()), "star_chamfer(a, b)")
    expected = (ab ** 2).mean() + (ba ** 2).mean()
    if abs(mine - expected) <= ATOL:
        return f"{expected:.5f}, the Chamfer distance of the stars (squared, summed both ways; notebook 03)"
    diagnose(mine, {
        "that is the 2D shapes' Chamfer distance of notebook 02 (unsquared, averaged both ways); "
        "the stars use squared distances, summed over the two directions": (ab.mean() + ba.mean()) / 2,
        "use squared nearest-neighbour distances": ab.mean() + ba.mean(),
        "sum the two directions instead of averaging them": ((ab ** 2).mean() + (ba ** 2).mean()) / 2,
        "you took one direction only; add the mean over b of the squared distance to the nearest point of a":
            (ab ** 2).mean(),
        "you took one direction only; add the mean over a of the squared distance to the nearest point of b":
            (ba ** 2).mean(),
        "take the mean over points, not the sum": (ab ** 2).sum() + (ba ** 2).sum(),
    }, f"your distance is {mine:.5f}, expected {expected:.5f}")


# --- notebook 04: noise schedules ----------------------------------------------------------


def linear_alpha_bar_T(T: int, beta_1: float, beta_T: float) -> float:
    """ᾱ_T of the linear schedule β_1 → β_T over T steps, as a product of 1 − β_t (float64)."""
    return float(np.prod(1 - np.linspace(beta_1, beta_T, T)))


@exercise
def check_steps_to_noise(T_needed, beta_1: float = 1e-4, beta_T: float = 0.02, level: float = 0.01):
    """Exercise 04.1: the smallest T at which the linear schedule β_1 → β_T reaches √ᾱ_T ≤ ``level``."""
    answer = number(T_needed, "T_needed")
    if answer != int(answer) or answer < 1:
        raise Wrong(f"T counts steps: give a positive integer, got {T_needed!r}")
    first_below = lambda test: next(T for T in range(1, 100_000) if test(T))
    exact = first_below(lambda T: math.sqrt(linear_alpha_bar_T(T, beta_1, beta_T)) <= level)
    answer = int(answer)
    if answer == exact:
        return (f"T = {exact}: √ᾱ_T = {distinct(math.sqrt(linear_alpha_bar_T(exact, beta_1, beta_T)), level)} "
                f"(at T = {exact - 1} it is {distinct(math.sqrt(linear_alpha_bar_T(exact - 1, beta_1, beta_T)), level)})")
    if answer == first_below(lambda T: linear_alpha_bar_T(T, beta_1, beta_T) <= level):
        raise Wrong(f"at T = {answer} ᾱ_T reaches {level}; the question is about √ᾱ_T ≤ {level}, i.e. ᾱ_T ≤ {level ** 2:g}")
    if answer == first_below(lambda T: math.exp(-T * (beta_1 + beta_T) / 4) <= level):
        raise Wrong(f"T = {answer} comes from ᾱ_T ≈ exp(−Σβ_t), which drops the −½Σβ_t² term; "
                    f"multiply out ∏(1 − β_t) instead")
    value = math.sqrt(linear_alpha_bar_T(answer, beta_1, beta_T))
    if value > level:
        raise Wrong(f"at T = {answer} the schedule still has √ᾱ_T = {distinct(value, level)} > {level}: more steps are needed")
    raise Wrong(f"at T = {answer}, √ᾱ_T = {distinct(value, level)} ≤ {level}, but a smaller T gets there too: find the smallest")


@exercise
def check_ddim_step(ddim_step, sched):
    """Exercise 04.2: ``ddim_step(sched, x_t, t, t_prev, eps_hat)`` must return the deterministic DDIM
    step (η = 0) x_{t'} = √ᾱ_{t'} x̂_0 + √(1 − ᾱ_{t'}) ε̂ with x̂_0 = (x_t − √(1 − ᾱ_t) ε̂)/√ᾱ_t."""
    s, gen = _check_schedule(sched), torch.Generator().manual_seed(5)
    ab = alpha_bar_by_hand(s)
    for t, t_prev in ((s.T, 3 * s.T // 4), (s.T // 4, s.T // 5), (s.T // 20, 0)):
        x_t, eps_hat = (torch.randn(6, 2, generator=gen, dtype=torch.float64) for _ in range(2))
        mine, again = (tensor(call(ddim_step, s, x_t, t, t_prev, eps_hat), f"the step {t} → {t_prev}", x_t.shape)
                       for _ in range(2))
        if not torch.equal(mine, again):
            raise Wrong("two calls with the same input gave different results: DDIM with η = 0 adds no noise")
        x0 = (x_t - (1 - ab[t]).sqrt() * eps_hat) / ab[t].sqrt()
        expected = ab[t_prev].sqrt() * x0 + (1 - ab[t_prev]).sqrt() * eps_hat
        if close(mine, expected):
            continue
        a = s.alpha
        diagnose(mine, {
            f"at {t} → {t_prev} you stepped to t − 1; DDIM jumps straight to the given t_prev":
                ab[t - 1].sqrt() * x0 + (1 - ab[t - 1]).sqrt() * eps_hat,
            f"at {t} → {t_prev} you used α (one step) where DDIM needs the cumulative ᾱ":
                a[t_prev].sqrt() * (x_t - (1 - a[t]).sqrt() * eps_hat) / a[t].sqrt() + (1 - a[t_prev]).sqrt() * eps_hat,
            f"at {t} → {t_prev} you returned x̂_0; the step adds back √(1 − ᾱ_t') ε̂ and scales x̂_0 by √ᾱ_t'": x0,
            f"at {t} → {t_prev} you returned √ᾱ_t' x̂_0 alone; DDIM adds back the predicted noise, + √(1 − ᾱ_t') ε̂":
                ab[t_prev].sqrt() * x0,
            f"at {t} → {t_prev} you returned the ancestral sampler's mean μ̃_t, one DDPM step without noise; DDIM goes "
            "through x̂_0 to t' directly": (x_t - s.beta[t] / (1 - ab[t]).sqrt() * eps_hat) / a[t].sqrt(),
        }, f"at {t} → {t_prev} your x_t' differs from the expected value by up to {(mine - expected).abs().max():.3g}")
    return f"deterministic DDIM steps {s.T} → {3 * s.T // 4}, {s.T // 4} → {s.T // 5} and {s.T // 20} → 0 (the last returns x̂_0)"


@exercise
def check_matching_constant_beta(constant_beta, T: int = 200, beta_1: float = 1e-4, beta_T: float = 0.02):
    """Exercise 04.3: the constant β whose schedule ends at the same ᾱ_T as the linear β_1 → β_T over
    T steps: (1 − β)^T = ∏(1 − β_t), to four significant figures (or more)."""
    answer = number(constant_beta, "constant_beta")
    target = linear_alpha_bar_T(T, beta_1, beta_T)
    expected = 1 - target ** (1 / T)
    if significant_figures(answer, expected, 4):
        return f"β = {expected:.6f}: (1 − β)^{T} = {target:.5f}, the linear schedule's ᾱ_T (four significant figures asked)"
    if abs(answer - (beta_1 + beta_T) / 2) <= 1e-9 or answer == 0.01:
        raise Wrong(f"β = {answer:g} gives (nearly) the same Σβ_t as the linear schedule, so ᾱ_T agrees to first order "
                    f"only: (1 − β)^{T} = {(1 - answer) ** T:.5f} against {target:.5f}; solve (1 − β)^T = ᾱ_T")
    if significant_figures(answer, target, 3):
        raise Wrong(f"{answer:g} is ᾱ_T itself, the product the two schedules must share; the exercise asks for the "
                    f"constant β with (1 − β)^{T} = ᾱ_T")
    if not 0 < answer < 1:
        raise Wrong(f"β must lie in (0, 1), got {answer:g}")
    raise Wrong(f"(1 − β)^{T} = {(1 - answer) ** T:.5f} for your β, but the linear schedule ends at ᾱ_T = {target:.5f} "
                f"(four significant figures of β are asked)")


# --- explore: predict, change one thing, measure (one per notebook) -----------------------------


def side_of(value: float, reference: float, se: float, z: float = 3.0) -> str:
    """"above" or "below" ``reference`` when ``value`` is more than z standard errors away, else "the same"."""
    if abs(value - reference) <= z * se:
        return "the same"
    return "above" if value > reference else "below"


def nearest(value: tuple, references: dict, z: float = 2.0) -> str:
    """The label of the reference {label: (mean, se)} nearest to ``value = (mean, se)``, or "too close to call".

    With v between the two nearest references r₁ and r₂, d = |v − r₂| − |v − r₁| has standard error
    √(4 se_v² + se₁² + se₂²); a label is given only when |d| exceeds z of them."""
    (v, se_v), ranked = value, sorted(references, key=lambda label: abs(value[0] - references[label][0]))
    if len(ranked) > 1:
        (r1, se1), (r2, se2) = references[ranked[0]], references[ranked[1]]
        if abs(abs(v - r2) - abs(v - r1)) <= z * (4 * se_v ** 2 + se1 ** 2 + se2 ** 2) ** 0.5:
            return "too close to call"
    return ranked[0]


@exercise
def check_prediction(prediction, options, truth: str, evidence: str, name: str = "prediction"):
    """An explore exercise: ``prediction`` must be one of ``options``; it is compared with ``truth``, the
    label the measurement gave (:func:`side_of`, :func:`nearest`), and the ``evidence`` is shown either way."""
    if prediction is None:
        raise NotAttempted(f"{name} is None; set it to one of {list(options)} before you run the cell")
    if prediction not in options:
        raise Wrong(f"{name} must be one of {list(options)}, got {prediction!r}")
    if truth not in options:
        raise Undecided(f"the measurement cannot decide at this size ({truth}), so your prediction is neither confirmed "
                        f"nor refuted; measure more (more sample sets) or change the setting: {evidence}")
    if prediction != truth:
        raise Wrong(f"you predicted {prediction!r}, the measurement says {truth!r}: {evidence}")
    return f"{truth}, as you predicted: {evidence}"
