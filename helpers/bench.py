"""``make bench``: time the hot paths on this machine and print one table row per path.

Each row is the best of a few repeats (seconds), beside the budget the issues set for it.
"""
import time

import torch

from . import diffusion, gaussian, runtime, schedules

ROWS = []


def bench(name: str, budget_s: float | None = None, repeats: int = 3, per: tuple[str, int] | None = None):
    """Register ``fn`` as a benchmark row: best wall time of ``repeats`` calls."""
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


def best_time(fn, repeats: int) -> float:
    """Best wall-clock time of ``repeats`` calls of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    runtime.seed_everything(0)
    print(f"{'hot path':58s} {'best s':>8s} {'budget s':>9s} {'rate':>18s}")
    for name, budget, repeats, per, fn in ROWS:
        seconds = best_time(fn, repeats)
        rate = f"{per[1] / seconds:,.0f} {per[0]}/s" if per else ""
        verdict = "" if budget is None else ("ok" if seconds <= budget else "OVER")
        print(f"{name:58s} {seconds:8.3f} {budget if budget else '':>9} {rate:>18s} {verdict}")


if __name__ == "__main__":
    main()
