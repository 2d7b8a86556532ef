"""Notebook 03's star model around the network: the latent's standardisation and the decoder's calibrated jitter."""
import numpy as np
import pytest
import torch

from helpers import data, radial, starprior, stars


def test_latent_round_trip_gives_back_each_star():
    """Standardise, then decode without jitter: the fitted star matches the generator's parameters."""
    points, params = data.star_dataset(32, seed=11)
    scale = starprior.latent_scale(points)
    latent = starprior.to_latent(points, scale)
    assert latent.shape == (32, 2 + starprior.BINS)
    assert abs(latent[:, 2:].mean().item()) < 1e-5 and latent[:, 2:].std().item() == pytest.approx(1, abs=1e-3)
    fit = stars.fit_stars(starprior.to_stars(latent, scale, 1024, 0.0, torch.Generator().manual_seed(0)))
    assert np.abs(fit["centre"] - params["centre"]).max() < 0.01
    size_error = np.abs(fit["r_outer"] / params["r_outer"] - 1)          # a restored tip is not always the true one
    assert np.median(size_error) < 0.01 and size_error.max() < 0.03
    assert (fit["arms"] == params["arms"]).all()


def test_calibrated_jitter_undercuts_the_true_jitter_by_the_polygon_error():
    """A decoded star's residual counts the polygon's own error too (binned edges, which the jitter makes noisier,
    and corners not quite restored), so the calibrated jitter lies below the true one, by some percent, at both
    jitters."""
    for sd in (0.01, 0.02):
        ratio = starprior.calibrated_jitter(data.star_dataset(64, jitter=sd, seed=5)[0]) / sd
        assert 0.8 < ratio < 0.99


def test_decoded_stars_at_the_calibrated_jitter_give_back_the_median_residual():
    """The calibration's defining property, checked on stars it was not computed from (a fresh draw, fresh jitter)."""
    train = data.star_dataset(96, seed=21)[0]
    sigma = starprior.calibrated_jitter(train)
    fresh = data.star_dataset(96, seed=22)[0]
    scale = starprior.latent_scale(fresh)
    decoded = starprior.to_stars(starprior.to_latent(fresh, scale), scale, 1024, sigma, torch.Generator().manual_seed(3))
    assert starprior.median_residual(decoded[:, ::4]) == pytest.approx(starprior.median_residual(fresh[:, ::4]), rel=0.02)


def test_profiles_cleaner_than_the_data_decode_into_crisper_stars():
    """The same stars encoded with and without their jitter (profiles free of the binned noise that encoded real stars
    carry: a prior whose profiles are cleaner than the data's), decoded at the one calibrated jitter: the clean ones
    give a smaller median residual, and giving back the data's residual takes a larger jitter."""
    points = data.star_dataset(64, seed=31)[0]
    clean = data.star_dataset(64, jitter=0.0, seed=31)[0]              # the same stars: the jitter is drawn last
    sigma = starprior.calibrated_jitter(points)
    decode = lambda x: radial.decode(*radial.encode(x), 1024, sigma, torch.Generator().manual_seed(0)).numpy()[:, ::4]
    assert starprior.median_residual(decode(clean)) < 0.98 * starprior.median_residual(decode(points))
    centre, profile = radial.encode(clean)
    matched = starprior.matched_jitter(centre, profile, starprior.median_residual(points[:, ::4]), 4 * sigma)
    assert matched > 1.02 * sigma


def test_box_half_width_is_unbiased_and_above_every_draw():
    """Monte Carlo: 4000 sets of 50 draws from U(−0.3, 0.3); the estimate's mean is 0.3 within 5 standard errors
    (the largest |draw| alone falls short by a/(n + 1), about 0.006, some 60 standard errors), and, a sanity check,
    no set's estimate lies below its own largest draw."""
    from conftest import assert_mc_close
    values = torch.rand(4000, 50, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 0.6 - 0.3
    estimates = np.array([starprior.box_half_width(v) for v in values])
    assert_mc_close(estimates.mean(), 0.3, estimates.std(), len(estimates))
    assert abs(values.abs().max(1).values.mean().item() - 0.3) > 0.005
    assert (estimates > values.abs().max(1).values.numpy()).all()


def test_probit_coordinates_of_a_uniform_square_are_standard_normal():
    """Against scipy's Φ⁻¹ (an independent implementation) on a hand value and on 20 000 uniform centres; those are then
    N(0, 1) by Kolmogorov–Smirnov (each coordinate), and the map commutes with the square's symmetries (it is odd)."""
    from scipy import stats as scipy_stats
    box = 0.3
    hand = starprior.centre_to_normal(torch.tensor([[0.15, -0.15]], dtype=torch.float64), box).numpy()
    assert hand == pytest.approx(np.array([[0.6744897501960817, -0.6744897501960817]]), abs=1e-12)
    c = torch.rand(20_000, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2 * box - box
    z = starprior.centre_to_normal(c, box).numpy()
    assert z == pytest.approx(scipy_stats.norm.ppf((c.numpy() / box + 1) / 2), abs=1e-9)
    assert min(scipy_stats.kstest(z[:, k], "norm").pvalue for k in range(2)) > 1e-3
    assert abs(z.mean()) < 0.03 and abs(z.std() - 1) < 0.02
    moved = lambda f, x: f(x, torch.Generator().manual_seed(7))
    assert torch.allclose(moved(radial.square_symmetry, starprior.centre_to_normal(c, box)),
                          starprior.centre_to_normal(moved(radial.square_symmetry, c), box))


def test_normal_to_centre_undoes_the_probit_and_never_leaves_the_box():
    """Round trip to 1e-9 for |z| ≤ 5; every z, however far out, maps into [−a, a]; a centre on or beyond the box is an
    error that names it."""
    box = 0.25
    z = torch.linspace(-5, 5, 101, dtype=torch.float64).reshape(-1, 1).repeat(1, 2)
    assert torch.allclose(starprior.centre_to_normal(starprior.normal_to_centre(z, box), box), z, atol=1e-9, rtol=0)
    far = starprior.normal_to_centre(torch.tensor([[-40.0, 1e6]]), box)
    assert far.abs().max().item() <= box
    with pytest.raises(ValueError, match="centre must lie inside the box"):
        starprior.centre_to_normal(torch.tensor([[0.25, 0.0]]), box)


def test_the_latent_carries_the_centre_in_probit_coordinates():
    """The latent's centre part is Φ⁻¹((c/a + 1)/2) of the encoded centre (scipy), a from :func:`starprior.box_half_width`."""
    from scipy import stats as scipy_stats
    points = data.star_dataset(32, seed=12)[0]
    scale = starprior.latent_scale(points)
    centre = radial.encode(points)[0].numpy()
    assert scale["c_box"] == pytest.approx(np.abs(centre).max() * 65 / 64)
    expected = scipy_stats.norm.ppf((centre / scale["c_box"] + 1) / 2)
    assert starprior.to_latent(points, scale)[:, :2].numpy() == pytest.approx(expected, abs=1e-5)


def test_centre_control_draws_probit_centres_inside_the_box(tmp_path, monkeypatch):
    """Two epochs (a shape check, not a model): both coordinates give (n, 2) centres; the probit ones all lie inside
    the training centres' box, the standardised ones need not; a wrong name is an error that names it."""
    monkeypatch.setenv("DDPM_CACHE_DIR", str(tmp_path))
    probit = starprior.centre_control(0, "probit", n=128, epochs=2)
    standard = starprior.centre_control(0, "standardised", n=128, epochs=2)
    box = starprior.box_half_width(radial.encode(data.load_stars("train")[0])[0])
    assert probit.shape == standard.shape == (128, 2) and probit.abs().max().item() <= box
    with pytest.raises(ValueError, match="name must be"):
        starprior.centre_coordinates("logit", torch.zeros(3, 2))


def test_a_star_seeds_worker_fills_the_cache_that_the_notebook_loads(tmp_path, monkeypatch):
    """``python -m helpers.starprior --worker centre`` (as ``make star-seeds`` runs it, one epoch here) trains and draws
    under the keys that the notebook's own call computes, so the notebook loads them instead of training again."""
    import os
    import subprocess
    import sys
    monkeypatch.setenv("DDPM_CACHE_DIR", str(tmp_path))
    subprocess.run([sys.executable, "-m", "helpers.starprior", "--worker", "centre", "--epochs", "1"], check=True,
                   env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 12
    for seed in (0, 1, 2):
        for name in ("standardised", "probit"):
            starprior.centre_control(seed, name, epochs=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == files


def test_profile_inner_ratio_recovers_the_generators_ratio():
    """Fitted to the encoded profiles of training stars, ρ is the generator's own within the encoder's error."""
    points, params = data.load_stars("train")
    scale = starprior.latent_scale(points)
    rho = starprior.profile_inner_ratio(starprior.to_latent(points[:64], scale), scale)
    assert np.median(np.abs(rho - params["inner_ratio"][:64])) < 0.01 and np.abs(rho - params["inner_ratio"][:64]).max() < 0.05


def test_restart_control_starts_from_the_training_latents(tmp_path, monkeypatch):
    """One epoch (a contract check, not a model): restarted from t0 = 1, whose noise sd is under 0.01, the training
    latents keep their inner ratios whatever the network; the rows have the promised shapes and are cached."""
    monkeypatch.setenv("DDPM_CACHE_DIR", str(tmp_path))
    out = starprior.restart_control(1, n=16, n_drawn=8, steps_back=(1, 20), epochs=1)
    assert out["steps"].tolist() == [1, 20] and out["restarted"].shape == (2, 16) and out["drawn"].shape == (8,)
    assert (out["restarted"][0] - out["training"]).abs().max().item() < 0.02
    files = sorted(p.name for p in tmp_path.iterdir())
    again = starprior.restart_control(1, n=16, n_drawn=8, steps_back=(1, 20), epochs=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == files and torch.equal(again["restarted"], out["restarted"])


def test_inner_ratio_sides_count_the_ends_of_the_range_as_inside():
    """The fitter's grid holds 0.6 as 0.6000000000000001: it counts as inside, like 0.35; anything beyond by more is out."""
    rho = np.r_[np.linspace(0.2, 0.9, 36)[20], 0.35, 0.3499, 0.6001, 0.2, 0.5]
    assert np.linspace(0.2, 0.9, 36)[20] > 0.6 and starprior.inner_ratio_sides(rho) == (2, 1)
