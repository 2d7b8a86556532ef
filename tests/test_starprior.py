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
