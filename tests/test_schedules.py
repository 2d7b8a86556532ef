import math

import numpy as np
import pytest
import torch

from helpers import schedules as S


ALL = [S.constant(50, 0.02), S.linear(200), S.scaled_linear(200), S.cosine(200),
       S.zero_terminal_snr(S.linear(200)), S.make_schedule("cosine", 100, zero_snr=True)]


@pytest.mark.parametrize("s", ALL, ids=lambda s: s.name)
def test_invariants(s):
    assert s.alpha_bar[0] == 1 and s.beta[0] == 0
    assert bool(((s.beta[1:] > 0) & (s.beta[1:] <= 1)).all())
    assert bool((s.alpha_bar[1:] < s.alpha_bar[:-1]).all())
    # ᾱ_t is the running product of (1 − β_i), recomputed in numpy
    np.testing.assert_allclose(s.alpha_bar.numpy(), np.cumprod(1 - s.beta.numpy()), rtol=1e-12)


def test_linear_endpoints_and_report_terminal_value():
    s = S.linear(200, 1e-4, 0.02)
    assert s.T == 200 and math.isclose(s.beta[1], 1e-4) and math.isclose(s.beta[200], 0.02)
    # log ᾱ_T = Σ log(1 − β_t) ≈ −Σβ_t = −200 · (1e-4 + 0.02) / 2 = −2.01
    by_hand = math.exp(sum(math.log(1 - (1e-4 + (0.02 - 1e-4) * i / 199)) for i in range(200)))
    assert math.isclose(s.alpha_bar[-1].item(), by_hand, rel_tol=1e-9)
    assert 0.35 < math.sqrt(by_hand) < 0.37


def test_scaled_linear_matches_ho_at_reference_T():
    np.testing.assert_allclose(S.scaled_linear(1000).beta, S.linear(1000).beta)
    assert S.scaled_linear(200).alpha_bar[-1].sqrt() < 0.01


def test_cosine_follows_its_closed_form_and_is_clipped():
    T, s_ = 200, 0.008
    f = lambda t: math.cos((t / T + s_) / (1 + s_) * math.pi / 2) ** 2  # noqa: E731
    sched = S.cosine(T)
    for t in (1, 50, 100, 190):  # below the clip ᾱ_t = f(t)/f(0) exactly
        assert math.isclose(sched.alpha_bar[t].item(), f(t) / f(0), rel_tol=1e-9)
    assert math.isclose(sched.beta.max().item(), 0.999)
    assert S.cosine(T, max_beta=0.5).beta.max() <= 0.5


def test_zero_terminal_snr():
    base = S.linear(200)
    z = S.zero_terminal_snr(base)
    assert z.alpha_bar[-1] == 0 and z.beta[-1] == 1 and z.log_snr[-1] == -math.inf
    assert math.isclose(z.alpha_bar[1].item(), base.alpha_bar[1].item(), rel_tol=1e-12)
    # √ᾱ is an affine map of the original √ᾱ (Lin et al., Alg. 1)
    a, b = base.alpha_bar[1:].sqrt().numpy(), z.alpha_bar[1:].sqrt().numpy()
    slope, icept = np.polyfit(a, b, 1)
    np.testing.assert_allclose(slope * a + icept, b, atol=1e-12)


def test_posterior_variance_by_hand():
    s = S.Schedule([0.1, 0.2])            # ᾱ_1 = 0.9, ᾱ_2 = 0.72
    assert s.posterior_variance[1] == 0   # β̃_1 = (1 − ᾱ_0)/(1 − ᾱ_1) β_1 = 0
    assert math.isclose(s.posterior_variance[2].item(), 0.1 / 0.28 * 0.2)
    assert math.isclose(s.posterior_coef_x0[2].item(), math.sqrt(0.9) * 0.2 / 0.28)
    assert math.isclose(s.posterior_coef_xt[2].item(), math.sqrt(0.8) * 0.1 / 0.28)


def test_at_broadcasts_per_sample():
    s = S.Schedule([0.1, 0.2, 0.3])
    x = torch.zeros(3, 4, 2)
    c = s.at(s.beta, torch.tensor([1, 3, 2]), x)
    assert c.shape == (3, 1, 1) and c.dtype == x.dtype
    np.testing.assert_allclose(c.flatten(), [0.1, 0.3, 0.2], rtol=1e-6)


@pytest.mark.parametrize("call, word", [
    (lambda: S.linear(0), "T"), (lambda: S.linear(-3), "T"), (lambda: S.cosine(2.5), "T"),
    (lambda: S.linear(10, 0.0, 0.02), "beta_1"), (lambda: S.linear(10, 1e-4, 1.2), "beta_T"),
    (lambda: S.constant(10, -0.1), "beta"), (lambda: S.Schedule([0.1, 1.5]), "beta"),
    (lambda: S.scaled_linear(10), "beta_T"), (lambda: S.make_schedule("sigmoid", 10), "schedule"),
    (lambda: S.linear(10).at(S.linear(10).beta, 0, torch.zeros(1)), "t"),
    (lambda: S.linear(10).at(S.linear(10).beta, 11, torch.zeros(1)), "t"),
    (lambda: S.linear(10).at(S.linear(10).beta, torch.tensor([1.5]), torch.zeros(1)), "t"),
    (lambda: S.linear(10).at(S.linear(10).beta, torch.tensor([1, 2]), torch.zeros(3, 2)), "t"),
])
def test_bad_input_names_the_parameter(call, word):
    with pytest.raises(ValueError, match=rf"\b{word}\b"):
        call()


def assert_last_step_returns_x0(coef_x0, coef_xt, var):
    """Into t = 0 the posterior must return x_0 itself: ᾱ_0 = 1 gives μ̃_1 = x_0 and β̃_1 = 0."""
    assert math.isclose(float(coef_x0), 1.0, abs_tol=1e-9)
    assert abs(float(coef_xt)) < 1e-9 and abs(float(var)) < 1e-9


def wrapped_last_step(s):
    """The small-implementation bug of notebook 04 ("a wrapped index"): 0-based arrays (ab[i] = ᾱ_{i+1}) and
    ᾱ_{t−1} read as ab[i − 1], which at the last step (i = 0) wraps around to ᾱ_T."""
    ab, beta = s.alpha_bar[1:], s.beta[1:]
    prev = ab[0 - 1]
    coef_x0 = prev.sqrt() * beta[0] / (1 - ab[0])
    coef_xt = (1 - beta[0]).sqrt() * (1 - prev) / (1 - ab[0])
    return coef_x0, coef_xt, (1 - prev) / (1 - ab[0]) * beta[0]


@pytest.mark.parametrize("s", ALL, ids=lambda s: s.name)
def test_last_step_returns_x0_and_the_wrapped_index_would_not(s):
    assert_last_step_returns_x0(s.posterior_coef_x0[1], s.posterior_coef_xt[1], s.posterior_variance[1])
    with pytest.raises(AssertionError):
        assert_last_step_returns_x0(*wrapped_last_step(s))
