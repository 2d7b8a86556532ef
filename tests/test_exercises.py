"""The exercise checks: every solution passes, every unfilled stub fails with "not attempted", and
the common slips get the hint that names them."""
import inspect
import os

import numpy as np
import pytest
import torch

from helpers import exercises as ex
from helpers import schedules
from helpers.runtime import ROOT
from solutions import ch01, ch02, ch03, ch04

SCHED_01 = schedules.linear(50, 0.02, 0.3)      # notebook 01's schedule
SCHED_02 = schedules.linear(200, 1e-4, 0.02)    # notebooks 02 and 04


def stub_forward_jump(sched, x0, t, eps):
    ...


def stub_reverse_kernel(sched, m, p, x_t, t):
    ...


def stub_eps_loss(model, sched, x0, t, eps):
    ...


def stub_ancestral_step(sched, x_t, t, eps_hat, z):
    ...


def stub_count_arms(profile):
    ...


def stub_star_chamfer(a, b):
    ...


def stub_ddim_step(sched, x_t, t, t_prev, eps_hat):
    ...


# (check, the solution's answer, an unfilled stub, the check's other arguments)
EXERCISES = {
    "01.1": (ex.check_forward_jump, ch01.forward_jump, stub_forward_jump, (SCHED_01,)),
    "01.2": (ex.check_reverse_kernel, ch01.reverse_kernel, stub_reverse_kernel, (SCHED_01,)),
    "02.1": (ex.check_eps_loss, ch02.eps_loss, stub_eps_loss, (SCHED_02,)),
    "02.2": (ex.check_ancestral_step, ch02.ancestral_step, stub_ancestral_step, (SCHED_02,)),
    "03.1": (ex.check_count_arms, ch03.count_arms, stub_count_arms, ()),
    "03.2": (ex.check_star_chamfer, ch03.star_chamfer, stub_star_chamfer, ()),
    "04.1": (ex.check_steps_to_noise, ch04.smallest_T(), None, ()),
    "04.2": (ex.check_ddim_step, ch04.ddim_step, stub_ddim_step, (SCHED_02,)),
    "04.3": (ex.check_matching_constant_beta, ch04.matching_constant_beta(), None, ()),
}


@pytest.mark.parametrize("name", EXERCISES)
def test_solution_passes(name):
    check, solution, _, args = EXERCISES[name]
    feedback = check(solution, *args)
    assert feedback, feedback
    assert feedback.status == "correct" and repr(feedback).startswith("Correct: ")


@pytest.mark.parametrize("name", EXERCISES)
def test_unfilled_stub_says_not_attempted(name):
    check, _, stub, args = EXERCISES[name]
    feedback = check(stub, *args)
    assert not feedback
    assert feedback.status == "not attempted"
    assert ("returned None" in feedback.message and "in place of the `...`" in feedback.message) \
        or "is None; set it to your answer" in feedback.message, feedback.message


@pytest.mark.parametrize("name", [n for n, e in EXERCISES.items() if callable(e[1])])
def test_an_error_in_the_answer_becomes_feedback(name):
    check, _, _, args = EXERCISES[name]

    def broken(*_):
        raise KeyError("oops")
    feedback = check(broken, *args)
    assert feedback.status == "wrong" and "broken raised KeyError" in feedback.message


def test_checks_never_use_the_solutions():
    source = inspect.getsource(ex)
    assert "solutions" not in source.replace("Solutions: ``solutions/chNN.py``", "")


# --- the slips each check names ------------------------------------------------------------


def hint(check, answer, *args):
    feedback = check(answer, *args)
    assert feedback.status == "wrong", feedback
    return feedback.message


def test_forward_jump_slips():
    no_roots = lambda s, x0, t, eps: s.alpha_bar[t] * x0 + (1 - s.alpha_bar[t]) * eps
    one_step = lambda s, x0, t, eps: s.alpha[t].sqrt() * x0 + s.beta[t].sqrt() * eps
    off_by_one = lambda s, x0, t, eps: s.alpha_bar[t - 1].sqrt() * x0 + (1 - s.alpha_bar[t - 1]).sqrt() * eps
    assert "square roots" in hint(ex.check_forward_jump, no_roots, SCHED_01)
    assert "one step of eq. 1" in hint(ex.check_forward_jump, one_step, SCHED_01)
    assert "index t − 1" in hint(ex.check_forward_jump, off_by_one, SCHED_01)
    message = hint(ex.check_forward_jump, lambda s, x0, t, eps: x0 + eps, SCHED_01)
    assert "eq. 1 step by step gives mean" in message     # no named slip: the numbers
    unchanged = hint(ex.check_forward_jump, lambda s, x0, t, eps: x0.clone(), SCHED_01)
    assert "your x_t is x_0 itself: no noise was added" in unchanged and "index t − 1" in unchanged   # both readings at t = 1


def test_forward_jump_shape_is_checked():
    assert "has shape (1,)" in hint(ex.check_forward_jump, lambda s, x0, t, eps: x0[:1], SCHED_01)


def test_reverse_kernel_slips():
    def with_variance(variance):
        return lambda s, m, p, x_t, t: (ch01.reverse_kernel(s, m, p, x_t, t)[0], variance(s, p, t))
    report_mean = lambda s, m, p, x_t, t: (s.posterior_coef_xt[t] * x_t + s.posterior_coef_x0[t] * m, 0.0)
    assert "β̃_t of eq. 5" in hint(ex.check_reverse_kernel, with_variance(lambda s, p, t: s.posterior_variance[t]), SCHED_01)
    assert "report's eq. 7" in hint(ex.check_reverse_kernel,
                                    with_variance(lambda s, p, t: s.posterior_variance[t] + p ** 2), SCHED_01)
    std = with_variance(lambda s, p, t: ch01.reverse_kernel(s, 3.0, p, torch.zeros(1), t)[1] ** 0.5)
    assert "standard deviation" in hint(ex.check_reverse_kernel, std, SCHED_01)
    assert "report's eq. 6" in hint(ex.check_reverse_kernel, report_mean, SCHED_01)
    assert "pair (mean, var)" in hint(ex.check_reverse_kernel, lambda s, m, p, x_t, t: x_t, SCHED_01)


def test_eps_loss_slips():
    def loss(target="eps", roots=True, reduce=torch.mean):
        def eps_loss(model, s, x0, t, eps):
            ab = s.alpha_bar[t].reshape(-1, 1)
            x_t = (ab.sqrt() * x0 + (1 - ab).sqrt() * eps) if roots else (ab * x0 + (1 - ab) * eps)
            return reduce((model(x_t, t) - (eps if target == "eps" else x0)) ** 2)
        return eps_loss
    assert "compared the output with x_0" in hint(ex.check_eps_loss, loss(target="x0"), SCHED_02)
    assert "square roots" in hint(ex.check_eps_loss, loss(roots=False), SCHED_02)
    assert "summed the squared errors" in hint(ex.check_eps_loss, loss(reduce=torch.sum), SCHED_02)
    assert "2 coordinates" in hint(ex.check_eps_loss, loss(reduce=lambda e: e.sum(1).mean()), SCHED_02)
    l1 = lambda m, s, x0, t, eps: (m(s.alpha_bar[t].sqrt()[:, None] * x0 + (1 - s.alpha_bar[t]).sqrt()[:, None] * eps, t) - eps).abs().mean()
    assert "an L1 loss" in hint(ex.check_eps_loss, l1, SCHED_02)
    assert "never called the model" in hint(ex.check_eps_loss, lambda m, s, x0, t, eps: (eps ** 2).mean(), SCHED_02)
    wrong_t = lambda m, s, x0, t, eps: ((m(x0, t / s.T) - eps) ** 2).mean()
    assert "integer t" in hint(ex.check_eps_loss, wrong_t, SCHED_02)


def test_ancestral_step_slips():
    def step(prefactor="alpha", noise="tilde"):
        def ancestral_step(s, x_t, t, eps_hat, z):
            root = s.alpha[t].sqrt() if prefactor == "alpha" else s.alpha_bar[t].sqrt()
            mean = (x_t - s.beta[t] / (1 - s.alpha_bar[t]).sqrt() * eps_hat) / root
            sigma = {"tilde": s.posterior_variance[t], "beta": s.beta[t], "none": 0 * s.beta[t]}[noise].sqrt()
            return mean + sigma * z
        return ancestral_step
    assert "misprint of the report's eq. 8" in hint(ex.check_ancestral_step, step(prefactor="alpha_bar"), SCHED_02)
    assert "added no noise" in hint(ex.check_ancestral_step, step(noise="none"), SCHED_02)
    assert "σ_t² = β_t" in hint(ex.check_ancestral_step, step(noise="beta"), SCHED_02)
    always_noisy = lambda s, x_t, t, eps_hat, z: step()(s, x_t, t, eps_hat, z) + (t == 1) * s.beta[1].sqrt() * z
    assert "no noise is added on the way to x_0" in hint(ex.check_ancestral_step, always_noisy, SCHED_02)


def test_count_arms_slips():
    corners = lambda profile: 2 * ch03.count_arms(profile)
    assert "tip and an inner corner" in hint(ex.check_count_arms, corners)

    def raw_peaks(profile):      # local maxima of the unsmoothed profile: jitter adds bumps
        return int(np.sum((profile > np.roll(profile, 1)) & (profile > np.roll(profile, -1))))
    assert "smooth the profile" in hint(ex.check_count_arms, raw_peaks)
    assert "must return an integer" in hint(ex.check_count_arms, lambda profile: "five")


def test_star_chamfer_slips():
    def chamfer(power, combine):
        def star_chamfer(a, b):
            d = np.sqrt(((a[:, None] - b[None]) ** 2).sum(-1)) ** power
            return combine(d.min(1).mean(), d.min(0).mean())
        return star_chamfer
    assert "2D shapes' Chamfer" in hint(ex.check_star_chamfer, chamfer(1, lambda x, y: (x + y) / 2))
    assert "use squared" in hint(ex.check_star_chamfer, chamfer(1, lambda x, y: x + y))
    assert "sum the two directions" in hint(ex.check_star_chamfer, chamfer(2, lambda x, y: (x + y) / 2))
    assert "one direction only" in hint(ex.check_star_chamfer, chamfer(2, lambda x, y: x))


def test_steps_to_noise_slips():
    assert "√ᾱ_T ≤ 0.01, i.e. ᾱ_T ≤ 0.0001" in hint(ex.check_steps_to_noise, 456)
    assert "exp(−Σβ_t)" in hint(ex.check_steps_to_noise, 917)
    assert "more steps are needed" in hint(ex.check_steps_to_noise, 200)
    assert "find the smallest" in hint(ex.check_steps_to_noise, 1000)
    assert "positive integer" in hint(ex.check_steps_to_noise, 910.5)
    assert "must be a number" in hint(ex.check_steps_to_noise, "many")


def test_ddim_step_slips():
    def to(t_of, cumulative=True):
        def ddim_step(s, x_t, t, t_prev, eps_hat):
            a = s.alpha_bar if cumulative else s.alpha
            x0 = (x_t - (1 - a[t]).sqrt() * eps_hat) / a[t].sqrt()
            target = t_of(t, t_prev)
            return a[target].sqrt() * x0 + (1 - a[target]).sqrt() * eps_hat
        return ddim_step
    assert "stepped to t − 1" in hint(ex.check_ddim_step, to(lambda t, tp: t - 1), SCHED_02)
    assert "used α (one step)" in hint(ex.check_ddim_step, to(lambda t, tp: tp, cumulative=False), SCHED_02)
    noisy = lambda s, x_t, t, t_prev, eps_hat: ch04.ddim_step(s, x_t, t, t_prev, eps_hat) + 0.01 * torch.randn(x_t.shape)
    assert "adds no noise" in hint(ex.check_ddim_step, noisy, SCHED_02)
    assert "returned x̂_0" in hint(ex.check_ddim_step, to(lambda t, tp: 0), SCHED_02)
    no_eps = lambda s, x_t, t, t_prev, eps_hat: (ch04.ddim_step(s, x_t, t, t_prev, eps_hat)         # noqa: E731
                                                 - (1 - s.alpha_bar[t_prev]).sqrt() * eps_hat)
    assert "adds back the predicted noise" in hint(ex.check_ddim_step, no_eps, SCHED_02)
    ddpm_mean = lambda s, x_t, t, t_prev, eps_hat: (x_t - s.beta[t] / (1 - s.alpha_bar[t]).sqrt() * eps_hat) / s.alpha[t].sqrt()  # noqa: E731
    assert "ancestral sampler's mean" in hint(ex.check_ddim_step, ddpm_mean, SCHED_02)


def test_matching_constant_beta_slips():
    assert "first order" in hint(ex.check_matching_constant_beta, 0.01005)
    assert "first order" in hint(ex.check_matching_constant_beta, 0.01)
    assert "(0, 1)" in hint(ex.check_matching_constant_beta, 1.5)
    assert "ᾱ_T itself" in hint(ex.check_matching_constant_beta, ex.linear_alpha_bar_T(200, 1e-4, 0.02))


def test_feedback_reads_as_one_line():
    feedback = ex.check_steps_to_noise(None)
    assert repr(feedback) == "Not attempted: T_needed is None; set it to your answer"
    assert "\n" not in repr(ex.check_forward_jump(ch01.forward_jump, SCHED_01))


def test_check_rejects_a_wrong_schedule_argument():
    with pytest.raises(ValueError, match="sched must be a helpers.schedules.Schedule"):
        ex.check_forward_jump(ch01.forward_jump, 50)


# --- the slips of the teach-first and classroom reviews: each wrong answer and the message it must produce ---


def fresh_noise_jump(s, x0, t, eps):
    """Eq. 2 with noise of its own: the right distribution, not the given ε."""
    ab = s.alpha_bar[t]
    return ab.sqrt() * x0 + (1 - ab).sqrt() * torch.randn(x0.shape, dtype=x0.dtype)


def test_forward_jump_names_fresh_noise_and_a_sign_flip():
    assert "fresh random numbers; use the eps passed in" in hint(ex.check_forward_jump, fresh_noise_jump, SCHED_01)
    minus = lambda s, x0, t, eps: s.alpha_bar[t].sqrt() * x0 - (1 - s.alpha_bar[t]).sqrt() * eps
    assert "minus sign" in hint(ex.check_forward_jump, minus, SCHED_01)
    # a wrong answer whose statistics match must not read like a pass
    assert hint(ex.check_forward_jump, lambda s, x0, t, eps: x0 + eps, SCHED_01).startswith("at t = 1 your x_t differs from eq. 2")


def test_eps_loss_names_index_one_t_sign_and_fresh_noise():
    def loss(ab_of, sign=1.0, t_model=lambda t: t):
        def eps_loss(model, s, x0, t, eps):
            ab = ab_of(s, t).reshape(-1, 1) if torch.as_tensor(ab_of(s, t)).dim() else ab_of(s, t)
            return ((model(ab.sqrt() * x0 + sign * (1 - ab).sqrt() * eps, t_model(t)) - eps) ** 2).mean()
        return eps_loss
    assert "index t − 1" in hint(ex.check_eps_loss, loss(lambda s, t: s.alpha_bar[t - 1]), SCHED_02)
    assert "first point's t for every point" in hint(ex.check_eps_loss, loss(lambda s, t: s.alpha_bar[t[0]]), SCHED_02)
    assert "one t (" in hint(ex.check_eps_loss, loss(lambda s, t: s.alpha_bar[t], t_model=lambda t: t[0].expand(len(t))), SCHED_02)
    assert "minus sign" in hint(ex.check_eps_loss, loss(lambda s, t: s.alpha_bar[t], sign=-1.0), SCHED_02)
    fresh = lambda m, s, x0, t, eps: ch02.eps_loss(m, s, x0, t, torch.randn(eps.shape, dtype=eps.dtype))
    assert "fresh random numbers" in hint(ex.check_eps_loss, fresh, SCHED_02)


def test_ancestral_step_names_variance_for_std_sign_index_and_fresh_noise():
    def step(sign=-1.0, ab_index=lambda t: t, scale=lambda v: v.sqrt()):
        def ancestral_step(s, x_t, t, eps_hat, z):
            mean = (x_t + sign * s.beta[t] / (1 - s.alpha_bar[ab_index(t)]).sqrt() * eps_hat) / s.alpha[t].sqrt()
            return mean + scale(s.posterior_variance[t]) * z
        return ancestral_step
    assert "by the variance β̃_t" in hint(ex.check_ancestral_step, step(scale=lambda v: v), SCHED_02)
    assert "predicted noise is added" in hint(ex.check_ancestral_step, step(sign=1.0), SCHED_02)
    assert "index t − 1" in hint(ex.check_ancestral_step, step(ab_index=lambda t: t - 1), SCHED_02)
    one_minus = lambda s, x_t, t, eps_hat, z: (ch02.ancestral_step(s, x_t, t, eps_hat, z)               # noqa: E731
                                               + (s.beta[t] - (1 - s.alpha_bar[t])) / (1 - s.alpha_bar[t]).sqrt() * eps_hat / s.alpha[t].sqrt())
    assert "1 − ᾱ_t in place of β_t" in hint(ex.check_ancestral_step, one_minus, SCHED_02)
    fresh = lambda s, x_t, t, eps_hat, z: ch02.ancestral_step(s, x_t, t, eps_hat, torch.randn(z.shape, dtype=z.dtype))
    assert "use the z passed in" in hint(ex.check_ancestral_step, fresh, SCHED_02)


def test_ancestral_step_says_why_beta_t_is_not_asked_for():
    beta = lambda s, x_t, t, eps_hat, z: ch02.ancestral_step(s, x_t, t, eps_hat, 0 * z) + (t > 1) * s.beta[t].sqrt() * z
    message = hint(ex.check_ancestral_step, beta, SCHED_02)
    assert "a valid sampler too" in message and "notebooks 02–04 sample with" in message


def smoothed(profile, keep=15):
    spectrum = np.fft.rfft(profile)
    spectrum[keep:] = 0
    return np.fft.irfft(spectrum, n=len(profile))


def test_count_arms_names_the_mirror_peak():
    def full_fft(profile):       # the upper half of a real signal's FFT mirrors the lower
        spectrum, K = np.abs(np.fft.fft(profile - profile.mean())), len(profile)
        return int(K // 2 + spectrum[K // 2:].argmax())
    message = hint(ex.check_count_arms, full_fft)
    assert "mirrored" in message and "125 for 3 arms" in message


def test_count_arms_names_inner_corners_and_bumps_not_jitter():
    def smoothed_peaks(profile):     # smoothed, circular, but every local maximum counts
        p = smoothed(profile)
        return int(np.sum((p > np.roll(p, 1)) & (p > np.roll(p, -1))))
    message = hint(ex.check_count_arms, smoothed_peaks)
    assert "inner corner can be a small local maximum" in message and "minimum prominence" in message
    assert "smooth the profile first" not in message and "cut in two" not in message


def test_count_arms_names_a_tip_cut_by_the_ends_only_where_there_is_one():
    def linear_peaks(profile):       # peaks above the mean, but the ends are never compared with each other
        p = smoothed(profile)
        inner = p[1:-1]
        return int(np.sum((inner > p[:-2]) & (inner > p[2:]) & (inner > p.mean())))
    message = hint(ex.check_count_arms, linear_peaks)
    assert message.startswith("wrong on 1 of 23") and "tip cut in two by the ends" in message
    profiles, truth = ex.star_profiles()
    miscounted = np.array([linear_peaks(p) for p in profiles]) != truth
    assert ex.tip_at_ends(profiles[miscounted], truth[miscounted]).all()
    assert not ex.tip_at_ends(profiles, truth).all()       # the test can tell: most stars have no tip there


def test_steps_to_noise_prints_enough_digits_near_the_threshold():
    message = hint(ex.check_steps_to_noise, 910)
    assert "0.01002 > 0.01" in message and "0.0100 >" not in message


def test_matching_constant_beta_takes_four_significant_figures():
    assert ex.check_matching_constant_beta(0.01007)          # 0.010067 to four significant figures
    assert ex.check_matching_constant_beta(0.0100668)
    assert "four significant figures" in hint(ex.check_matching_constant_beta, 0.0101)
    assert "first order" in hint(ex.check_matching_constant_beta, 0.01005)


def test_side_of_and_nearest_decide_only_beyond_the_noise():
    assert ex.side_of(0.52, 0.5, 0.001) == "above" and ex.side_of(0.44, 0.5, 0.001) == "below"
    assert ex.side_of(0.502, 0.5, 0.001) == "the same"            # 2 se: within 3
    refs = {"epoch 100": (1.30, 0.01), "epoch 300": (1.10, 0.01)}
    assert ex.nearest((1.12, 0.01), refs) == "epoch 300" and ex.nearest((1.28, 0.01), refs) == "epoch 100"
    assert ex.nearest((1.20, 0.01), refs) == "too close to call"
    # the boundary: d = |v − r2| − |v − r1| has se √(4·0.01² + 2·0.01²) = 0.0245; z = 2 needs |d| > 0.049
    assert ex.nearest((1.20 - 0.0240, 0.01), refs) == "too close to call"      # d = 0.048
    assert ex.nearest((1.20 - 0.0250, 0.01), refs) == "epoch 300"              # d = 0.050


def test_check_prediction_feedback():
    options = ("above", "below", "the same")
    assert ex.check_prediction(None, options, "above", "x").status == "not attempted"
    assert "must be one of" in hint(ex.check_prediction, "higher", options, "above", "x")
    assert "you predicted 'below', the measurement says 'above': std 0.517" in hint(ex.check_prediction, "below", options, "above", "std 0.517")
    assert ex.check_prediction("above", options, "above", "std 0.517")
    assert "cannot decide" in repr(ex.check_prediction("epoch 300", ("epoch 100", "epoch 300"), "too close to call", "x"))


def test_an_undecided_measurement_is_neither_right_nor_wrong():
    feedback = ex.check_prediction("later epoch", ("later epoch", "earlier epoch"), "too close to call", "x")
    assert feedback.status == "undecided" and not feedback and "neither confirmed nor refuted" in feedback.message


def test_reverse_kernel_names_the_unconditioned_marginal_variance():
    marginal = lambda s, m, p, x_t, t: (ch01.reverse_kernel(s, m, p, x_t, t)[0],
                                        (s.alpha_bar[t - 1] * p ** 2 + 1 - s.alpha_bar[t - 1]).item())
    assert "marginal variance of x_{t−1}" in hint(ex.check_reverse_kernel, marginal, SCHED_01)


def test_count_arms_names_frequency_zero():
    with_dc = lambda profile: int(np.abs(np.fft.rfft(profile)).argmax())     # the mean radius wins: 0 arms
    assert "frequency 0" in hint(ex.check_count_arms, with_dc)


def test_eps_loss_names_t_minus_one_for_the_model_and_missing_noise():
    t_minus_one = lambda m, s, x0, t, eps: ch02.eps_loss(lambda x, tt: m(x, tt - 1), s, x0, t, eps)
    assert "t − 1" in hint(ex.check_eps_loss, t_minus_one, SCHED_02)
    no_noise = lambda m, s, x0, t, eps: ((m(s.alpha_bar[t].sqrt().reshape(-1, 1) * x0, t) - eps) ** 2).mean()
    assert "no noise" in hint(ex.check_eps_loss, no_noise, SCHED_02)


def printing_last_value(cell: str) -> str:
    """A cell's code with its last expression printed (as the notebook displays it)."""
    import ast
    tree = ast.parse(cell)
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        tree.body[-1] = ast.Expr(ast.Call(ast.Name("print", ast.Load()), [ast.Call(ast.Name("repr", ast.Load()),
                                                                                   [tree.body[-1].value], [])], []))
    return ast.unparse(ast.fix_missing_locations(tree))


@pytest.mark.parametrize("notebook", sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")), ids=lambda p: p.stem)
def test_checked_exercises_need_only_the_first_two_code_cells(notebook):
    """The instructors' page promises that a student can do the checked exercises after running only the parameters
    and the imports: run exactly those cells, then every checked exercise (as shipped: not attempted), in a fresh
    Python process."""
    import json
    import subprocess
    import sys
    cells = ["".join(c["source"]) for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"]
    checked = [c for c in cells if "exercises.check_" in c and "check_prediction" not in c]
    assert len(checked) >= 2, f"{notebook.name}: expected at least two checked exercises"
    script = "\n\n".join(["from IPython.display import display", *cells[:2], *map(printing_last_value, checked)])
    run = subprocess.run([sys.executable, "-c", script], cwd=notebook.parent, capture_output=True, text=True,
                         env={**os.environ, "MPLBACKEND": "Agg"}, timeout=300)
    assert run.returncode == 0, f"{notebook.name}: {run.stderr[-2000:]}"
    assert run.stdout.count("Not attempted") == len(checked), run.stdout


def test_the_model_given_x0_and_the_variance_one_step_off_are_named():
    """Two slips a student review met with only a number for an answer."""
    unnoised = lambda m, s, x0, t, eps: ((m(x0, t) - eps) ** 2).mean()
    assert "the model was given x_0" in hint(ex.check_eps_loss, unnoised, SCHED_02)
    previous = lambda s, x_t, t, eps_hat, z: (ch02.ancestral_step(s, x_t, t, eps_hat, 0 * z)
                                              + s.posterior_variance[t - 1].sqrt() * z)
    assert "variance of step t − 1" in hint(ex.check_ancestral_step, previous, SCHED_02)
