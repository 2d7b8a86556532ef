"""Notebook 03's model of stars: a DDPM on each star's latent: its centre in probit coordinates, its radial profile standardised.

The encoder and decoder are :func:`helpers.radial.encode` and :func:`helpers.radial.decode`; the prior is a
:class:`helpers.models.ProfileDenoiser` trained with the cosine schedule and v-prediction. Notebook 03 trains
training seed 0 itself; ``python -m helpers.starprior --seeds 1 2`` (``make star-seeds``) fills the weight
cache for more training seeds, each in its own one-thread process, so that the notebook only loads them.
"""
import argparse
import hashlib
import inspect
import os
import subprocess
import sys

import numpy as np
import torch

from helpers import data, diffusion, models, radial, schedules, stars, starsets, startests, training

BINS = 128                        # angles of the radial profile
EPOCHS = 600                      # the `report` profile's training epochs of the prior
BASELINE_EPOCHS, BASELINE_POINTS = 60, 64        # and of the baseline, on that many points per star per step
T = 200
LARGE = 4096                      # fresh real stars in notebook 03's large reference
SAMPLERS = {"tilde beta": "posterior", "beta": "beta"}     # notebook 03's sampler control: name: reverse variance;
SAMPLER = "beta"                                             # the one every "ours" row uses (sample_latents' default)


def latent_scale(points, bins: int = BINS) -> dict:
    """The standardisation of a set of stars ``points: (m, n, 2)``: the profile's mean and sd over all its radii,
    and the half-width of the centres' box, :func:`box_half_width` of both coordinates pooled (one number each, so
    that every symmetry of the square and every rotation of the profile commutes with it)."""
    centre, profile = radial.encode(points, bins)
    return {"r_mean": profile.mean().item(), "r_sd": profile.std().item(), "c_box": box_half_width(centre)}


def box_half_width(values) -> float:
    """A half-width a just above every one of ``values`` (any shape, n in all): the largest |value| times (n + 1)/n, so
    that the largest maps to a finite probit z (:func:`centre_to_normal`). For draws of a law U(−a, a) it is the
    unbiased estimate of a (E max |value| = a·n/(n + 1)); encoded centres are not quite that law (the encoder's error
    blurs the square's edge), so it only sets the box."""
    values = torch.as_tensor(values).abs().flatten()
    return values.max().item() * (len(values) + 1) / len(values)


def centre_to_normal(centre, box: float) -> torch.Tensor:
    """Probit coordinates z = √2·erfinv(c / a) of centres ``centre: (m, 2)`` inside the box (−a, a)², a = ``box``: each
    coordinate's map Φ⁻¹((c/a + 1)/2), under which U(−a, a) becomes exactly N(0, 1) (the logit transform of bounded data in
    Dinh et al. 2017, with Φ⁻¹ for the logit). Odd, so it commutes with the square's symmetries."""
    c = torch.as_tensor(centre, dtype=torch.float64)
    if c.abs().max() >= box:
        raise ValueError(f"centre must lie inside the box (-{box}, {box}), got |c| up to {c.abs().max().item()}")
    return np.sqrt(2.0) * torch.erfinv(c / box)


def normal_to_centre(z, box: float) -> torch.Tensor:
    """The inverse of :func:`centre_to_normal`: c = a·erf(z/√2), in [−a, a] for every z ``(m, 2)`` (erf rounds to ±1
    for |z| above about 8.3, which gives ±a itself)."""
    return box * torch.erf(torch.as_tensor(z, dtype=torch.float64) / np.sqrt(2.0))


def to_latent(points, scale: dict, bins: int = BINS) -> torch.Tensor:
    """Latents (m, 2 + K) of stars ``points: (m, n, 2)``: the centre in probit coordinates, the profile standardised.
    A star whose centre lies on or beyond the box ``scale["c_box"]`` (a held-out star, say) is an error."""
    centre, profile = radial.encode(points, bins)
    return torch.cat([centre_to_normal(centre, scale["c_box"]), (profile - scale["r_mean"]) / scale["r_sd"]], dim=1).float()


def from_latent(latent: torch.Tensor, scale: dict) -> tuple:
    """The centres (m, 2) and profiles (m, K), float64, of latents ``latent: (m, 2 + K)``: :func:`to_latent` undone."""
    latent = torch.as_tensor(latent).double().cpu()
    return normal_to_centre(latent[:, :2], scale["c_box"]), latent[:, 2:] * scale["r_sd"] + scale["r_mean"]


def to_stars(latent: torch.Tensor, scale: dict, n_points: int, jitter: float, generator) -> np.ndarray:
    """Decode latents (m, 2 + K) into point clouds (m, n_points, 2) with jitter sd ``jitter``."""
    return radial.decode(*from_latent(latent, scale), n_points, jitter, generator).numpy()


def _prior_run(seed: int, epochs: int, bins: int, steps: int) -> tuple:
    """(name, make_model, schedule, latents, settings) of the prior's training run with training seed ``seed``."""
    train_points = data.load_stars("train")[0]
    latent = to_latent(train_points, latent_scale(train_points, bins), bins)
    return ("stars-profile", lambda: models.ProfileDenoiser(bins), schedules.cosine(steps), latent,
            dict(seed=seed, epochs=epochs, batch_size=64, lr=1e-3, prediction="v", ema_decay=0.999,
                 augment=radial.rotate_and_reflect))


def train(seed: int = 0, epochs: int = EPOCHS, bins: int = BINS, steps: int = T, retrain: bool = False,
          progress: bool = True):
    """The prior, with a cosine schedule of ``steps`` steps, trained on the 1024 training stars' latents with
    training seed ``seed`` (cached): (model in eval mode, :class:`~helpers.training.TrainResult`)."""
    name, make_model, s, latent, settings = _prior_run(seed, epochs, bins, steps)
    return training.train_cached(name, make_model, s, latent, retrain=retrain, progress=progress, **settings)


def _cached_samples(name: str, run: tuple, n: int, sample_seed: int, variance: str, retrain: bool) -> torch.Tensor:
    """n draws (n, d) by ancestral sampling (v-prediction, reverse variance ``variance``, noise seeded ``sample_seed``) from
    the model of the training run ``run`` = (name, make_model, schedule, data (N, d), settings), trained if it is not in
    the cache; the draws are cached under ``name`` beside the weights."""
    config = dict(training.checkpoint_config(*run[:4], **run[4]), n=n, sample_seed=sample_seed, variance=variance)

    def draw():
        model = training.train_cached(*run[:4], retrain=retrain, progress=False, **run[4])[0]
        return diffusion.sample(model, run[2], (n, run[3].shape[1]), torch.Generator().manual_seed(sample_seed),
                                prediction="v", variance=variance)
    return training.cached_tensor(name, config, draw, retrain)


def sample_latents(seed: int, n: int, sample_seed: int, epochs: int = EPOCHS, bins: int = BINS, steps: int = T,
                   retrain: bool = False, variance: str = SAMPLERS[SAMPLER]) -> torch.Tensor:
    """n latents (n, 2 + K) (:func:`to_latent`) drawn by ancestral sampling from the prior of training seed ``seed``
    (trained if it is not in the cache), with noise from a generator seeded ``sample_seed``; cached beside the
    weights, so that ``make star-seeds`` can draw them before notebook 03 runs.

    The sampler's reverse variance: σ_t² = β_t (``variance="beta"``) or β̃_t (``"posterior"``), Ho et al. 2020's two
    choices."""
    return _cached_samples("stars-latents", _prior_run(seed, epochs, bins, steps), n, sample_seed, variance, retrain)


CENTRE_SAMPLES = 4096               # centres drawn per training seed in notebook 03's centre control


def centre_coordinates(name: str, centre: torch.Tensor) -> tuple:
    """(to, back): the maps between centres ``centre: (m, 2)`` and the coordinates ``name`` of notebook 03's centre
    control, read off those centres: ``"standardised"``, c / sd(c) (the prior's centre before it moved to probit
    coordinates), or ``"probit"``, :func:`centre_to_normal` in the box :func:`box_half_width`."""
    if name == "standardised":
        sd = centre.std().item()
        return (lambda c: c / sd), (lambda z: z * sd)
    if name == "probit":
        box = box_half_width(centre)
        return (lambda c: centre_to_normal(c, box)), (lambda z: normal_to_centre(z, box))
    raise ValueError(f"name must be 'standardised' or 'probit', got {name!r}")


def centre_control(seed: int, name: str, n: int = CENTRE_SAMPLES, sample_seed: int | None = None, epochs: int = EPOCHS,
                   steps: int = T, retrain: bool = False) -> torch.Tensor:
    """n centres (n, 2) drawn from the prior's centre network alone, trained on the training stars' encoded centres in
    the coordinates ``name`` (:func:`centre_coordinates`) with training seed ``seed``: the prior's own
    :class:`~helpers.models.PointDenoiser`, schedule, loss, optimiser, EMA and symmetries (:func:`helpers.radial.square_symmetry`),
    sampled with :data:`SAMPLER` and noise seeded ``sample_seed`` (default seed + 2). Weights and draws are cached.
    Inside :class:`~helpers.models.ProfileDenoiser` this network sees the centre alone, so it is the same model up to
    its random draws."""
    centre = radial.encode(data.load_stars("train")[0], BINS)[0]
    to, back = centre_coordinates(name, centre)
    run = (f"stars-centre-{name}", models.PointDenoiser, schedules.cosine(steps), to(centre).float(),
           dict(seed=seed, epochs=epochs, batch_size=64, lr=1e-3, prediction="v", ema_decay=0.999, augment=radial.square_symmetry))
    sample_seed = seed + 2 if sample_seed is None else sample_seed
    return back(_cached_samples("stars-centre-samples", run, n, sample_seed, SAMPLERS[SAMPLER], retrain).double())


RESTART_STEPS = (10, 20, 45, 100)   # notebook 03's restart control: the steps t0 the training latents restart from


def profile_inner_ratio(latent: torch.Tensor, scale: dict) -> np.ndarray:
    """The inner ratio ρ (m,) fitted to the profile of each latent ``latent: (m, 2 + K)`` itself
    (:func:`helpers.stars.fit_profiles`): no decoder, no points, so no jitter and no fitter's centre error."""
    return stars.fit_profiles(from_latent(latent, scale)[1].numpy(), tuple(range(3, 13)))["inner_ratio"]


def inner_ratio_sides(rho, inner_range=startests.INNER_RANGE) -> tuple:
    """(below, above): how many inner ratios ``rho: (m,)`` lie below and above the generator's closed range
    ``inner_range``; a fit on an end of it (a point of the fitter's grid, up to 1e-9 of rounding) counts as inside."""
    rho, (low, high) = np.asarray(rho), inner_range
    return int(np.sum(rho < low - 1e-9)), int(np.sum(rho > high + 1e-9))


def restart_control(seed: int, n: int = 1024, n_drawn: int = 512, steps_back=RESTART_STEPS, epochs: int = EPOCHS,
                    bins: int = BINS, steps: int = T, retrain: bool = False) -> dict:
    """Where the prior of training seed ``seed`` moves inner ratios: the first ``n`` training latents noised to each step
    t0 of ``steps_back`` and taken back by the prior's reverse kernels (:func:`helpers.diffusion.restart`, the sampler
    :data:`SAMPLER`, noise seeded 70 000 + seed), and the ``n_drawn`` latents :func:`sample_latents` draws from pure
    noise. Returns, cached, {"steps": (k,), "training": (n,), "restarted": (k, n), "drawn": (n_drawn,)}: the
    :func:`profile_inner_ratio` of each. An exact reverse process would give back the training law from every t0."""
    run = _prior_run(seed, epochs, bins, steps)
    latent = run[3][:n]
    code = [training.describe(f) for f in (restart_control, diffusion.restart, profile_inner_ratio, from_latent, latent_scale)]
    fitter = hashlib.sha256(inspect.getsource(stars).encode()).hexdigest()[:12]       # the whole profile fitter, constants too
    config = dict(training.checkpoint_config(*run[:4], **run[4]), n=n, n_drawn=n_drawn, steps_back=list(steps_back),
                  variance=SAMPLERS[SAMPLER], code=code, fitter=fitter)

    def compute():
        scale = latent_scale(data.load_stars("train")[0], bins)
        model = training.train_cached(*run[:4], retrain=retrain, progress=False, **run[4])[0]
        kernel, generator = diffusion.ddpm_kernel(model, run[2], "v", SAMPLERS[SAMPLER]), torch.Generator().manual_seed(70_000 + seed)
        restarted = [profile_inner_ratio(diffusion.restart(kernel, run[2], latent, t0, generator), scale) for t0 in steps_back]
        drawn = sample_latents(seed, n_drawn, seed + 2, epochs, bins, steps, retrain)
        return {"steps": torch.tensor(list(steps_back)), "training": torch.from_numpy(profile_inner_ratio(latent, scale)),
                "restarted": torch.from_numpy(np.stack(restarted)), "drawn": torch.from_numpy(profile_inner_ratio(drawn, scale))}
    return training.cached_tensor("stars-restart", config, compute, retrain)


def encode_decode(points, jitter: float, seed: int, bins: int = BINS, every: int = 4) -> np.ndarray:
    """Stars ``points: (m, n, 2)`` through the encoder and the decoder (jitter sd ``jitter``, drawn from a generator
    seeded ``seed``), every ``every``-th point kept: (m, n / every, 2). What a perfect prior would hand the decoder."""
    centre, profile = radial.encode(points, bins)
    return radial.decode(centre, profile, points.shape[1], jitter, torch.Generator().manual_seed(seed)).numpy()[:, ::every]


def evaluation_reference(seed: int = 0, bins: int = BINS) -> tuple:
    """(the decoder's calibrated jitter, the fit of the 256 test stars through the encoder–decoder at 256 points):
    what every generated set is judged against."""
    jitter = calibrated_jitter(data.load_stars("train")[0][:256], bins)
    return jitter, stars.fit_stars(encode_decode(data.load_stars("test")[0], jitter, seed, bins))


def large_reference(jitter: float, n: int = LARGE, seed: int = 0, bins: int = BINS) -> dict:
    """The fit of ``n`` fresh real stars (generator seed 997) through the encoder–decoder with jitter sd ``jitter``
    (decoder seed ``seed`` + 3), at 256 points per star: notebook 03's large reference, whose own draw barely moves
    the tests."""
    return stars.fit_stars(encode_decode(data.star_dataset(n, seed=997)[0], jitter, seed + 3, bins))


def median_residual(points) -> float:
    """Median fit residual (:func:`stars.fit_stars`) of stars ``points: (m, n, 2)``."""
    return float(np.median(stars.fit_stars(points)["residual"]))


def matched_jitter(centre, profile, target: float, high: float, n_points: int = 1024, every: int = 4,
                   iterations: int = 9) -> float:
    """The jitter sd σ in [0, high] at which the polygons of ``centre (m, 2)`` and ``profile (m, K)``, decoded with
    jitter σ (one fixed draw) and fitted on every ``every``-th point, have median fit residual ``target``: bisection,
    since the residual grows with σ; σ to within high/2^``iterations``."""
    low = 0.0
    for _ in range(iterations):
        mid = (low + high) / 2
        decoded = radial.decode(centre, profile, n_points, mid, torch.Generator().manual_seed(0)).numpy()
        low, high = (mid, high) if median_residual(decoded[:, ::every]) < target else (low, mid)
    return (low + high) / 2


def calibrated_jitter(points, bins: int = BINS, every: int = 4, iterations: int = 9) -> float:
    """The decoder's jitter sd for true latents: the σ at which the encoder–decoder, applied to the stars
    ``points: (m, n, 2)``, gives back their median fit residual, both fitted on every ``every``-th point.

    The residual of a decoded star counts both the jitter and the polygon's own departure from a star, so
    the jitter of the data alone (:func:`stars.jitter_from_residual`) makes decoded stars too rough
    (:func:`matched_jitter` searches [0, 2·that estimate])."""
    points = stars.as_stars(points, "points")
    fit = stars.fit_stars(points[:, ::every])
    centre, profile = radial.encode(points, bins)
    return matched_jitter(centre, profile, float(np.median(fit["residual"])), 2 * stars.jitter_from_residual(fit["residual"]),
                          points.shape[1], every, iterations)


def one_shape_stars(n: int, seed: int = 30_000, n_points: int = 1024) -> np.ndarray:
    """The baseline's control data: n stars of the generator, all with 5 arms and rotation 0 (centre, size and
    inner ratio still drawn as in the data): (n, n_points, 2) float32."""
    return starsets.stars_with_arms(np.full(n, 5), seed, n_points, rotation=0.0).astype(np.float32)


def _baseline_run(name: str, points, seed: int, epochs: int, points_per_item, steps: int) -> tuple:
    """(name, make_model, schedule, data, settings) of a training run of the report's baseline on ``points``."""
    return (name, models.SetStatsDenoiser, schedules.linear(steps, 1e-4, 0.02), torch.as_tensor(points),
            dict(seed=seed, epochs=epochs, batch_size=32, lr=1e-3, points_per_item=points_per_item, ema_decay=0.999))


def train_baseline(name: str, points, seed: int = 0, epochs: int = BASELINE_EPOCHS, points_per_item=BASELINE_POINTS,
                   steps: int = T, device="cpu", retrain: bool = False, snapshot_epochs=(), progress: bool = True):
    """The report's baseline (:class:`~helpers.models.SetStatsDenoiser`, linear β from 1e-4 to 0.02, batch 32 stars,
    Adam 1e-3, EMA 0.999) trained on ``points: (m, n, 2)`` under the cache name ``name``: (model, result)."""
    name, make_model, s, data_, settings = _baseline_run(name, points, seed, epochs, points_per_item, steps)
    snapshots = {"snapshot_epochs": tuple(snapshot_epochs)} if snapshot_epochs else {}
    return training.train_cached(name, make_model, s, data_, retrain=retrain, device=device, progress=progress,
                                 **settings, **snapshots)


def one_shape_control(n: int, n_points: int, sample_seed: int, seed: int = 0, epochs: int = BASELINE_EPOCHS,
                      points_per_item=BASELINE_POINTS, steps: int = T, device="cpu", retrain: bool = False) -> np.ndarray:
    """n stars of n_points points (n, n_points, 2) from the baseline trained on :func:`one_shape_stars` (as many
    as the training stars), sampled with noise seeded ``sample_seed``; the samples are cached like the weights."""
    run = _baseline_run("stars-baseline-one-shape", one_shape_stars(len(data.load_stars("train")[0])), seed, epochs,
                        points_per_item, steps)
    config = dict(training.checkpoint_config(*run[:4], **run[4]), n=n, n_points=n_points, sample_seed=sample_seed)

    def draw():
        model = train_baseline(run[0], run[3], seed, epochs, points_per_item, steps, device, retrain, progress=False)[0]
        return diffusion.sample(model.to(device), run[2], (n, n_points, 2), torch.Generator().manual_seed(sample_seed),
                                device=device).cpu()
    return training.cached_tensor("stars-one-shape-samples", config, draw, retrain).numpy()


def run_job(job: str, epochs: int, retrain: bool):
    """One job of :func:`main`, with notebook 03's `report` settings: ``prior:SEED`` (train, then draw the 512
    latents the notebook judges with each sampler of :data:`SAMPLERS`, sample seed SEED + 2, and run
    :func:`restart_control`), ``one-shape`` (the baseline's control, 64 stars of 256
    points, sample seed 4), ``centre`` (:func:`centre_control` for training seeds 0, 1, 2 in both coordinates),
    ``power:K/M`` (the K-th of M groups of faults of the power simulation,
    :func:`helpers.startests.power_groups`) or ``power-large:K/M`` (the same for real stars and the faults of
    :data:`helpers.startests.WEAK`, against :func:`large_reference`)."""
    if job == "one-shape":
        one_shape_control(64, 256, sample_seed=4, retrain=retrain)
    elif job == "centre":
        for seed in (0, 1, 2):
            for name in ("standardised", "probit"):
                centre_control(seed, name, epochs=epochs, retrain=retrain)
    elif job.startswith("power-large:"):
        part, parts = (int(k) for k in job.split(":")[1].split("/"))
        jitter, _ = evaluation_reference()
        startests.power_p_values(512, startests.REPLICATES, startests.FAULT_REPLICATES, large_reference(jitter), jitter,
                                 retrain=retrain, faults=startests.power_groups(parts, faults=startests.WEAK)[part])
    elif job.startswith("power:"):
        part, parts = (int(k) for k in job.split(":")[1].split("/"))
        jitter, reference = evaluation_reference()
        startests.power_p_values(512, startests.REPLICATES, startests.FAULT_REPLICATES, reference, jitter,
                                 retrain=retrain, faults=startests.power_groups(parts)[part])
    else:
        seed = int(job.split(":")[1])
        for variance in SAMPLERS.values():
            sample_latents(seed, 512, seed + 2, epochs, retrain=retrain, variance=variance)
        restart_control(seed, epochs=epochs, retrain=retrain)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[1, 2], help="training seeds of the prior (default: 1 2)")
    parser.add_argument("--one-shape", action="store_true", help="also the baseline's one-shape control")
    parser.add_argument("--centre", action="store_true", help="also the centre control (training seeds 0, 1, 2)")
    parser.add_argument("--power", action="store_true", help="also the power simulation of the star tests")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="the prior's epochs")
    parser.add_argument("--retrain", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if any(s < 0 for s in args.seeds) or args.epochs < 1:
        parser.error(f"--seeds must be integers >= 0 and --epochs >= 1, got {args.seeds} and {args.epochs}")
    if args.worker:
        torch.set_num_threads(1)
        run_job(args.worker, args.epochs, args.retrain)
        return
    jobs = ([f"prior:{s}" for s in args.seeds] + (["one-shape"] if args.one_shape else []) + (["centre"] if args.centre else []) +
            ([f"power:{k}/2" for k in range(2)] + [f"power-large:{k}/2" for k in range(2)] if args.power else []))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    extra = ["--epochs", str(args.epochs)] + (["--retrain"] if args.retrain else [])
    procs = [subprocess.Popen([sys.executable, "-m", "helpers.starprior", "--worker", job, *extra], env=env) for job in jobs]
    status = [p.wait() for p in procs]
    if any(status):
        raise SystemExit(f"a training worker failed (exit status {status}); its traceback is above")


if __name__ == "__main__":
    main()
