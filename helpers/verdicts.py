"""Verdicts with a known error rate: is setting A better than setting B over training seeds?

A verdict is a two-sample t-test at a stated level (two-sided), chosen by the design:

* **paired** (:func:`compare` with ``paired=True``) when both values of a pair share their luck: the same
  training run (EMA against raw weights of one run; epoch 100 against epoch 300 of one run), or two
  settings trained from the same seed and scored on the same sampling noise and reference sets: the
  test works on the per-run differences d_i = a_i − b_i, t = mean(d) / (sd(d)/√n), n − 1 degrees
  of freedom (Student 1908);
* **Welch** (``paired=False``) when the two settings come from independent runs:
  t = (mean a − mean b) / √(s_a²/n_a + s_b²/n_b) with Welch–Satterthwaite degrees of freedom
  (Welch 1947), which does not assume equal spreads.

When one table issues m verdicts at once, :func:`holm` controls the family-wise error rate (the
chance of at least one false "better" among the m) at the level by Holm's step-down procedure
(Holm 1979). ``tests/test_verdicts.py`` simulates the null (equal means, equal and unequal
spreads, n = 3 and 5) and checks that the paired test's false-positive rate is the stated level within
Monte Carlo error and Welch's close to it (Welch's t is approximate at such small n).
"""
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

LEVEL = 0.05


@dataclass(frozen=True)
class Comparison:
    """One test of A against B: ``gap`` = mean(a) − mean(b), its standard error, the two-sided p-value."""
    names: tuple
    gap: float
    se: float
    p: float
    test: str
    n: int
    lower_is_better: bool | None    # None: neither direction is better; the verdict names the higher one

    def winner(self) -> str:
        """The name of the better setting by the sign of the gap (significant or not); the higher one when
        ``lower_is_better`` is None."""
        if self.lower_is_better is None:
            return self.names[0] if self.gap > 0 else self.names[1]
        return self.names[0] if (self.gap < 0) == self.lower_is_better else self.names[1]

    def text(self, significant: bool, level: float = LEVEL, family: int = 1) -> str:
        """The verdict in words, with the test, n, p and the level (Holm-adjusted when ``family`` > 1)."""
        where = f"{self.test} t-test over n = {self.n} seeds, p = {self.p:.2g}"
        holm_note = f", Holm over {family} tests" if family > 1 else ""
        better, favour = ("is higher", "higher at") if self.lower_is_better is None else ("is better", "in favour of")
        if significant:
            return f"**{self.winner()} {better}** (gap {abs(self.gap):.3g}, se {self.se:.2g}; {where}; significant at {level:.0%}{holm_note})"
        return (f"not significant at n = {self.n} seeds (gap {abs(self.gap):.3g}, se {self.se:.2g}, {favour} {self.winner()}; "
                f"{where}; level {level:.0%}{holm_note})")


def _values(x, name: str) -> np.ndarray:
    """``x`` as a finite 1D float array with at least 2 entries, else a ValueError naming ``name``."""
    x = np.asarray(x, dtype=float)
    if x.ndim != 1 or len(x) < 2 or not np.isfinite(x).all():
        raise ValueError(f"{name} must be a 1D list of at least 2 finite values (one per seed), got {x!r}")
    return x


def compare(a, b, names=("a", "b"), paired: bool = False, lower_is_better: bool | None = True) -> Comparison:
    """Test mean(a) = mean(b) for per-seed values ``a: (n,)``, ``b: (m,)``: paired t (same runs, n = m)
    or Welch t (separate runs). Returns a :class:`Comparison`; decide with :func:`holm`. With
    ``lower_is_better=None`` the verdict says which is higher, not which is better."""
    a, b = _values(a, names[0]), _values(b, names[1])
    if paired:
        if len(a) != len(b):
            raise ValueError(f"a paired test needs one value of each setting per run, got {len(a)} and {len(b)}")
        d = a - b
        se = d.std(ddof=1) / np.sqrt(len(d))
        p = stats.ttest_rel(a, b).pvalue if se > 0 else float(d.mean() == 0)   # no spread: p is 1 or 0
        return Comparison(tuple(names), float(d.mean()), float(se), float(p), "paired", len(a), lower_is_better)
    se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    p = stats.ttest_ind(a, b, equal_var=False).pvalue if se > 0 else float(a.mean() == b.mean())
    return Comparison(tuple(names), float(a.mean() - b.mean()), float(se), float(p), "Welch", min(len(a), len(b)),
                      lower_is_better)


def mean_sd(values, fmt: str = ".3f") -> str:
    """"mean ± sd" of per-seed ``values`` (sample sd), or "mean (1 seed)" when there is no spread to give."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return f"{values.mean():{fmt}} (1 seed)"
    return f"{values.mean():{fmt}} ± {values.std(ddof=1):{fmt}}"


def skipped(n_seeds: int, what: str = "This verdict") -> str:
    """The sentence a notebook prints instead of a verdict when it has fewer than 2 training seeds."""
    return (f"*Skipped:* {what} needs at least 2 training seeds per setting, and this run has {n_seeds}. "
            "A test over one seed would have no spread to measure; the `lab` profile trains one seed, the `report` "
            "profile several.")


def holm(p_values, level: float = LEVEL) -> np.ndarray:
    """Holm's step-down test of m hypotheses: reject the k-th smallest p while p_(j) <= level/(m − j + 1)
    for every j <= k. Returns a boolean array, in the input's order; the family-wise error rate is
    at most ``level`` whatever the dependence between the tests."""
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    passes = p[order] <= level / (len(p) - np.arange(len(p)))
    reject = np.zeros(len(p), dtype=bool)
    reject[order] = np.cumprod(passes).astype(bool)
    return reject


def detectable_effect(n: int, level: float = LEVEL, family: int = 1, power: float = 0.8) -> float:
    """The paired t-test's minimum detectable effect: the true mean difference, in standard deviations of
    the per-run differences, that ``n`` runs detect with probability ``power`` at the strictest Holm
    level ``level / family``.

    With d_i ~ N(δ, 1) the statistic is T = (Z + δ√n) / √(V/(n − 1)), Z ~ N(0, 1), V ~ χ²(n − 1), so
    the two-sided power is E_V[Φ(δ√n − c√(V/(n−1))) + Φ(−δ√n − c√(V/(n−1)))] with c the critical t;
    the expectation is a mean over 4000 evenly spaced quantiles of V. A "not significant" below this
    size says little: the test could not have seen it.
    """
    if not (isinstance(n, int) and n >= 2):
        raise ValueError(f"n must be an integer >= 2, got {n!r}")
    t_crit = stats.t.ppf(1 - level / family / 2, n - 1)
    scale = t_crit * np.sqrt(stats.chi2.ppf((np.arange(4000) + 0.5) / 4000, n - 1) / (n - 1))

    def shortfall(delta):
        shift = delta * np.sqrt(n)
        return np.mean(stats.norm.cdf(shift - scale) + stats.norm.cdf(-shift - scale)) - power
    return float(optimize.brentq(shortfall, 0.0, 1e3))


def power_sentence(comparisons: dict, level: float = LEVEL, power: float = 0.8) -> str:
    """What a family of paired tests could see: :func:`detectable_effect` at its size and n, beside the
    observed effects |mean d| / sd(d) = |gap| / (se·√n) (in the same units)."""
    tests = list(comparisons.values())
    if not tests or any(c.test != "paired" for c in tests):
        raise ValueError("power_sentence needs a non-empty family of paired comparisons")
    n = min(c.n for c in tests)
    observed = [abs(c.gap) / (c.se * np.sqrt(c.n)) for c in tests if c.se > 0]
    seen = (f"; the observed effects here range from {min(observed):.1f} to {max(observed):.1f} such standard deviations"
            if observed else "")
    return (f"*Power:* with n = {n} and Holm over {len(tests)} tests, a paired test detects a difference {power:.0%} of the time "
            f"only when it is at least {detectable_effect(n, level, len(tests), power):.1f} standard deviations of the per-pair "
            f"differences{seen}. A \"not significant\" for a smaller effect says the test could not see it, not that the two are equal.")


def below_null_median(groups, level: float = LEVEL) -> tuple[int, int, float, bool]:
    """A one-sided sign test: do runs fall below the median of their null more often than by chance? ``groups`` is a
    list of (values, null): the statistic of independent runs, and draws of it from the null distribution that those
    runs are judged against (one group per training set). Under the null each run falls below its null's median with
    probability 1/2, up to the sampling error of that median (small for hundreds of draws), so the number below, k
    of n, is Binomial(n, 1/2) and p = P(Bin(n, 1/2) >= k). Returns (k, n, p, p <= level). With n = 10 the smallest p
    is 2^-10, and the test rejects at 5 % only from 9 of 10 (its level is then 1.1 %)."""
    counted = [(_values(values, "values"), np.median(_values(null, "null"))) for values, null in groups]
    below, n = sum(int((v < m).sum()) for v, m in counted), sum(len(v) for v, _ in counted)
    p = float(stats.binom.sf(below - 1, n, 0.5))
    return below, n, p, p <= level


def folded(summary: str, body: str) -> str:
    """Markdown that shows ``summary`` and folds ``body`` (for example a list of verdicts) under it: an HTML
    ``<details>`` element, a toggle in Jupyter and in the book alike."""
    return f"<details><summary>{summary}</summary>\n\n{body}\n\n</details>"


def rejected(words: dict) -> int:
    """How many verdicts of :func:`decide` reject: those whose text names a winner (it opens in bold)."""
    return sum(text.startswith("**") for text in words.values())


def decide(comparisons: dict, level: float = LEVEL) -> dict:
    """{key: verdict text} for a family of :class:`Comparison` tested together (Holm at ``level``)."""
    keys = list(comparisons)
    reject = holm([comparisons[k].p for k in keys], level)
    return {k: comparisons[k].text(bool(r), level, len(keys)) for k, r in zip(keys, reject)}
