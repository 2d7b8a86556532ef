"""Checks of helpers/stars.py against known parameters, hand geometry and brute-force sums."""
import numpy as np
import pytest
import torch

from helpers import data, stars, starsets

SIGMA = 0.01


def random_params(m, seed, arms=(3, 13)):
    """Star parameters as in data.star_params but with arm counts drawn from range(*arms)."""
    rng = np.random.default_rng(seed)
    params = data.star_params(m, rng)
    params["arms"] = rng.integers(*arms, m)
    params["rotation"] = rng.uniform(0, 1, m) * 2 * np.pi / params["arms"]
    return params


def outline(params, n=1024):
    """Noiseless outlines (m, n, 2) of the stars in params."""
    return data.star_outline(params["arms"], params["r_outer"], params["inner_ratio"],
                             params["rotation"], params["centre"], n)


def one_star(arms, r_outer, inner_ratio, rotation, centre):
    """Parameter dict of a single star."""
    return dict(arms=np.array([arms]), r_outer=np.array([r_outer]),
                inner_ratio=np.array([inner_ratio]), rotation=np.array([rotation]),
                centre=np.array([centre], dtype=float))


def brute_distance(points, params):
    """Distance of points (m, n, 2) to every one of the 2·arms edges, minimised: (m, n)."""
    out = np.empty(points.shape[:2])
    for s in range(len(points)):
        p = {k: v[s:s + 1] for k, v in params.items()}
        a = int(p["arms"][0])
        v = data.star_vertices(p["arms"], p["r_outer"], p["inner_ratio"], p["rotation"],
                               p["centre"], np.arange(2 * a + 1)[None])[0]
        start, edge = v[:-1], v[1:] - v[:-1]                            # (2a, 2)
        rel = points[s][:, None, :] - start                             # (n, 2a, 2)
        t = np.clip((rel * edge).sum(-1) / (edge**2).sum(-1), 0, 1)
        out[s] = np.linalg.norm(rel - t[..., None] * edge, axis=-1).min(1)
    return out


def brute_chamfer(a, b):
    """Chamfer matrix by explicit double loop over stars in float64."""
    out = np.empty((len(a), len(b)))
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            sq = ((x[:, None, :] - y[None, :, :])**2).sum(-1)
            out[i, j] = sq.min(1).mean() + sq.min(0).mean()
    return out


@pytest.fixture(scope="module")
def jittered():
    """200 stars with σ = 0.01 jitter, their parameters and their fit."""
    points, params = data.star_dataset(200, jitter=SIGMA, seed=7)
    return points, params, stars.fit_stars(points)


# --- the fitter ----------------------------------------------------------------------------


def test_fit_recovers_clean_stars_of_3_to_12_arms():
    params = random_params(120, seed=3)
    fit = stars.fit_stars(outline(params))
    err = stars.parameter_recovery(fit, params)
    assert err["arms_exact"] == 1.0
    assert err["r_outer"].max() < 0.01
    assert err["inner_ratio"].max() < 0.02
    assert np.degrees(err["rotation"]).max() < 2.0
    assert err["centre"].max() < 0.01
    assert fit["residual"].max() < 2e-3
    assert ((fit["rotation"] >= 0) & (fit["rotation"] < 2 * np.pi / fit["arms"])).all()


def test_fit_recovers_jittered_stars(jittered):
    points, params, fit = jittered
    err = stars.parameter_recovery(fit, params)
    assert err["arms_exact"] >= 0.98
    assert np.mean(err["r_outer"] < 0.03) >= 0.98
    inner = fit["r_outer"] * fit["inner_ratio"] / (params["r_outer"] * params["inner_ratio"])
    assert np.mean(np.abs(inner - 1) < 0.03) >= 0.98


def test_residual_of_jitter_is_mean_normal_component(jittered):
    # Distance to a straight edge is |normal component of the jitter| ~ |N(0, σ²)|,
    # whose mean is σ·sqrt(2/π); vertices and ends perturb this slightly.
    residual = jittered[2]["residual"]
    assert np.median(residual) == pytest.approx(SIGMA * np.sqrt(2 / np.pi), rel=0.15)


def test_jitter_from_residual_recovers_sigma(jittered):
    assert stars.jitter_from_residual(jittered[2]["residual"]) == pytest.approx(SIGMA, rel=0.1)


def test_circle_is_not_a_crisp_star(jittered):
    rng = np.random.default_rng(0)
    angle = rng.uniform(0, 2 * np.pi, (8, 1024))
    circle = 0.8 * np.stack([np.cos(angle), np.sin(angle)], -1) + rng.normal(0, SIGMA,
                                                                             (8, 1024, 2))
    fit = stars.fit_stars(circle)
    assert (fit["arms"] >= 9).all() and (fit["inner_ratio"] >= 0.85).all()
    assert fit["residual"].min() > 1.5 * np.median(jittered[2]["residual"])


def test_fit_is_unchanged_by_chunking_and_accepts_tensors():
    points = outline(random_params(10, seed=4), n=300)
    whole = stars.fit_stars(torch.tensor(points))
    parts = stars.fit_stars(points, chunk=3)
    for key in whole:
        np.testing.assert_allclose(whole[key], parts[key])


# --- distance to the outline ---------------------------------------------------------------


def test_distance_at_hand_picked_points():
    R, rho, phi, c = 1.0, 0.5, 0.3, np.array([0.1, -0.2])
    h = np.pi / 5
    tip = c + R * np.array([np.cos(phi), np.sin(phi)])
    inner = c + R * rho * np.array([np.cos(phi + h), np.sin(phi + h)])
    beyond_tip = c + (R + 0.1) * np.array([np.cos(phi), np.sin(phi)])
    points = np.array([[tip, inner, (tip + inner) / 2, beyond_tip, c]])
    d = stars.distance_to_star(points, one_star(5, R, rho, phi, c))[0]
    # ρ = 0.5 < cos(π/5): the edge's foot from the centre lies beyond the inner vertex, so the
    # nearest outline point to the centre is an inner vertex, at distance R·ρ.
    np.testing.assert_allclose(d, [0, 0, 0, 0.1, R * rho], atol=1e-12)


def test_distance_from_centre_to_a_nearly_convex_star():
    # ρ = 0.9 > cos(π/5): the foot of the perpendicular lies on the edge tip–inner vertex;
    # distance = |tip × inner| / |inner − tip| = R ρ sin h / sqrt(1 + ρ² − 2ρ cos h).
    R, rho, h = 0.7, 0.9, np.pi / 5
    expected = R * rho * np.sin(h) / np.sqrt(1 + rho**2 - 2 * rho * np.cos(h))
    d = stars.distance_to_star(np.zeros((1, 1, 2)), one_star(5, R, rho, 1.0, [0, 0]))
    assert d[0, 0] == pytest.approx(expected, abs=1e-12)


def test_distance_matches_all_edges_brute_force():
    params = random_params(6, seed=5)
    rng = np.random.default_rng(6)
    points = params["centre"][:, None] + rng.uniform(-1.5, 1.5, (6, 400, 2))
    np.testing.assert_allclose(stars.distance_to_star(points, params),
                               brute_distance(points, params), atol=1e-12)


# --- Chamfer and set metrics ---------------------------------------------------------------


def test_chamfer_matrix_matches_brute_force():
    rng = np.random.default_rng(8)
    a, b = rng.normal(size=(5, 30, 2)), rng.normal(size=(7, 45, 2))
    expected = brute_chamfer(a, b)
    for block in (None, 1, 3, 10):
        np.testing.assert_allclose(starsets.chamfer_matrix(a, b, block=block), expected,
                                   rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(starsets.chamfer_matrix(a, block=2), brute_chamfer(a, a),
                               atol=1e-6)


def test_chamfer_of_a_star_with_itself_is_zero():
    points = outline(random_params(4, seed=9), n=200)
    assert np.abs(np.diag(starsets.chamfer_matrix(points, points))).max() < 1e-6
    assert (np.diag(starsets.chamfer_matrix(points)) == 0).all()


def test_one_nn_accuracy_on_a_hand_made_matrix():
    # generated g0, g1; reference r0, r1. Nearest others: g0→g1 (right), g1→r0 at 0.8 (wrong),
    # r0→r1 (right), r1→r0 (right): accuracy 3/4.
    d_gg = np.array([[0, 1.0], [1.0, 0]])
    d_gr = np.array([[5, 2.0], [0.8, 9]])
    d_rr = np.array([[0, 0.7], [0.7, 0]])
    assert starsets.one_nn_accuracy(d_gg, d_gr, d_rr) == 0.75
    # A tie g1–g0 = g1–r0 = 0.8 goes to the lower union index, g0: now g1 is right too.
    tied = np.array([[0, 0.8], [0.8, 0]])
    assert starsets.one_nn_accuracy(tied, d_gr, d_rr) == 1.0


def test_set_metrics_of_a_copy_and_of_a_shift():
    points, _ = data.star_dataset(40, n_points=128, seed=11)
    copy = starsets.mmd_cov_1nna(points, points.copy())
    assert copy["mmd"] < 1e-6 and copy["cov"] == 1.0
    assert copy["nna"] == 0.0   # every star's leave-one-out neighbour is its twin
    shifted = starsets.mmd_cov_1nna(points + 3.0, points)
    assert shifted["nna"] == 1.0 and shifted["mmd"] > 10


def test_set_metrics_of_two_independent_draws():
    gen, _ = data.star_dataset(128, n_points=256, seed=12)
    ref, _ = data.star_dataset(128, n_points=256, seed=13)
    result = starsets.mmd_cov_1nna(gen, ref, points_per_star=64)
    assert 0.35 <= result["nna"] <= 0.65 and result["cov"] > 0.5


def test_memorisation_ratio():
    train, _ = data.star_dataset(64, n_points=128, seed=14)
    test, _ = data.star_dataset(64, n_points=128, seed=15)
    fresh, _ = data.star_dataset(64, n_points=128, seed=16)
    honest = starsets.memorisation(fresh, train, test)
    assert 0.7 < honest["ratio"] < 1.4
    copies = train[:32] + np.random.default_rng(0).normal(0, 0.002, (32, 128, 2))
    copied = starsets.memorisation(copies, train, test, points_per_star=64)
    assert copied["ratio"] < 0.3
    assert (copied["nearest_train_index"] == np.arange(32)).all()


def test_parameter_summary():
    fit = dict(arms=np.array([5, 5, 6, 12]), residual=np.array([0.01, 0.02, 0.03, 0.05]))
    summary = stars.parameter_summary(fit, data_residual=0.01)
    assert summary["arm_fraction"].sum() == pytest.approx(1.0)
    assert summary["arm_fraction"][list(summary["arms"]).index(5)] == 0.5
    assert summary["well_fitted"] == 0.5            # residual ≤ 0.02
    assert summary["mean_residual"] == pytest.approx(0.0275)


# --- bad inputs ----------------------------------------------------------------------------


@pytest.mark.parametrize("call, name", [
    (lambda: stars.fit_stars(np.zeros((10, 2))), "points"),
    (lambda: stars.fit_stars(np.zeros((1, 10, 2)), arms_range=[1, 2]), "arms_range"),
    (lambda: starsets.chamfer_matrix(np.zeros((1, 4, 2)), np.zeros((1, 4, 3))), "b"),
    (lambda: starsets.mmd_cov_1nna(np.zeros((2, 4)), np.zeros((2, 4, 2))), "generated"),
    (lambda: starsets.mmd_cov_1nna(np.zeros((2, 4, 2)), np.zeros((2, 4, 2)), 9), "points_per_star"),
    (lambda: starsets.memorisation(np.zeros((2, 4, 2)), np.zeros((2, 4, 2)), np.zeros(3)), "test"),
    (lambda: stars.distance_to_star(np.zeros((1, 4, 2)),
                                    one_star(5, 1, 0.5, 0, [0, 0]) | {"centre": np.zeros(2)}),
     "centre"),
])
def test_bad_inputs_raise_naming_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_centre_check_sees_centres_turned_into_a_disc():
    """Uniform centres pass; the same centres turned by 45° leave the square with probability
    1 − 2(√2 − 1) = 0.1716 (the square and its 45° turn overlap in a regular octagon of area 8(√2 − 1)a²)."""
    rng = np.random.default_rng(5)
    centre = rng.uniform(-0.3, 0.3, (20000, 2))
    share, p_x, p_y = starsets.centre_check(centre, 0.3)
    assert share == 0 and min(p_x, p_y) > 1e-3
    c, s = np.cos(np.pi / 4), np.sin(np.pi / 4)
    turned = centre @ np.array([[c, s], [-s, c]])
    share, p_x, p_y = starsets.centre_check(turned, 0.3)
    expected = 1 - 2 * (np.sqrt(2) - 1)
    assert abs(share - expected) < 4 * np.sqrt(expected * (1 - expected) / 20000)
    assert max(p_x, p_y) < 1e-10
