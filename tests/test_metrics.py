"""Checks of helpers/metrics.py, each against a closed form or an independent computation."""
import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist
from scipy.stats import wasserstein_distance

from helpers import metrics


def cloud(n, seed=0, sigma=1.0):
    """A centred Gaussian cloud (n, 2)."""
    return sigma * np.random.default_rng(seed).standard_normal((n, 2))


def brute_precision_recall(real, fake, k):
    """Precision/recall from dense distance matrices (no trees, no lifting)."""
    def radii(x):
        return np.sort(cdist(x, x), axis=1)[:, k]
    inside = lambda q, c: (cdist(q, c) <= radii(c)[None, :]).any(axis=1).mean()
    return inside(fake, real), inside(real, fake)


def test_a_set_against_itself_is_perfect():
    a = cloud(500)
    assert metrics.sliced_wasserstein(a, a) == pytest.approx(0.0, abs=1e-12)
    assert metrics.chamfer(a, a) == 0.0
    assert metrics.precision_recall(a, a) == (1.0, 1.0)


def test_torch_tensors_are_accepted():
    a, b = cloud(200, 1), cloud(300, 2)
    expected = metrics.shape_metrics(a, b)
    got = metrics.shape_metrics(torch.tensor(a, requires_grad=True), torch.tensor(b))
    assert got == pytest.approx(expected)


def test_sliced_w1_of_a_shift_is_mean_abs_cosine():
    a, L, phi = cloud(300), 2.5, 0.7
    s = L * np.array([np.cos(phi), np.sin(phi)])
    angles = np.arange(256) * np.pi / 256
    closed_form = L * np.abs(np.cos(angles - phi)).mean()
    got = metrics.sliced_wasserstein(a, a + s, n_directions=256)
    assert got == pytest.approx(closed_form, rel=1e-9)
    assert got == pytest.approx(L * 2 / np.pi, rel=1e-3)


def test_sliced_w1_of_a_scaled_gaussian():
    sigma, c = 1.5, 1.3
    a = cloud(20000, 3, sigma)
    expected = abs(c - 1) * sigma * np.sqrt(2 / np.pi)
    assert metrics.sliced_wasserstein(a, c * a) == pytest.approx(expected, rel=0.03)


@pytest.mark.parametrize("n, m", [(400, 400), (400, 157), (3, 1000)])
def test_sliced_w1_matches_scipy_per_direction(n, m):
    rng = np.random.default_rng(n + m)
    a, b = rng.standard_normal((n, 2)), rng.uniform(-1, 2, (m, 2))
    assert metrics.sliced_wasserstein(a, b, n_directions=1) == pytest.approx(
        wasserstein_distance(a[:, 0], b[:, 0]), rel=1e-10)
    angles = np.arange(5) * np.pi / 5
    u = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    expected = np.mean([wasserstein_distance(a @ v, b @ v) for v in u])
    assert metrics.sliced_wasserstein(a, b, n_directions=5) == pytest.approx(expected, rel=1e-10)


def test_sliced_w1_in_three_dimensions_is_seeded():
    a, b = np.random.default_rng(0).standard_normal((2, 100, 3))
    assert metrics.sliced_wasserstein(a, b, seed=4) == metrics.sliced_wasserstein(a, b, seed=4)


def test_chamfer_of_a_far_shifted_tight_cluster_is_the_shift():
    a, L = cloud(200, 4, sigma=1e-3), 10.0
    assert metrics.chamfer(a, a + [L * 0.6, L * 0.8]) == pytest.approx(L, rel=1e-3)


def test_chamfer_matches_dense_distances():
    a, b = cloud(150, 5), cloud(90, 6) + 0.3
    d = cdist(a, b)
    expected = 0.5 * (d.min(axis=1).mean() + d.min(axis=0).mean())
    assert metrics.chamfer(a, b) == pytest.approx(expected, rel=1e-12)


def brute_nearest(a, b):
    """Distance from each point of a to its nearest point of b, from the dense matrix: (n,)."""
    return cdist(a, b).min(axis=1)


@pytest.mark.parametrize("n, m", [(151, 90), (150, 90), (40, 41)])   # odd and even sizes: np.median averages two
def test_median_chamfer_matches_dense_distances(n, m):
    a, b = cloud(n, 14), 1.2 * cloud(m, 15) + 0.3
    d = cdist(a, b)
    expected = 0.5 * (np.median(d.min(axis=1)) + np.median(d.min(axis=0)))
    assert metrics.median_chamfer(a, b) == pytest.approx(expected, rel=1e-12)
    assert metrics.median_chamfer(a, a) == 0.0
    assert metrics.shape_metrics(a, b)["median_nn"] == pytest.approx(expected, rel=1e-12)


def runaway(real, fake, D):
    """``fake`` with its last point, a duplicate of its first, moved to distance exactly D from ``real``:
    right of the real point with the largest x, so no real point is nearer. Being a duplicate, the
    moved point was nobody's only nearest neighbour, so the real-to-fake distances do not change."""
    fake = fake.copy()
    fake[-1] = fake[0]
    moved = fake.copy()
    moved[-1] = real[real[:, 0].argmax()] + [D, 0.0]
    return fake, moved


@pytest.mark.parametrize("D", [10.0, 1e3, 1e6])
def test_one_runaway_moves_the_mean_chamfer_by_D_over_2n_and_the_median_by_at_most_one_rank(D):
    real, fake = cloud(400, 16), cloud(301, 17)
    before, after = runaway(real, fake, D)
    n = len(fake)
    # the moved point's own distance goes from d0 (that of its duplicate) to exactly D
    d0 = brute_nearest(before[-1:], real)[0]
    assert brute_nearest(after[-1:], real)[0] == pytest.approx(D, rel=1e-12)
    np.testing.assert_array_equal(brute_nearest(real, before), brute_nearest(real, after))
    # mean: + (D − d0)/n in the fake-to-real direction, half of it in the Chamfer distance
    assert metrics.chamfer(real, after) - metrics.chamfer(real, before) == pytest.approx((D - d0) / (2 * n), rel=1e-9)
    # median: one of the n fake-to-real distances changed, so its median lies between the neighbours
    # in rank of the old median, whatever D; the real-to-fake median is unchanged
    ranked = np.sort(brute_nearest(before, real))
    k = n // 2                                               # n odd: the median is ranked[k]
    moved_median = 2 * metrics.median_chamfer(real, after) - np.median(brute_nearest(real, after))
    assert ranked[k - 1] - 1e-12 <= moved_median <= ranked[k + 1] + 1e-12
    assert abs(metrics.median_chamfer(real, after) - metrics.median_chamfer(real, before)) <= (ranked[k + 1] - ranked[k - 1]) / 2
    # and it does not depend on D: the runaway is the largest distance either way
    assert metrics.median_chamfer(real, after) == metrics.median_chamfer(real, runaway(real, fake, 2 * D)[1])


def brute_outside(real, fake, margin):
    """Points of fake outside real's box widened by margin × extent per side, one point and one axis at a time."""
    count = 0
    for point in fake:
        out = False
        for axis in range(real.shape[1]):
            low, high = min(real[:, axis]), max(real[:, axis])
            pad = margin * (high - low)
            out = out or point[axis] < low - pad or point[axis] > high + pad
        count += out
    return count


def test_outside_range_on_a_hand_made_box():
    # the data span [0, 8] × [0, 4]; a margin of 0.25 widens that to [−2, 10] × [−1, 5] (exact in binary)
    real = np.array([[0.0, 0.0], [8.0, 4.0], [3.0, 1.0]])
    fake = np.array([[4.0, 2.0],      # inside the data's own box
                     [9.5, 4.5],      # inside the margin only
                     [10.0, 5.0],     # on the widened box's corner: not outside
                     [10.5, 2.0],     # right of it
                     [4.0, -1.5],     # below it
                     [-3.0, 6.0]])    # outside in both coordinates: counted once
    assert metrics.outside_range(real, fake, margin=0.25) == 3 == brute_outside(real, fake, 0.25)
    assert metrics.outside_range(real, fake, margin=0.0) == 5 == brute_outside(real, fake, 0.0)
    # the default margin is metrics.RANGE_MARGIN: [−0.8, 8.8] × [−0.4, 4.4]
    assert metrics.outside_range(real, fake) == brute_outside(real, fake, metrics.RANGE_MARGIN) == 5


@pytest.mark.parametrize("d", [2, 3])
def test_outside_range_matches_brute_force_and_ignores_the_bulk(d):
    rng = np.random.default_rng(18 + d)
    real, fake = rng.uniform(-1, 1, (500, d)), 1.3 * rng.standard_normal((700, d))
    assert metrics.outside_range(real, fake) == brute_outside(real, fake, metrics.RANGE_MARGIN)
    assert metrics.outside_range(real, real, margin=0.0) == 0       # the data never leave their own box
    fake[:5] += 1e6                                                 # five runaways count five, whatever their distance
    assert metrics.outside_range(real, fake) == brute_outside(real, fake, metrics.RANGE_MARGIN)
    assert metrics.outside_range(real, fake) == metrics.outside_range(real, fake[5:]) + 5


@pytest.mark.parametrize("k", [1, 3, 7])
def test_precision_recall_match_dense_computation(k):
    real, fake = cloud(300, 7), 1.3 * cloud(250, 8) + 0.4
    assert metrics.precision_recall(real, fake, k) == pytest.approx(
        brute_precision_recall(real, fake, k))


def test_far_fakes_have_zero_precision_and_recall():
    real = cloud(300, 9)
    assert metrics.precision_recall(real, real + 100.0) == (0.0, 0.0)


def test_half_the_fakes_far_away_halves_precision():
    real = cloud(400, 10)
    fake = np.concatenate([real[:200], real[200:] + 100.0])
    assert metrics.precision_recall(real, fake)[0] == pytest.approx(0.5)


def test_shape_floor_is_positive_and_shrinks_like_root_n():
    sizes = (250, 1000, 4000)
    floors = {n: metrics.shape_floor("circle", n, n_draws=8) for n in sizes}
    for floor in floors.values():
        assert all(mean > 0 and sd > 0 for key, (mean, sd) in floor.items() if key != "outside")
        assert floor["outside"] == (0.0, 0.0)        # a real draw lies inside the data's own range: floor 0
        for key in ("precision", "recall"):          # k = 3 balls of real data cover most, not all, of a second draw
            assert 0.9 < floor[key][0] < 1
    # the distances fall as n^(-1/2): the fitted slope of log(floor) against log(n), over a 16-fold range
    for key in ("sliced_w1", "chamfer", "median_nn"):
        slope = np.polyfit(np.log(sizes), np.log([floors[n][key][0] for n in sizes]), 1)[0]
        assert -0.6 < slope < -0.4, (key, slope)
    assert floors[1000] == metrics.shape_floor("circle", 1000, n_draws=8)        # seeded


def test_repeated_quality_sees_a_shifted_model():
    real_like = metrics.repeated_quality("square", lambda k: metrics.fresh_shape("square", 500, 200 + k), 4)
    shifted = metrics.repeated_quality("square", lambda k: metrics.fresh_shape("square", 500, 200 + k) + 0.3, 4)
    floor = metrics.shape_floor("square", 500, n_draws=4)
    assert abs(real_like["chamfer"][0] / floor["chamfer"][0] - 1) < 0.1
    assert shifted["chamfer"][0] > 5 * floor["chamfer"][0] and shifted["outline"][0] > 0.1
    with pytest.raises(ValueError, match="repeats"):
        metrics.repeated_quality("square", lambda k: metrics.fresh_shape("square", 50, k), 1)


def test_precision_recall_with_far_outliers_match_dense_computation():
    real, fake = cloud(1000, 12), cloud(1000, 13)
    real[:3] += 1e4                      # three outliers whose balls reach the cloud
    assert metrics.precision_recall(real, fake) == pytest.approx(
        brute_precision_recall(real, fake, 3))


def test_gaussian_fit_detects_a_shift_and_matches_its_floor():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 0.5, 100_000)
    fit = metrics.gaussian_fit(x, 3.0, 0.5)
    assert abs(fit["mean"] - 3) < 0.01 and abs(fit["std"] - 0.5) < 0.01
    # D of the target's own sample averages the floor; a 0.05-sd shift gives D ≈ 0.05·φ(0) ≈ 0.02
    ds = [metrics.gaussian_fit(rng.normal(0, 1, 10_000), 0, 1)["ks"] for _ in range(40)]
    assert abs(np.mean(ds) / metrics.gaussian_fit(x[:10_000], 3, 0.5)["ks_floor"] - 1) < 0.2
    shifted = metrics.gaussian_fit(x + 0.025, 3.0, 0.5)
    assert abs(shifted["ks"] - 0.05 / np.sqrt(2 * np.pi)) < 0.005 and shifted["p_value"] < 1e-6


def test_floor_ratio_interval_brackets_one_and_is_wider_for_sliced_w1():
    interval = metrics.floor_ratio_interval("circle", 500, draws=12)
    for low, high in interval.values():
        assert low < 1 < high
    width = {k: high - low for k, (low, high) in interval.items()}
    assert width["sliced_w1"] > 5 * width["chamfer"]


def brute_coverage(real, fake, k):
    """Coverage by dense distance matrices: real point i is covered iff some fake lies within its k-NN radius."""
    d_rr = np.sqrt(((real[:, None] - real[None]) ** 2).sum(-1))
    radius = np.sort(d_rr, axis=1)[:, k]                      # column 0 is the point itself
    d_rf = np.sqrt(((real[:, None] - fake[None]) ** 2).sum(-1))
    return float((d_rf.min(axis=1) <= radius).mean())


@pytest.mark.parametrize("k", [1, 3, 5])
def test_coverage_matches_dense_computation(k):
    real, fake = cloud(300, 21), 1.2 * cloud(280, 22) + 0.3
    assert metrics.coverage(real, fake, k) == pytest.approx(brute_coverage(real, fake, k))


@pytest.mark.parametrize("k", [1, 3, 5])
def test_coverage_of_a_second_real_draw_is_the_exchangeable_closed_form(k):
    """Two iid draws of N points: real point i is uncovered iff its k nearest others are all real, which by
    exchangeability has probability prod_j (N - 1 - j) / (2N - 1 - j), j < k (1 - 2^-k for large N)."""
    n = 4000
    rng = np.random.default_rng(30 + k)
    real, fake = rng.uniform(size=(n, 2)), rng.uniform(size=(n, 2))
    expected = 1 - np.prod([(n - 1 - j) / (2 * n - 1 - j) for j in range(k)])
    assert metrics.coverage(real, fake, k) == pytest.approx(expected, abs=0.02)


def test_coverage_falls_with_a_missing_part_while_blur_lifts_recall():
    """A blurred ring lifts recall above real data's while coverage falls; removing a quarter of the blurred
    ring lowers coverage further (recall is built from the fakes' own, wider balls)."""
    real, second = metrics.fresh_shape("circle", 2000, 40), metrics.fresh_shape("circle", 2000, 41)
    blurred = second + np.random.default_rng(42).normal(scale=0.03, size=second.shape)
    cut = blurred[~((blurred[:, 0] > 0) & (blurred[:, 1] > 0))]            # the first quadrant removed
    base = metrics.shape_metrics(real, second)
    blur = metrics.shape_metrics(real, blurred)
    missing = metrics.shape_metrics(real, cut)
    assert blur["recall"] > base["recall"] and blur["coverage"] < base["coverage"]
    assert missing["coverage"] < blur["coverage"] - 0.15                       # a quarter of the ring uncovered


def test_per_set_quality_scores_set_k_against_reference_draw_seed_plus_50_plus_k():
    draw = lambda k: metrics.fresh_shape("circle", 300, 600 + k)      # noqa: E731
    sets = metrics.per_set_quality("circle", draw, 3, seed=7)
    for k in range(3):
        by_hand = metrics.shape_quality("circle", draw(k), 7 + 50 + k)
        assert {key: values[k] for key, values in sets.items()} == by_hand
    summary = metrics.repeated_quality("circle", draw, 3, seed=7)
    assert summary["coverage"] == pytest.approx((sets["coverage"].mean(), sets["coverage"].std(ddof=1)))


def test_memorisation_ratio_is_zero_for_copies_one_for_new_data_and_blind_to_blur():
    from helpers import data
    train = data.load_shape("circle")
    assert metrics.memorisation_ratio("circle", train[:500]) == 0.0                # exact copies: distance 0
    fresh = metrics.fresh_shape("circle", 1000, 5)
    null = metrics.memorisation_null("circle", 1000, draws=20)
    assert null[3] == metrics.memorisation_ratio("circle", metrics.fresh_shape("circle", 1000, 803), 3)   # draw k, by hand
    low, high = np.quantile(null, [0.05, 0.95])
    assert low < 1 < high and low <= metrics.memorisation_ratio("circle", fresh) <= high
    # by brute force: median nearest distance to the training set over that to a fresh reference (seed 700)
    near = lambda x, y: np.median(cdist(x, y).min(axis=1))      # noqa: E731
    reference = metrics.fresh_shape("circle", len(train), 700)
    assert metrics.memorisation_ratio("circle", fresh) == pytest.approx(near(fresh, train) / near(fresh, reference), rel=1e-9)
    # blur alone stays near the interval; a fifth of the points copied (and the rest blurred) falls below it
    rng = np.random.default_rng(0)
    blurred = fresh * (1 + rng.normal(0, 0.03, (1000, 1)))
    partly_copied = np.concatenate([train[:200] + rng.normal(0, 0.004, (200, 2)), blurred[:800]])
    assert low - 0.03 <= metrics.memorisation_ratio("circle", blurred) <= high + 0.03
    assert metrics.memorisation_ratio("circle", partly_copied) < low


def test_class_adherence_counts_the_points_nearest_their_own_class():
    classes = [np.array([[0.0, 0.0]]), np.array([[1.0, 0.0]]), np.array([[0.0, 5.0]])]
    fake = np.array([[0.1, 0.0], [0.4, 0.0], [0.6, 0.0], [0.9, 0.3], [0.0, 2.4]])   # nearest class: 0, 0, 1, 1, 0
    assert metrics.class_adherence(fake, 0, classes) == 3 / 5
    assert metrics.class_adherence(fake, 1, classes) == 2 / 5
    assert metrics.class_adherence(fake, 2, classes) == 0.0
    with pytest.raises(ValueError, match="label must be an integer in 0..2"):
        metrics.class_adherence(fake, 3, classes)
