"""The seed verdicts: false-positive rates under the null, power, and Holm against hand-worked cases."""
import numpy as np
import pytest
from scipy import stats

from helpers import verdicts

SIMULATIONS = 20_000


def _false_positive_rate(n, sd_a, sd_b, paired, seed):
    """Share of null simulations (equal means) that a test at LEVEL calls significant; all (sim, n) at once."""
    rng = np.random.default_rng(seed)
    a = rng.normal(1.0, sd_a, (SIMULATIONS, n))
    b = rng.normal(1.0, sd_b, (SIMULATIONS, n))
    if paired:   # a shared run effect, as when both arms come from the same training run
        shared = rng.normal(0.0, 1.0, (SIMULATIONS, 1))
        a, b = a + shared, b + shared
    p = np.array([verdicts.compare(x, y, paired=paired).p for x, y in zip(a[:300], b[:300])])
    p_vectorised = (stats.ttest_rel(a, b, axis=1) if paired else stats.ttest_ind(a, b, axis=1, equal_var=False)).pvalue
    np.testing.assert_allclose(p, p_vectorised[:300], rtol=1e-9)   # compare() is the scipy test, row by row
    return (p_vectorised <= verdicts.LEVEL).mean()


@pytest.mark.parametrize("n", [3, 5])
@pytest.mark.parametrize("sd_a, sd_b", [(1.0, 1.0), (1.0, 0.1), (0.1, 1.0)])
def test_paired_false_positive_rate_is_the_stated_level(n, sd_a, sd_b):
    """Equal means, a run effect shared by both arms: the paired t-test calls a false 'better' at the
    rate LEVEL, within Monte Carlo error (4 standard errors), for equal and unequal spreads."""
    rate = _false_positive_rate(n, sd_a, sd_b, True, seed=n * 10 + 1)
    assert abs(rate - verdicts.LEVEL) <= 4 * np.sqrt(verdicts.LEVEL * (1 - verdicts.LEVEL) / SIMULATIONS)


@pytest.mark.parametrize("n, low, high", [(3, 0.030, 0.065), (5, 0.040, 0.058)])
@pytest.mark.parametrize("sd_a, sd_b", [(1.0, 1.0), (1.0, 0.1), (0.1, 1.0)])
def test_welch_false_positive_rate_is_near_the_stated_level(n, low, high, sd_a, sd_b):
    """Welch's degrees of freedom are an approximation, so its rate is not exactly LEVEL at tiny n:
    measured (20 000 simulations each) 0.037 with equal spreads and 0.058-0.059 with a tenfold ratio at
    n = 3, and 0.045-0.053 at n = 5, the series' seed count. The bounds hold that, against the 8-20 %
    of the rule it replaces (next test)."""
    rate = _false_positive_rate(n, sd_a, sd_b, False, seed=n * 10)
    assert low <= rate <= high


@pytest.mark.parametrize("sd_b, low, high", [(1.0, 0.075, 0.095), (0.1, 0.17, 0.22)])
def test_the_replaced_rule_gap_beyond_summed_sds_fires_far_above_five_percent(sd_b, low, high):
    """The rule the t-tests replace ('better' when the gap exceeds sd_a + sd_b, n = 3) fires about 8 % of
    the time under the null with equal spreads and about 19 % when one spread is ten times smaller."""
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(SIMULATIONS, 3)), rng.normal(0, sd_b, size=(SIMULATIONS, 3))
    rate = (abs(a.mean(1) - b.mean(1)) > a.std(1, ddof=1) + b.std(1, ddof=1)).mean()
    assert low < rate < high


def test_welch_finds_a_real_difference_and_names_the_lower_as_better():
    c = verdicts.compare([1.0, 1.1, 0.9, 1.05, 0.95], [2.0, 2.1, 1.9, 2.05, 1.95], ("A", "B"))
    assert c.p < 1e-5 and c.winner() == "A" and c.test == "Welch"
    assert verdicts.compare([1.0, 1.1, 0.9], [2.0, 2.1, 1.9], ("A", "B"), lower_is_better=False).winner() == "B"


def test_welch_statistic_matches_the_formula_by_hand():
    """a = (1, 2, 3), b = (2, 4, 6, 8): gap −3, se = √(1/3 + 20/3 / 4) = √2, df by Welch–Satterthwaite."""
    c = verdicts.compare([1, 2, 3], [2, 4, 6, 8])
    assert c.gap == pytest.approx(-3.0) and c.se == pytest.approx(np.sqrt(2.0))
    v1, v2 = 1 / 3, (20 / 3) / 4
    df = (v1 + v2) ** 2 / (v1 ** 2 / 2 + v2 ** 2 / 3)
    assert c.p == pytest.approx(2 * stats.t.sf(3 / np.sqrt(2), df))


def test_paired_test_uses_the_differences():
    """Runs that differ a lot from each other but by a constant 0.1 between arms: paired is significant, Welch is not."""
    base = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    a, b = base + 0.1 + np.array([0.01, -0.01, 0.0, 0.005, -0.005]), base
    paired, welch = verdicts.compare(a, b, paired=True), verdicts.compare(a, b)
    assert paired.p < 1e-4 < 0.5 < welch.p
    d = a - b
    assert paired.se == pytest.approx(d.std(ddof=1) / np.sqrt(5))


def test_bad_inputs_name_the_parameter():
    with pytest.raises(ValueError, match="one value of each setting per run"):
        verdicts.compare([1, 2, 3], [1, 2], paired=True)
    with pytest.raises(ValueError, match="at least 2 finite"):
        verdicts.compare([1.0], [1.0, 2.0], names=("EMA", "raw"))
    with pytest.raises(ValueError, match="level must lie in"):
        verdicts.holm([0.01], level=1.5)


def test_holm_against_a_hand_worked_family():
    """p = (0.01, 0.04, 0.03, 0.005), level 0.05, m = 4: sorted 0.005 <= 0.05/4, 0.01 <= 0.05/3, 0.03 > 0.05/2 stops."""
    assert verdicts.holm([0.01, 0.04, 0.03, 0.005]).tolist() == [True, False, False, True]
    assert verdicts.holm([0.2, 0.001]).tolist() == [False, True]
    assert verdicts.holm([0.03, 0.04], level=0.05).tolist() == [False, False]   # 0.03 > 0.025


def test_holm_controls_the_family_wise_error_rate():
    """Eight true nulls tested at once: at least one false rejection in at most LEVEL of the families
    (uncorrected, about 1 − 0.95^8 = 34 %)."""
    rng = np.random.default_rng(3)
    p = rng.uniform(size=(20_000, 8))
    any_holm = np.array([verdicts.holm(row).any() for row in p]).mean()
    assert any_holm <= verdicts.LEVEL + 4 * np.sqrt(0.05 * 0.95 / 20_000)
    assert (p <= verdicts.LEVEL).any(axis=1).mean() > 0.3


def test_decide_words_significance_with_level_and_family():
    family = {"x": verdicts.compare([1, 1.1, 0.9, 1.0, 1.05], [3, 3.1, 2.9, 3.0, 3.05], ("A", "B")),
              "y": verdicts.compare([1, 1.5, 0.5], [1.2, 1.7, 0.7], ("C", "D"))}
    words = verdicts.decide(family)
    assert words["x"].startswith("**A is better**") and "Holm over 2 tests" in words["x"]
    assert words["y"].startswith("not significant at n = 3 seeds") and "in favour of C" in words["y"]


@pytest.mark.parametrize("n, family", [(5, 1), (5, 8), (10, 8)])
def test_detectable_effect_has_the_stated_power_by_simulation(n, family):
    """Differences drawn with mean = the detectable effect (in sd units): the paired test at level/family
    rejects in 80 % of the simulations (within Monte Carlo error), and at half the effect far less often."""
    delta = verdicts.detectable_effect(n, family=family)
    rng = np.random.default_rng(n + family)
    for effect, low, high in ((delta, 0.78, 0.82), (delta / 2, 0.0, 0.5)):
        d = rng.normal(effect, 1.0, (SIMULATIONS, n))
        p = stats.ttest_1samp(d, 0.0, axis=1).pvalue
        assert low <= (p <= verdicts.LEVEL / family).mean() <= high


def test_detectable_effect_at_five_seeds_and_eight_tests_is_about_three_sds():
    """With 5 runs and Holm over 8 tests only differences of about 3 sd of the per-run differences are found 80 % of the time."""
    assert 2.7 < verdicts.detectable_effect(5, family=8) < 3.3
    assert verdicts.detectable_effect(5) < verdicts.detectable_effect(5, family=8)
    with pytest.raises(ValueError, match="n must be"):
        verdicts.detectable_effect(1)


def test_power_sentence_reports_the_detectable_effect_and_the_observed_effects():
    """Hand-computed: pairs with differences (1, 2, 3) have mean 2 and sd 1, an observed effect of 2.0 sd;
    differences (0, 0.5, 1) give 0.5 / 0.5 = 1.0 sd. The detectable effect is the family's at n = 3."""
    family = {"a": verdicts.compare([1.0, 2.0, 3.0], [0.0, 0.0, 0.0], paired=True),
              "b": verdicts.compare([0.0, 0.5, 1.0], [0.0, 0.0, 0.0], paired=True)}
    text = verdicts.power_sentence(family)
    assert f"at least {verdicts.detectable_effect(3, family=2):.1f} standard deviations" in text
    assert "range from 1.0 to 2.0 such standard deviations" in text and "n = 3" in text and "Holm over 2 tests" in text
    with pytest.raises(ValueError, match="paired"):
        verdicts.power_sentence({"w": verdicts.compare([1.0, 2.0, 3.0], [0.0, 1.0, 0.5])})


def test_mean_sd_and_skipped_name_the_single_seed():
    assert verdicts.mean_sd([1.0, 2.0, 3.0]) == "2.000 ± 1.000"
    assert verdicts.mean_sd([0.5], ".2f") == "0.50 (1 seed)"
    assert "has 1" in verdicts.skipped(1) and "at least 2" in verdicts.skipped(1)


def test_a_comparison_without_a_better_direction_names_the_higher_side():
    c = verdicts.compare([0.9, 0.8, 0.85], [0.5, 0.45, 0.52], ("w = 4", "w = 1"), paired=True, lower_is_better=None)
    assert c.winner() == "w = 4"
    assert c.text(True).startswith("**w = 4 is higher** (gap 0.36")
    assert "higher at w = 4;" in c.text(False) and "better" not in c.text(False)


def test_paired_false_positive_rate_under_skewed_differences_is_above_the_level():
    """What the power sentence warns of: centred exponential per-run differences (a heavy right tail, like runs with
    a few runaway points), n = 5: the paired t-test's false-positive rate is well above LEVEL (measured 0.11-0.12)."""
    rng = np.random.default_rng(3)
    d = rng.exponential(1.0, (SIMULATIONS, 5)) - 1.0
    rate = (stats.ttest_1samp(d, 0.0, axis=1).pvalue <= verdicts.LEVEL).mean()
    assert 2 * verdicts.LEVEL <= rate <= 3 * verdicts.LEVEL


def test_below_null_median_is_a_sign_test_with_its_level_and_power():
    """Runs drawn from the null itself: rejected at most at the level (the exact binomial rate at n = 10 is
    11/1024); runs shifted down by one null sd: rejected about half the time (P(9 or 10 of 10 below) with
    Φ(1) = 0.841 each: 0.51), by two: almost always; counts and p by hand."""
    rng = np.random.default_rng(4)
    null = rng.normal(0.0, 1.0, 200)
    same = np.mean([verdicts.below_null_median([(rng.normal(0, 1, 10), null)])[3] for _ in range(4000)])
    assert same <= verdicts.LEVEL + 4 * np.sqrt(verdicts.LEVEL * (1 - verdicts.LEVEL) / 4000)
    one_sd = np.mean([verdicts.below_null_median([(rng.normal(-1, 1, 10), null)])[3] for _ in range(1000)])
    two_sd = np.mean([verdicts.below_null_median([(rng.normal(-2, 1, 10), null)])[3] for _ in range(1000)])
    assert 0.40 <= one_sd <= 0.62 and two_sd > 0.9
    k, n, p, reject = verdicts.below_null_median([([-3, -2, -1, -0.5, 5], np.arange(-10.0, 11.0))])   # null median 0
    assert (k, n, reject) == (4, 5, False) and p == pytest.approx(6 / 32)
    # two groups, each against its own null's median (0 and 100): 4 + 5 of 10 below, p = (10 + 1) / 1024
    k, n, p, reject = verdicts.below_null_median([([-3, -2, -1, -0.5, 5], np.arange(-10.0, 11.0)),
                                                  ([90, 91, 92, 93, 94], np.arange(90.0, 111.0))])
    assert (k, n, reject) == (9, 10, True) and p == pytest.approx(11 / 1024)


def test_folded_keeps_the_summary_visible_and_the_body_intact():
    text = verdicts.folded("3 tests", "* a\n* b")
    assert text.startswith("<details><summary>3 tests</summary>") and "\n\n* a\n* b\n\n" in text and text.endswith("</details>")


def test_rejected_counts_the_verdicts_that_name_a_winner():
    rng = np.random.default_rng(5)
    family = {"big": verdicts.compare(rng.normal(5, 0.1, 5), rng.normal(0, 0.1, 5), paired=True),
              "none": verdicts.compare(rng.normal(0, 1, 5), rng.normal(0, 1, 5), paired=True)}
    words = verdicts.decide(family)
    assert verdicts.rejected(words) == 1 and words["big"].startswith("**") and not words["none"].startswith("**")
