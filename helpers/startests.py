"""Parameter-by-parameter tests of a family of generated stars against the test stars (notebook 03).

Every star, generated or real, is fitted with :func:`helpers.stars.fit_stars`; then each fitted
parameter of the generated set is compared with the same parameter of the test stars by a
two-sample test: Kolmogorov–Smirnov for the continuous ones, χ² on the contingency table for the
arm count. The family is decided by Holm's step-down test (:func:`helpers.verdicts.holm`), so that
real stars, drawn afresh at the same sizes, fail it at most ``level`` of the time.

A *fault* is a known change to the data's generator (:data:`FAULTS`); the share of replicates in
which a test rejects a faulty set is that test's power against the fault (:func:`rejection_rates`).
"""
import numpy as np
from scipy import stats

from helpers import data, stars, verdicts

CONTINUOUS = ("centre x", "centre y", "outer radius", "inner ratio", "rotation in one arm", "residual")
PARAMETERS = CONTINUOUS + ("arm count",)
INNER_RANGE = (0.35, 0.6)        # the generator's inner ratio range (data/README.md)


def fitted_values(fit: dict) -> dict:
    """{parameter: (m,)} of a fit: the centre's coordinates, outer radius, inner ratio, the rotation as
    a fraction of one arm's angle (uniform on [0, 1) in the data), the residual and the arm count."""
    return {"centre x": fit["centre"][:, 0], "centre y": fit["centre"][:, 1], "outer radius": fit["r_outer"],
            "inner ratio": fit["inner_ratio"], "rotation in one arm": np.mod(fit["rotation"] * fit["arms"] / (2 * np.pi), 1),
            "residual": fit["residual"], "arm count": fit["arms"]}


def arm_table(arms_a, arms_b) -> np.ndarray:
    """Counts (2, k) of each arm count that occurs in either set (the columns of a χ² table)."""
    present = np.union1d(arms_a, arms_b)
    return np.array([[np.sum(np.asarray(a) == n) for n in present] for a in (arms_a, arms_b)])


def parameter_p_values(fit: dict, reference: dict) -> dict:
    """{parameter: two-sample p-value} of ``fit`` against ``reference`` (both from ``fit_stars``)."""
    a, b = fitted_values(fit), fitted_values(reference)
    p = {name: float(stats.ks_2samp(a[name], b[name]).pvalue) for name in CONTINUOUS}
    table = arm_table(a["arm count"], b["arm count"])
    p["arm count"] = float(stats.chi2_contingency(table)[1]) if table.shape[1] > 1 else 1.0
    return p


def family_verdict(p_values: dict, level: float = verdicts.LEVEL) -> dict:
    """{parameter: rejected?} by Holm at ``level`` over the parameters in ``p_values``."""
    names = list(p_values)
    return dict(zip(names, verdicts.holm([p_values[n] for n in names], level).tolist()))


def inner_outside(fit: dict) -> int:
    """Number of stars whose fitted inner ratio lies outside the generator's range."""
    ratio = fit["inner_ratio"]
    return int(np.sum((ratio < INNER_RANGE[0]) | (ratio > INNER_RANGE[1])))


def more_outside(k: int, n: int, k_ref: int, n_ref: int) -> float:
    """One-sided Fisher exact p-value that a share k/n is above a reference share k_ref/n_ref."""
    return float(stats.fisher_exact([[k, n - k], [k_ref, n_ref - k_ref]], alternative="greater").pvalue)


# --- faults: the generator with one thing changed ----------------------------------------------

def _inner_shift(p, rng):
    p["inner_ratio"] = p["inner_ratio"] + 0.05


def _shallow_arms(p, rng):
    few = rng.random(len(p["arms"])) < 0.07
    p["inner_ratio"] = np.where(few, rng.uniform(0.6, 0.75, len(few)), p["inner_ratio"])


def _rotated_centres(p, rng):
    angle = rng.uniform(0, 2 * np.pi, len(p["arms"]))
    c, s = np.cos(angle), np.sin(angle)
    x, y = p["centre"].T
    p["centre"] = np.stack([c * x - s * y, s * x + c * y], axis=1)


def _gaussian_centres(p, rng):
    p["centre"] = rng.normal(0, data.STAR_CENTRE / np.sqrt(3), p["centre"].shape)


def _arm_mix(p, rng):
    arms = rng.choice([5, 6, 7, 8], len(p["arms"]), p=[0.29, 0.29, 0.21, 0.21])
    p["rotation"] = p["rotation"] * p["arms"] / arms
    p["arms"] = arms


FAULTS = {                                           # name: (change of the parameters, jitter sd)
    "none (fresh real stars)": (None, 0.01),
    "inner ratio +0.05": (_inner_shift, 0.01),
    "7 % of stars with shallow arms": (_shallow_arms, 0.01),
    "centres rotated about the origin": (_rotated_centres, 0.01),
    "centres Gaussian, same sd": (_gaussian_centres, 0.01),
    "arm mix 29/29/21/21 %": (_arm_mix, 0.01),
    "1.5x jitter": (None, 0.015),
    "3x jitter": (None, 0.03),
}


def faulty_stars(fault: str, n: int, seed: int, n_points: int = 256) -> np.ndarray:
    """n stars of the data's generator with ``fault`` (a key of :data:`FAULTS`): (n, n_points, 2).

    "inner ratio +0.05" draws ρ from U(0.40, 0.65); "7 % of stars with shallow arms" gives 7 % of the
    stars ρ from U(0.6, 0.75); "centres rotated about the origin" turns each centre by a uniform angle
    (a disc-like spread, as the old augmentation taught); "centres Gaussian, same sd" replaces the
    uniform square by a normal law of the same sd; "arm mix" draws 5–8 arms with those shares."""
    if fault not in FAULTS:
        raise ValueError(f"fault must be one of {list(FAULTS)}, got {fault!r}")
    change, jitter = FAULTS[fault]
    rng = np.random.default_rng(seed)
    p = data.star_params(n, rng)
    if change:
        change(p, rng)
    outline = data.star_outline(p["arms"], p["r_outer"], p["inner_ratio"], p["rotation"], p["centre"], n_points)
    return outline + rng.normal(0.0, jitter, outline.shape)


def rejection_rates(pool_fit: dict, reference: dict, n: int, replicates: int, seed: int = 0,
                    level: float = verdicts.LEVEL) -> dict:
    """Share of ``replicates`` n-star subsets of a fitted pool rejected against ``reference``: per parameter
    (each test alone at ``level``) and for the Holm family ("any"). Subsets are drawn without replacement
    from one pool, so each replicate is a valid draw but the replicates are not independent: the Monte
    Carlo error is larger than the binomial one of that many independent sets."""
    m = len(pool_fit["arms"])
    if not 2 <= n <= m:
        raise ValueError(f"n must lie in [2, {m}] (the pool's size), got {n!r}")
    rng = np.random.default_rng(seed)
    alone, family = [], []
    for _ in range(replicates):
        take = rng.choice(m, n, replace=False)
        p = parameter_p_values({k: v[take] for k, v in pool_fit.items()}, reference)
        alone.append([p[name] <= level for name in PARAMETERS])
        family.append(any(family_verdict(p, level).values()))
    return dict(zip(PARAMETERS, np.mean(alone, axis=0).tolist()), any=float(np.mean(family)))
