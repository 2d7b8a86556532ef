"""Notebook 03's model of stars: a DDPM on each star's latent, its centre and radial profile, standardised.

The encoder and decoder are :func:`helpers.radial.encode` and :func:`helpers.radial.decode`; the prior is a
:class:`helpers.models.ProfileDenoiser` trained with the cosine schedule and v-prediction. Notebook 03 trains
training seed 0 itself; ``python -m helpers.starprior --seeds 1 2`` (``make star-seeds``) fills the weight
cache for more training seeds, each in its own one-thread process, so that the notebook only loads them.
"""
import argparse
import os
import subprocess
import sys

import numpy as np
import torch

from helpers import data, diffusion, models, radial, schedules, stars, training

BINS = 128                        # angles of the radial profile
EPOCHS = 600                      # the `report` profile's training epochs
T = 200


def latent_scale(points, bins: int = BINS) -> dict:
    """The standardisation of a set of stars ``points: (m, n, 2)``: the profile's mean and sd over all its
    radii, and the centre's sd over both coordinates (one number each, so that every symmetry of the square
    and every rotation of the profile commutes with it)."""
    centre, profile = radial.encode(points, bins)
    return {"r_mean": profile.mean().item(), "r_sd": profile.std().item(), "c_sd": centre.std().item()}


def to_latent(points, scale: dict, bins: int = BINS) -> torch.Tensor:
    """Standardised latents (m, 2 + K) of stars ``points: (m, n, 2)``."""
    centre, profile = radial.encode(points, bins)
    return torch.cat([centre / scale["c_sd"], (profile - scale["r_mean"]) / scale["r_sd"]], dim=1).float()


def to_stars(latent: torch.Tensor, scale: dict, n_points: int, jitter: float, generator) -> np.ndarray:
    """Decode standardised latents (m, 2 + K) into point clouds (m, n_points, 2) with jitter sd ``jitter``."""
    latent = latent.double().cpu()
    return radial.decode(latent[:, :2] * scale["c_sd"], latent[:, 2:] * scale["r_sd"] + scale["r_mean"],
                         n_points, jitter, generator).numpy()


def train(seed: int = 0, epochs: int = EPOCHS, bins: int = BINS, steps: int = T, retrain: bool = False,
          progress: bool = True):
    """The prior, with a cosine schedule of ``steps`` steps, trained on the 1024 training stars' latents with
    training seed ``seed`` (cached): (model in eval mode, :class:`~helpers.training.TrainResult`)."""
    train_points = data.load_stars("train")[0]
    latent = to_latent(train_points, latent_scale(train_points, bins), bins)
    return training.train_cached(
        "stars-profile", lambda: models.ProfileDenoiser(bins), schedules.cosine(steps), latent, seed=seed,
        retrain=retrain, epochs=epochs, batch_size=64, lr=1e-3, prediction="v", ema_decay=0.999,
        augment=radial.rotate_and_reflect, progress=progress)


def generate(model, n: int, scale: dict, jitter: float, seed: int, steps: int = T, n_points: int = 1024) -> np.ndarray:
    """n new stars (n, n_points, 2) from the trained prior: latents by ancestral sampling, then decoded; the
    sampling and decoding noise come from one generator seeded with ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    latent = diffusion.sample(model, schedules.cosine(steps), (n, 2 + model.K), gen, prediction="v")
    return to_stars(latent, scale, n_points, jitter, gen)


def median_residual(points) -> float:
    """Median fit residual (:func:`stars.fit_stars`) of stars ``points: (m, n, 2)``."""
    return float(np.median(stars.fit_stars(points)["residual"]))


def calibrated_jitter(points, bins: int = BINS, every: int = 4, iterations: int = 9) -> float:
    """The decoder's jitter sd: the σ at which the encoder–decoder, applied to the stars ``points: (m, n, 2)``,
    gives back their median fit residual, both fitted on every ``every``-th point.

    The residual of a decoded star counts both the jitter and the polygon's own departure from a star, so
    the jitter of the data alone (:func:`stars.jitter_from_residual`) makes decoded stars too rough. The
    residual grows with σ, so bisection on [0, 2·that estimate] with one fixed draw of the jitter finds σ to
    within 2/2^``iterations`` of the estimate."""
    points = stars.as_stars(points, "points")
    target = median_residual(points[:, ::every])
    centre, profile = radial.encode(points, bins)
    low, high = 0.0, 2 * stars.jitter_from_residual(stars.fit_stars(points[:, ::every])["residual"])
    for _ in range(iterations):
        mid = (low + high) / 2
        decoded = radial.decode(centre, profile, points.shape[1], mid, torch.Generator().manual_seed(0)).numpy()
        low, high = (mid, high) if median_residual(decoded[:, ::every]) < target else (low, mid)
    return (low + high) / 2


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2], help="training seeds (default: 1 2)")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--retrain", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if any(s < 0 for s in args.seeds) or args.epochs < 1:
        parser.error(f"--seeds must be integers >= 0 and --epochs >= 1, got {args.seeds} and {args.epochs}")
    if args.worker:
        torch.set_num_threads(1)
        for seed in args.seeds:
            train(seed, args.epochs, retrain=args.retrain, progress=False)
        return
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    extra = ["--epochs", str(args.epochs)] + (["--retrain"] if args.retrain else [])
    procs = [subprocess.Popen([sys.executable, "-m", "helpers.starprior", "--worker", "--seeds", str(s), *extra], env=env)
             for s in args.seeds]
    status = [p.wait() for p in procs]
    if any(status):
        raise SystemExit(f"a training worker failed (exit status {status}); its traceback is above")


if __name__ == "__main__":
    main()
