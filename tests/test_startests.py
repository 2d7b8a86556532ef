"""The parameter-by-parameter star tests: their level under the null, what each fault changes, their power."""
import math

import numpy as np
import pytest
from scipy import stats

from helpers import data, stars, startests, verdicts


def fit_like(params: dict, rng) -> dict:
    """A fit of stars drawn with ``params``: the true parameters, plus a continuous residual."""
    return dict(params, residual=rng.gamma(50.0, 0.01 / 50, len(params["arms"])))


def test_the_holm_family_holds_its_level_over_fresh_pairs_of_generator_draws():
    """Null calibration, unconditional and idealised (the true parameters stand in for fitted ones, and each pair has
    a fresh reference; notebook 03 measures the conditional rate for its one fixed reference by simulation): 400
    independent pairs of 512 and 256 stars drawn from the generator itself, all nine tests; the family rejects at most 5 % of them, within three binomial standard errors (the KS and Fisher
    tests are a little conservative, so the rate sits below the level rather than at it)."""
    rng = np.random.default_rng(0)
    reps = 400
    rejected = [any(startests.family_verdict(startests.p_values(
        fit_like(data.star_params(512, rng), rng), fit_like(data.star_params(256, rng), rng))).values())
        for _ in range(reps)]
    rate, se = np.mean(rejected), math.sqrt(0.05 * 0.95 / reps)
    assert 0.005 < rate <= 0.05 + 3 * se


def test_each_fault_changes_the_law_it_names():
    rng = np.random.default_rng(1)
    n = 20_000
    changed = {}
    for name, (change, _) in startests.FAULTS.items():
        p = data.star_params(n, rng)
        if change:
            change(p, rng)
        changed[name] = p
    uniform = lambda lo, hi: stats.uniform(lo, hi - lo).cdf
    assert stats.kstest(changed["inner ratio +0.05"]["inner_ratio"], uniform(0.40, 0.65)).pvalue > 0.01
    shallow = np.mean(changed["7 % of stars with shallow arms"]["inner_ratio"] > 0.6)
    assert abs(shallow - 0.07) < 3 * math.sqrt(0.07 * 0.93 / n)
    c = changed["centres rotated about the origin"]["centre"]
    assert stats.kstest(np.arctan2(c[:, 1], c[:, 0]), uniform(-np.pi, np.pi)).pvalue > 0.01
    assert np.mean(np.any(np.abs(c) > data.STAR_CENTRE, axis=1)) > 0.1          # a disc: corners of the square leave
    g = changed["centres Gaussian, same sd"]["centre"]
    assert stats.kstest(g.ravel(), stats.norm(0, 0.6 / math.sqrt(12)).cdf).pvalue > 0.01
    mix = changed["arm mix 29/29/21/21 %"]
    counts = np.array([np.sum(mix["arms"] == a) for a in (5, 6, 7, 8)])
    assert stats.chisquare(counts, n * np.array([0.29, 0.29, 0.21, 0.21])).pvalue > 0.01
    assert stats.kstest(mix["rotation"] * mix["arms"] / (2 * np.pi), uniform(0, 1)).pvalue > 0.01
    rho = changed["4 % of stars with inner ratio from U(0.6, 0.7)"]["inner_ratio"]
    assert abs(np.mean(rho > 0.6) - 0.04) < 3 * math.sqrt(0.04 * 0.96 / n) and rho.max() < 0.7
    assert stats.kstest(rho[rho > 0.6], uniform(0.6, 0.7)).pvalue > 0.01
    c = changed["1.5 % of centres just outside the square"]["centre"]
    far = np.abs(c).max(axis=1)
    assert abs(np.mean(far > data.STAR_CENTRE) - 0.015) < 3 * math.sqrt(0.015 * 0.985 / n) and far.max() < 0.32
    assert stats.kstest(far[far > data.STAR_CENTRE], uniform(0.30, 0.32)).pvalue > 0.01
    moved = np.abs(c) > data.STAR_CENTRE                      # one coordinate per moved centre, x and y alike, both signs
    assert not np.any(moved.all(axis=1)) and abs(moved[:, 0].mean() - moved[:, 1].mean()) < 0.005
    assert abs(np.mean(c[moved] > 0) - 0.5) < 0.1


def test_faulty_stars_have_the_fault_in_their_points():
    """Through the outline and the jitter: Gaussian centres put about 16 % of star means outside the
    square (1 − P(|z| < √3)² for each star), the generator itself none."""
    outside = lambda x: np.mean(np.any(np.abs(x.mean(axis=1)) > data.STAR_CENTRE + 0.02, axis=1))
    bad = startests.faulty_stars("centres Gaussian, same sd", 2000, seed=3, n_points=200)
    good = startests.faulty_stars("none (fresh real stars)", 2000, seed=3, n_points=200)
    expected = 1 - (2 * stats.norm.cdf(math.sqrt(3) + 0.02 / 0.1732) - 1) ** 2
    assert abs(outside(bad) - expected) < 0.03 and outside(good) == 0
    with pytest.raises(ValueError, match="fault"):
        startests.faulty_stars("no such fault", 4, seed=0)


def test_rejection_rates_see_a_shifted_inner_ratio_in_its_two_tests_and_not_in_centre_size_or_arms():
    """100 independent sets of 512 stars whose inner ratio is 0.05 too high, against 256 stars of the generator."""
    rng = np.random.default_rng(2)
    reference = fit_like(data.star_params(256, rng), rng)
    rows = []
    for _ in range(100):
        fit = fit_like(data.star_params(512, rng), rng)
        fit["inner_ratio"] = fit["inner_ratio"] + 0.05
        p = startests.p_values(fit, reference)
        rows.append([p[name] for name in startests.TESTS])
    rates = startests.rejection_rates(np.array(rows))
    assert rates["inner ratio"] > 0.9 and rates["any"] > 0.9 and rates["inner ratio outside its range"] > 0.9
    assert max(rates[k] for k in ("centre x", "outer radius", "arm count", "centre outside its square")) < 0.2


def test_replicates_draw_the_fault_and_pass_it_through_the_decoder():
    """With a decoder that only thins the points, the fault's own law reaches the tests: a shifted inner ratio is
    rejected in every replicate, and each replicate is a fresh draw (distinct p-values)."""
    rng = np.random.default_rng(4)
    reference = stars.fit_stars(data.star_dataset(128, seed=77)[0][:, ::8])
    calls = []

    def thin(points, seed, factor):
        calls.append((seed, factor))
        return points[:, ::8]
    p = startests.replicate_p_values("inner ratio +0.05", 128, 3, reference, thin, seed=5)
    assert p.shape == (3, len(startests.TESTS))
    assert (p[:, startests.TESTS.index("inner ratio")] < 0.01).all()
    assert len({row.tobytes() for row in p}) == 3 and [f for _, f in calls] == [1.0] * 3 and len({k for k, _ in calls}) == 3
    startests.replicate_p_values("3x jitter", 16, 1, reference, thin, seed=5)       # the jitter factor goes to the decoder
    assert calls[-1][1] == 3.0


def test_faulty_stars_drawn_alone_carry_the_jitter_factor():
    """Drawn on their own (not through the power simulation, which hands the factor to the decoder), "3x jitter" stars
    have 3 times the data's jitter, estimated from the fit residual."""
    points = startests.faulty_stars("3x jitter", 32, seed=6, n_points=1024)
    assert stars.jitter_from_residual(stars.fit_stars(points)["residual"]) == pytest.approx(3 * startests.JITTER, rel=0.1)


def test_arm_count_chi_square_matches_the_statistic_by_hand():
    a, b = np.repeat([5, 6, 7, 8], [40, 30, 20, 10]), np.repeat([5, 6, 7, 8, 9], [10, 10, 10, 10, 2])
    table = startests.arm_table(a, b)
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    chi2 = ((table - expected) ** 2 / expected).sum()
    p = startests.parameter_p_values(
        dict(centre=np.zeros((100, 2)), r_outer=np.ones(100), inner_ratio=np.ones(100), rotation=np.zeros(100),
             residual=np.ones(100), arms=a),
        dict(centre=np.zeros((42, 2)), r_outer=np.ones(42), inner_ratio=np.ones(42), rotation=np.zeros(42),
             residual=np.ones(42), arms=b))["arm count"]
    assert table.shape == (2, 5) and p == pytest.approx(stats.chi2.sf(chi2, 4), rel=1e-9)


def test_more_outside_is_the_hypergeometric_upper_tail():
    k, n, k_ref, n_ref = 37, 512, 7, 256
    total = k + k_ref
    tail = sum(math.comb(n, j) * math.comb(n_ref, total - j) for j in range(k, total + 1)) / math.comb(n + n_ref, total)
    assert startests.more_outside(k, n, k_ref, n_ref) == pytest.approx(tail, rel=1e-9)


def test_outside_counts_both_sides():
    assert startests.inner_outside(dict(inner_ratio=np.array([0.3, 0.35, 0.5, 0.6, 0.61]))) == 2
    centre = np.array([[0.0, 0.0], [0.31, 0.0], [0.0, -0.31], [0.3, -0.3]])
    assert startests.centre_outside(dict(centre=centre)) == 2


def test_power_groups_split_the_sets_evenly_and_hold_every_fault_once():
    """200 real-star sets and 50 per fault, 12 faults, over two workers: 800 sets, and by hand the greedy rule puts
    the real stars and four faults on one worker and eight faults on the other, 400 sets each; the four weak faults
    of the large reference all go beside the real stars' 200."""
    groups = startests.power_groups(2, 200, 50)
    assert sorted(f for g in groups for f in g) == sorted(startests.FAULTS)
    loads = [sum(200 if f == startests.NULL else 50 for f in g) for g in groups]
    assert loads == [400, 400] and groups[0][0] == startests.NULL and [len(g) for g in groups] == [5, 8]
    assert [len(g) for g in startests.power_groups(1, 200, 50)] == [len(startests.FAULTS)]
    assert startests.power_groups(2, 200, 50, startests.WEAK) == [[startests.NULL], list(startests.WEAK[1:])]


def test_calibrated_p_values_count_the_real_sets_at_or_below_by_hand():
    null = np.array([[0.1, 0.9], [0.2, 0.8], [0.3, 0.7], [0.4, 0.6]])
    cal = startests.calibrated_p_values(np.array([[0.25, 0.05], [0.3, 0.95]]), null)
    np.testing.assert_allclose(cal, [[3 / 5, 1 / 5], [4 / 5, 5 / 5]])        # (1 + #{null <= p}) / (N + 1), ties counted


def test_calibrated_p_values_of_a_biased_test_have_their_level_on_fresh_real_sets():
    """A raw test that is far too liberal (its p-values are U(0, 1)^3, so it rejects 37 % at 5 %) calibrated against
    199 real sets: on fresh real sets the calibrated p-value is at most 10/200 with chance 10/200 exactly (exchangeable
    ranks), measured over 20 000 draws, each against its own null."""
    rng = np.random.default_rng(7)
    null, fresh = rng.random((20_000, 199, 1)) ** 3, rng.random((20_000, 1, 1)) ** 3
    cal = np.array([startests.calibrated_p_values(f, n)[0, 0] for f, n in zip(fresh, null)])
    assert np.mean(fresh <= 0.05) > 0.3
    assert abs(np.mean(cal <= 10 / 200) - 10 / 200) < 3 * math.sqrt(0.05 * 0.95 / 20_000)


def test_calibrated_rejection_rates_leave_each_real_set_out():
    """Leave one out: a real set whose p is the smallest of all N is calibrated to 1/N against the other N − 1, below
    Holm's first threshold 0.05/9 for N = 300, so the family rejects at least that set."""
    rng = np.random.default_rng(8)
    null = rng.random((300, len(startests.TESTS)))
    null[0] = 1e-9                                               # set 0 is below every other set in every test
    rates = startests.calibrated_rejection_rates(None, null, level=0.05)
    rows = [startests.calibrated_p_values(null[i], np.delete(null, i, axis=0)) for i in range(300)]
    assert rows[0].tolist() == [1 / 300] * len(startests.TESTS)
    assert rates["any"] == pytest.approx(np.mean([verdicts.holm(r, 0.05).any() for r in rows]))
    assert 1 / 300 <= rates["any"] <= len(startests.TESTS) / 300      # a left-out set rejects only at the strict minimum


def test_power_simulation_seeds_share_nothing_with_the_sets_they_are_compared_with(tmp_path, monkeypatch):
    """Every simulated set's seeds, as the simulation hands them to the star generator and to the decoder, differ from
    every other set's and lie above every seed notebook 03 draws its compared sets with (the references' decoders 0–3
    and generators 997–999, the metric controls' 10 000 + s, the one-shape stars' 30 000–30 002, the seeds' stars
    50 000 + s, the restart control's 70 000 + s)."""
    from helpers import starprior
    monkeypatch.setenv("DDPM_CACHE_DIR", str(tmp_path))
    drawn, decoded = [], []

    def stars_of(fault, n, seed, n_points=256, jitter=None):
        drawn.append(seed)
        return np.zeros((n, n_points, 2))

    def codec(points, jitter, seed, bins=128, every=4):
        decoded.append(seed)
        return points[:, ::every]
    monkeypatch.setattr(startests, "faulty_stars", stars_of)
    monkeypatch.setattr(starprior, "encode_decode", codec)
    monkeypatch.setattr(stars, "fit_stars", lambda points: {})
    monkeypatch.setattr(startests, "p_values", lambda fit, reference: dict.fromkeys(startests.TESTS, 0.5))
    startests.power_p_values(2, startests.REPLICATES, startests.FAULT_REPLICATES, {"arms": np.arange(3)}, 0.01)
    assert drawn == decoded
    assert len(drawn) == startests.REPLICATES + (len(startests.FAULTS) - 1) * startests.FAULT_REPLICATES == len(set(drawn))
    assert min(drawn) > 70_000 + 1000
