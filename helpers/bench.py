"""``make bench``: time the hot paths on this machine and print one table row per path.

Each row is the best of a few repeats (seconds), beside the budget the issues set for it.
"""
import time

import torch

from . import data, diffusion, gaussian, models, radial, runtime, schedules, training

ROWS = []


def bench(name: str, budget_s: float | None = None, repeats: int = 3, per=()):
    """Register ``fn`` as a benchmark row: best wall time of ``repeats`` calls; ``per`` lists
    (unit, count) pairs to report as rates."""
    def register(fn):
        ROWS.append((name, budget_s, repeats, per, fn))
        return fn
    return register


@bench("1D forward, 1e6 trajectories x T=50", budget_s=0.5)
def forward_1d():
    s, gen = schedules.linear(50, 0.02, 0.3), torch.Generator().manual_seed(0)
    diffusion.forward_trajectory(s, 3 + 0.5 * torch.randn(10 ** 6, generator=gen), gen)


@bench("1D backward, 1e6 trajectories x T=50 (exact kernel)", budget_s=0.5)
def backward_1d():
    s, gen = schedules.linear(50, 0.02, 0.3), torch.Generator().manual_seed(0)
    diffusion.run_reverse(gaussian.exact_reverse_kernel(s, 3.0, 0.5), torch.randn(10 ** 6, generator=gen), 50, gen,
                          trajectory=True)


STEPS = 50


@bench(f"2D training, {STEPS} steps at batch 128 (PointDenoiser)", per=(("steps", STEPS), ("points", 128 * STEPS)))
def train_2d():
    points = torch.as_tensor(data.load_shape("dino"))[: 128 * STEPS]
    training.train(models.PointDenoiser(), schedules.linear(200), points, 1, 128,
                   generator=torch.Generator().manual_seed(0), progress=False)


@bench("2D sampling, 1000 points x 200 steps", budget_s=1.0)
def sample_2d():
    diffusion.sample(models.PointDenoiser().eval(), schedules.linear(200), (1000, 2), torch.Generator().manual_seed(0))


@bench(f"stars baseline training, {STEPS // 5} steps, 32 stars x 64 points", repeats=1,
       per=(("steps", STEPS // 5), ("stars", 32 * STEPS // 5)))
def train_stars_baseline():
    stars = torch.as_tensor(data.load_stars("train")[0][: 32 * STEPS // 5])
    training.train(models.SetStatsDenoiser(), schedules.linear(200), stars, 1, 32,
                   generator=torch.Generator().manual_seed(0), progress=False, points_per_item=64)


@bench(f"stars profile training, {STEPS} steps at batch 64", per=(("steps", STEPS), ("stars", 64 * STEPS)))
def train_stars_profile():
    latent = torch.randn(64 * STEPS, 130)
    training.train(models.ProfileDenoiser(128), schedules.cosine(200), latent, 1, 64,
                   generator=torch.Generator().manual_seed(0), progress=False, prediction="v",
                   augment=radial.rotate_and_reflect)


@bench("stars sampling (ours), 16 stars x 1024 points, 200 steps", budget_s=2.0)
def sample_stars_profile():
    gen = torch.Generator().manual_seed(0)
    latent = diffusion.sample(models.ProfileDenoiser(128).eval(), schedules.cosine(200),
                              (16, 130), gen, prediction="v")
    radial.decode(latent[:, :2], latent[:, 2:].abs(), 1024, 0.01, gen)


@bench("stars sampling (baseline), 16 stars x 1024 points, 200 steps", repeats=1)
def sample_stars_baseline():
    diffusion.sample(models.SetStatsDenoiser().eval(), schedules.linear(200), (16, 1024, 2),
                     torch.Generator().manual_seed(0))


def best_time(fn, repeats: int) -> float:
    """Best wall-clock time of ``repeats`` calls of ``fn`` (after one warm-up call if repeats > 1)."""
    if repeats > 1:
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    runtime.seed_everything(0)
    print(f"{'hot path':62s} {'best s':>8s} {'budget s':>9s} {'rate':>28s}")
    for name, budget, repeats, per, fn in ROWS:
        seconds = best_time(fn, repeats)
        rate = ", ".join(f"{count / seconds:,.0f} {unit}/s" for unit, count in per)
        verdict = "" if budget is None else ("ok" if seconds <= budget else "OVER")
        print(f"{name:62s} {seconds:8.3f} {budget if budget else '':>9} {rate:>28s} {verdict}")


if __name__ == "__main__":
    main()
