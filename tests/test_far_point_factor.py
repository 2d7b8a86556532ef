"""diffusion.far_point_factor against the reverse mean of a constant (bounded) network at a far point."""
import pytest
import torch

from helpers import diffusion as D
from helpers import schedules as S

SCHEDULES = {"linear": S.linear(200), "cosine": S.cosine(200), "scaled linear": S.scaled_linear(200),
             "zero SNR": S.zero_terminal_snr(S.linear(200))}


@pytest.mark.parametrize("name", SCHEDULES)
@pytest.mark.parametrize("prediction, clip", [("eps", None), ("v", None), ("eps", 1.5), ("v", 1.5)])
def test_factor_is_the_ratio_of_the_mean_to_a_far_point_for_any_constant_output(name, prediction, clip):
    s = SCHEDULES[name]
    x = torch.tensor([[3e7, -4e7], [-1e8, 2e7]], dtype=torch.float64)     # |x| >> |output|
    for t in (1, 2, 20, 100, 199, 200):
        if prediction == "eps" and clip is None and s.alpha[t] == 0:
            continue                                                          # 1/sqrt(0): refused by the sampler
        for value in (0.0, 1.0, -7.0):
            out = torch.full_like(x, value)
            mean = D.reverse_mean(s, out, x, t, prediction, clip)
            ratio = (mean / x).flatten().tolist()       # component-wise, so a sign error (mean = -factor x) fails too
            assert ratio == pytest.approx([D.far_point_factor(s, t, prediction, clip)] * 4, rel=1e-6, abs=1e-6)   # the bounded term adds O(|out|/|x|)


@pytest.mark.parametrize("name", SCHEDULES)
def test_v_factor_is_c1_plus_c0_root_alpha_bar_and_clip_factor_is_below_it(name):
    """The identity c₁ + c₀√ᾱ_t = √α_t, from the stored posterior coefficients (eq. 4) and α_t."""
    s = SCHEDULES[name]
    t = torch.arange(1, s.T + 1)
    lhs = s.posterior_coef_xt[t] + s.posterior_coef_x0[t] * s.alpha_bar[t].sqrt()
    torch.testing.assert_close(lhs, s.alpha[t].sqrt(), rtol=1e-12, atol=1e-12)
    clip = torch.tensor([D.far_point_factor(s, int(k), "v", 1.0) for k in t], dtype=torch.float64)
    v = torch.tensor([D.far_point_factor(s, int(k), "v") for k in t], dtype=torch.float64)
    assert ((clip[1:] < v[1:]) | (v[1:] == 0)).all() and clip[0] == 0   # c₁ < √α_t as ᾱ_{t−1} > ᾱ_t; c₁ = 0 at t = 1


def test_eps_factor_by_hand_for_cosine_at_its_clipped_last_step():
    s = S.cosine(200)
    assert D.far_point_factor(s, 200) == pytest.approx(1 / 0.001 ** 0.5)      # β_T = 0.999
    assert D.far_point_factor(s, 200, "v") == pytest.approx(0.001 ** 0.5)
    assert D.far_point_factor(S.zero_terminal_snr(S.linear(200)), 200) == float("inf")
    with pytest.raises(ValueError, match="t must be"):
        D.far_point_factor(s, 0)
