"""One training loop for every denoiser in the series, with snapshots and a weight cache.

Data is a tensor ``(N, ...)`` whose first axis holds the items of a batch: single points
``(N, 2)`` for the shapes, whole stars ``(N, n_points, 2)`` for notebook 03. Each item gets its
own t ~ U{1..T} and every coordinate its own noise (report §2.2; for stars, a common t per star,
§2.3). The loss is the mean squared error to the target ε (or v).
"""
import copy
import functools
import hashlib
import inspect
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from . import data, diffusion, models, runtime
from .runtime import atomic_write, cache_dir, log_to_terminal, note_checkpoint
from .schedules import Schedule


@dataclass
class TrainResult:
    """Per-epoch mean losses, snapshots {epoch: state_dict} and the final state.

    With an EMA, ``snapshots`` and ``state`` hold the averaged weights and ``raw_snapshots``
    the optimiser's own weights at the same epochs (the same run, so the two compare fairly).
    """
    losses: list = field(default_factory=list)
    snapshots: dict = field(default_factory=dict)
    state: dict | None = None
    raw_snapshots: dict = field(default_factory=dict)


def diffusion_loss(model, s: Schedule, x0: torch.Tensor, generator, prediction: str = "eps") -> torch.Tensor:
    """MSE between the network output at (x_t, t) and the target ε (or v), x_t from eq. 2."""
    diffusion.check_prediction(s, prediction)
    t = torch.randint(1, s.T + 1, x0.shape[:1], generator=generator).to(x0.device)
    eps = torch.randn(x0.shape, generator=generator).to(x0.device)
    x_t = diffusion.forward_sample(s, x0, t, eps)
    target = eps if prediction == "eps" else diffusion.velocity(s, x0, eps, t)
    return torch.mean((model(x_t, t) - target) ** 2)


def _draws_per_t(s: Schedule, data: torch.Tensor, n: int, generator):
    """For t = 1..T: n fresh x_0 from ``data: (N, d)`` and ε, yielded as (x_t: (n, d), t: (n,), ε: (n, d))."""
    data = torch.as_tensor(data, dtype=torch.float32)
    for t in range(1, s.T + 1):
        x0 = data[torch.randint(len(data), (n,), generator=generator)]
        eps = torch.randn(x0.shape, generator=generator)
        yield diffusion.forward_sample(s, x0, t, eps), torch.full((n,), t), eps


@torch.no_grad()
def loss_per_draw(predict, s: Schedule, data: torch.Tensor, n: int = 1000, generator=None) -> torch.Tensor:
    """The ε-prediction loss of each of n fresh draws at each t = 1..T: ``(T, n)``, squared error averaged over
    the coordinates. ``predict(x_t: (n, d), t: (n,)) -> ε̂`` is a trained network or the ideal predictor
    :func:`~helpers.diffusion.ideal_denoiser`; each t gets n fresh (x_0 from ``data: (N, d)``, ε) pairs. Two
    predictors given generators in the same state see the same draws, so their rows pair draw by draw."""
    return torch.stack([((predict(x_t, t) - eps) ** 2).mean(dim=1) for x_t, t, eps in _draws_per_t(s, data, n, generator)])


def loss_per_t(predict, s: Schedule, data: torch.Tensor, n: int = 1000, generator=None) -> torch.Tensor:
    """The ε-prediction loss at each t = 1..T separately: ``(T,)``, the mean of :func:`loss_per_draw`.
    The training loss is the average of this curve over t ~ U{1..T}."""
    return loss_per_draw(predict, s, data, n, generator).mean(dim=1)


def loss_gap(per_draw: torch.Tensor, reference: torch.Tensor):
    """Paired per-t comparison of two :func:`loss_per_draw` results on the same draws: ``(gap, se)``, both ``(T,)``.

    gap_t is the mean over the draws of the per-draw loss difference, the difference of the two
    :func:`loss_per_t` curves; se_t its standard error (sd of the differences / √n). Sharing the draws
    removes the noise the two losses have in common.
    """
    diffs = per_draw - reference
    return diffs.mean(dim=1), diffs.std(dim=1) / diffs.shape[1] ** 0.5


def check_finite(loss: torch.Tensor, epoch: int, lr: float):
    """Stop training with a clear message when the loss is NaN or infinite."""
    if not torch.isfinite(loss):
        raise FloatingPointError(f"training diverged: loss is {loss.item()} in epoch {epoch}; "
                                 f"lower the learning rate lr (now {lr}) or check the data for NaN")


def train(model, s: Schedule, data: torch.Tensor, epochs: int, batch_size: int, lr: float = 1e-3,
          generator=None, snapshot_epochs=(), prediction: str = "eps", progress: bool = True,
          points_per_item: int | None = None, ema_decay: float | None = None, augment=None,
          labels: torch.Tensor | None = None, label_dropout: float = 0.0, fused_adam: bool = False) -> TrainResult:
    """Adam on :func:`diffusion_loss`, shuffling ``data: (N, ...)`` every epoch.

    ``points_per_item`` trains on a random subset of each item's points (stars: fewer points
    per star per step); ``augment(x0, generator) -> x0`` transforms each batch (for example a
    random rotation). Snapshots are deep copies of the weights after the listed epochs.
    With ``ema_decay`` the snapshots and the final state hold an exponential moving average
    of the weights, θ̄ ← d_k·θ̄ + (1 − d_k)·θ after step k with d_k = min(d, (1 + k)/(10 + k))
    (Ho et al. 2020, App. B, with the usual warm-up so early snapshots are not the
    initialisation), and the model ends with them loaded.

    ``labels: (N,)`` trains a class-conditional model ``model(x_t, t, labels)``
    (:class:`~helpers.models.ClassConditionalDenoiser`); each label of a batch is replaced by "no class"
    with probability ``label_dropout`` (:func:`drop_labels`), so that the same network also learns the
    unconditional ε that classifier-free guidance needs (Ho & Salimans 2022, Alg. 1).

    ``fused_adam`` runs Adam's update as one fused kernel per step: the same algorithm, faster steps for these
    small networks on the CPU (measured in one of two workers: 1.72 → 1.30 ms at batch 32, 2.17 → 1.98 ms at 128),
    but not the same last bits as the default (``foreach``, which gives bitwise the numbers of PyTorch's
    one-tensor-at-a-time loop); over a run the difference grows like that between seeds, so it is part of the cache key.
    """
    _check_training(data, epochs, batch_size, lr, prediction, points_per_item)
    _check_labels(labels, label_dropout, len(data))
    # foreach: one call per step for all the parameters; on the CPU the same numbers as the default loop, 15 % faster
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, **({"fused": True} if fused_adam else {"foreach": True}))
    result, device = TrainResult(), next(model.parameters()).device
    average = EMA(model, ema_decay) if ema_decay else None
    for epoch in tqdm(range(1, epochs + 1), desc="epochs", disable=not progress, file=sys.__stderr__):
        order, total = torch.randperm(len(data), generator=generator), 0.0
        for batch in order.split(batch_size):
            x0 = _subsample(data[batch], points_per_item, generator)
            x0 = (augment(x0, generator) if augment else x0).to(device)
            net = model if labels is None else functools.partial(model, labels=drop_labels(labels[batch], label_dropout, generator).to(device))
            loss = diffusion_loss(net, s, x0, generator, prediction)
            check_finite(loss, epoch, lr)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            if average:
                average.update(model)
            total += loss.item() * len(batch)
        result.losses.append(total / len(data))
        if epoch in snapshot_epochs:
            result.snapshots[epoch] = copy.deepcopy((average or model).state_dict())
            if average:
                result.raw_snapshots[epoch] = copy.deepcopy(model.state_dict())
    result.state = copy.deepcopy((average or model).state_dict())
    model.load_state_dict(result.state)
    return result


class EMA:
    """An exponential moving average of a model's parameters (buffers are copied once, at the start)."""

    def __init__(self, model, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f"ema_decay must lie in (0, 1), got {decay!r}")
        self.decay, self.steps, self.shadow = decay, 0, copy.deepcopy(model)

    @torch.no_grad()
    def update(self, model):
        self.steps += 1
        decay = min(self.decay, (1 + self.steps) / (10 + self.steps))
        torch._foreach_lerp_(list(self.shadow.parameters()), list(model.parameters()), 1 - decay)

    def state_dict(self):
        return self.shadow.state_dict()


def ema_window(decay: float, steps: int) -> tuple[float, float]:
    """(d_k at the last step, mean age in steps of the averaged weights) after ``steps`` updates of :class:`EMA`.

    The average gives θ_j the weight (1 − d_j) ∏_{i>j} d_i; its mean age is Σ_j w_j (steps − j) / Σ_j w_j. Past the
    warm-up it tends to d/(1 − d); within it, to about steps/10.
    """
    k = np.arange(1, steps + 1)
    d = np.minimum(decay, (1 + k) / (10 + k))
    after = np.append(np.cumprod(d[::-1])[::-1][1:], 1.0)            # ∏_{i>j} d_i
    weights = (1 - d) * after
    return float(d[-1]), float((weights * (steps - k)).sum() / weights.sum())


def _subsample(items: torch.Tensor, points_per_item: int | None, generator) -> torch.Tensor:
    """A random subset of ``points_per_item`` points of each item ``(B, n, d)``; all if None."""
    if points_per_item is None:
        return items
    keys = torch.rand(items.shape[:2], generator=generator)
    idx = keys.argsort(dim=1)[:, :points_per_item]
    return torch.gather(items, 1, idx[..., None].expand(-1, -1, items.shape[-1]))


def drop_labels(labels: torch.Tensor, p: float, generator=None) -> torch.Tensor:
    """``labels: (B,)`` with each one replaced by −1 ("no class") with probability ``p``: label dropout."""
    return torch.where(torch.rand(labels.shape, generator=generator) < p, -1, labels)


def _check_labels(labels, label_dropout, n):
    """ValueErrors naming ``labels`` or ``label_dropout``."""
    if labels is None:
        return
    if labels.shape != (n,) or labels.dtype != torch.long or bool((labels < 0).any()):
        raise ValueError(f"labels must be a ({n},) tensor of non-negative integer classes, one per item; got shape "
                         f"{tuple(labels.shape)}, dtype {labels.dtype}")
    if not 0 <= label_dropout < 1:
        raise ValueError(f"label_dropout must lie in [0, 1), got {label_dropout!r}")


def _check_training(data, epochs, batch_size, lr, prediction, points_per_item):
    """ValueErrors naming the offending argument."""
    if not torch.isfinite(data).all():
        raise ValueError("data contains NaN or infinite values")
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    if prediction not in diffusion.PREDICTIONS:
        raise ValueError(f"prediction must be one of {diffusion.PREDICTIONS}, got {prediction!r}")
    if points_per_item is not None and not 1 <= points_per_item <= data.shape[1]:
        raise ValueError(f"points_per_item must be in 1..{data.shape[1]}, got {points_per_item!r}")


def cache_key(**config) -> str:
    """A short hash of every setting that determines the trained weights (JSON, sorted keys)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def describe(value):
    """A setting as it enters :func:`cache_key`: a function by its module (:func:`module_name`), name and a hash of its
    source, so that editing an augmentation retrains instead of loading weights trained with the old one."""
    if isinstance(value, torch.Tensor):
        return data.checksum(value.numpy())["sha256"]
    if not callable(value):
        return value
    source = hashlib.sha256(inspect.getsource(value).encode()).hexdigest()[:12]
    return f"{module_name(value)}.{value.__qualname__}:{source}"


def module_name(function) -> str:
    """The module of ``function`` by its import name, also when that module runs as ``python -m NAME`` (where Python
    calls it ``__main__``): so a worker of ``make star-seeds`` and the notebook compute the same cache key."""
    module = function.__module__
    spec = getattr(sys.modules.get(module), "__spec__", None)
    return spec.name if module == "__main__" and spec is not None else module


def cached(name: str, config: dict, run, retrain: bool = False) -> TrainResult:
    """``run()`` once per ``config``; later calls load ``build/cache/<name>-<key>.pt``.

    The training time goes to the terminal (the ``make figures`` log), never into a notebook.
    The file is written atomically, so an interrupted run never leaves a partial checkpoint.
    """
    path = cache_dir() / f"{name}-{cache_key(**config)}.pt"
    if path.exists() and not retrain:
        note_checkpoint(path, "loaded")
        return TrainResult(**torch.load(path, weights_only=True, map_location="cpu"))
    start = time.perf_counter()
    result = run()
    log_to_terminal(f"   trained {path.name} in {time.perf_counter() - start:.1f} s")
    atomic_write(path, lambda tmp: torch.save(vars(result), tmp))
    note_checkpoint(path, "trained")
    return result


def cached_tensor(name: str, config: dict, compute, retrain: bool = False) -> torch.Tensor:
    """``compute()`` (a tensor, for example samples of a trained model) once per ``config``; later calls load
    ``build/cache/<name>-<key>.pt``, written atomically like the checkpoints of :func:`cached`."""
    path = cache_dir() / f"{name}-{cache_key(**config)}.pt"
    if path.exists() and not retrain:
        note_checkpoint(path, "loaded")
        return torch.load(path, weights_only=True, map_location="cpu")
    value = compute()
    atomic_write(path, lambda tmp: torch.save(value, tmp))
    note_checkpoint(path, "trained")
    return value


# settings added to train() after weights were cached without them: left at this value they stay out of the cache key,
# so a key still names the same run
KEY_NEUTRAL = {"fused_adam": False}


def checkpoint_config(name: str, make_model, s: Schedule, data_: torch.Tensor, seed: int = 0, **train_kwargs) -> dict:
    """Everything that determines the weights :func:`train_cached` trains: its cache key's input."""
    return dict(name=name, model=repr(make_model()), beta=s.beta.tolist(), seed=seed,
                data=data.checksum(data_.numpy())["sha256"],
                **{k: describe(v) for k, v in train_kwargs.items()
                   if k != "progress" and not (k in KEY_NEUTRAL and v == KEY_NEUTRAL[k])})


def train_cached(name: str, make_model, s: Schedule, data_: torch.Tensor, *, seed: int = 0, retrain: bool = False,
                 device="cpu", **train_kwargs):
    """``make_model()`` trained by :func:`train` on ``device`` and ``data_``, cached under ``name``,
    every setting, the schedule and the data's checksum. Returns (CPU model in eval mode, result)."""
    config = checkpoint_config(name, make_model, s, data_, seed, **train_kwargs)

    def run():
        torch.manual_seed(seed)
        result = train(make_model().to(device), s, data_, generator=torch.Generator().manual_seed(seed), **train_kwargs)
        result.state = {k: v.cpu() for k, v in result.state.items()}
        for field_ in ("snapshots", "raw_snapshots"):
            setattr(result, field_, {e: {k: v.cpu() for k, v in st.items()} for e, st in getattr(result, field_).items()})
        return result
    result = cached(name, config, run, retrain)
    model = make_model()
    model.load_state_dict(result.state)
    return model.eval(), result


def train_shape(name: str, s: Schedule, *, epochs: int, batch_size: int, lr: float = 1e-3, seed: int = 0,
                snapshot_epochs=(), ema_decay: float | None = None, prediction: str = "eps",
                fused_adam: bool = False, retrain: bool = False, progress: bool = True):
    """The report's :class:`~helpers.models.PointDenoiser` trained on ``data.load_shape(name)``
    (:func:`train_cached`). Returns (model, result)."""
    return train_cached(f"shape-{name}", models.PointDenoiser, s, torch.as_tensor(data.load_shape(name)), seed=seed,
                        retrain=retrain, epochs=epochs, batch_size=batch_size, lr=lr,
                        snapshot_epochs=tuple(sorted(snapshot_epochs)), ema_decay=ema_decay, prediction=prediction,
                        fused_adam=fused_adam, progress=progress)


_WORKER = """
import json, sys, torch
from helpers import schedules, training
torch.set_num_threads(1)
for job in json.loads(sys.argv[1]):
    getattr(training, job["function"])(job["what"], schedules.Schedule(job["beta"]), progress=False, **job["kwargs"])
"""
PARALLEL = ("train_shape", "train_labelled_shapes")


def _cost(function: str, what, kwargs: dict) -> float:
    """The relative time of one :func:`train_in_parallel` job: optimiser steps × (1 + batch / b), with b = 150 for fused
    Adam and 330 for the foreach loop, × 1.2 for the class-conditional model. From the measured time per step in one of
    two workers: fused, 1.30 ms at batch 32 and 1.98 ms at batch 128 (1.55 ms class-conditional at 32); foreach, 1.72 ms
    and 2.17 ms."""
    items = len(data.load_shape(what)) if function == "train_shape" else len(what) * kwargs["per_class"]
    steps = kwargs["epochs"] * -(-items // kwargs["batch_size"])
    return steps * (1 + kwargs["batch_size"] / (150 if kwargs.get("fused_adam") else 330)) \
        * (1.2 if function == "train_labelled_shapes" else 1.0)


def train_in_parallel(jobs: list, workers: int = 2, retrain: bool = False):
    """Fill the weight cache with every job ``(function, what, schedule, keyword arguments)``, where
    ``function`` names :func:`train_shape` (``what``: a shape) or :func:`train_labelled_shapes` (``what``: the
    shapes), in ``workers`` processes with one thread each. On two cores that trains about 1.8 times the models
    per minute of one process with two threads (notebook 02's circle runs: 15 s each in one process, 16.5 s
    each in two workers at once); the layers are too small to share between threads. The longest jobs go
    first, each to the least loaded worker (:func:`_cost`). A cached job loads in a moment; the caller then loads every
    model by calling the same function with the same arguments."""
    if not (isinstance(workers, int) and workers >= 1):
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    for function, _, _, _ in jobs:
        runtime.check_choice("function", function, PARALLEL)
    loads, chunks = [0] * workers, [[] for _ in range(workers)]
    for function, what, s, kwargs in sorted(jobs, key=lambda job: _cost(job[0], job[1], job[3]), reverse=True):
        k = loads.index(min(loads))
        chunks[k].append(dict(function=function, what=what, beta=s.beta[1:].tolist(), kwargs={**kwargs, "retrain": retrain}))
        loads[k] += _cost(function, what, kwargs)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, json.dumps(chunk)], env=env) for chunk in chunks if chunk]
    status = [p.wait() for p in procs]
    if any(status):
        raise RuntimeError(f"a training worker failed (exit status {status}); its traceback is in the terminal")


def train_labelled_shapes(names, s: Schedule, *, per_class: int, epochs: int, batch_size: int, lr: float = 1e-3,
                          seed: int = 0, label_dropout: float = 0.1, ema_decay: float | None = None,
                          fused_adam: bool = False, retrain: bool = False, progress: bool = True):
    """One :class:`~helpers.models.ClassConditionalDenoiser` for every shape in ``names``, trained with label
    dropout on :func:`~helpers.data.labelled_shapes` (``per_class`` points each; :func:`train_cached`).
    Returns (model, result)."""
    points, labels = data.labelled_shapes(names, per_class)
    return train_cached("labelled-" + "-".join(names), functools.partial(models.ClassConditionalDenoiser, len(names)), s,
                        torch.as_tensor(points), seed=seed, retrain=retrain, epochs=epochs, batch_size=batch_size,
                        lr=lr, labels=torch.as_tensor(labels), label_dropout=label_dropout, ema_decay=ema_decay,
                        fused_adam=fused_adam, progress=progress)


SNAPSHOT_GRID = 20


def snapshot_grid(total_epochs: int, size: int = SNAPSHOT_GRID) -> list[int]:
    """The epochs 1..``total_epochs`` whose weights a run stores for evaluation: ``size`` evenly spaced, rounded
    (all of them when there are fewer). It depends on the training length only, so evaluating fewer of them
    never changes the cached weights."""
    return np.unique(np.linspace(1, total_epochs, min(size, total_epochs)).round().astype(int)).tolist()


def evaluation_epochs(total_epochs: int, n: int, size: int = SNAPSHOT_GRID) -> list[int]:
    """``n`` evenly spaced epochs of :func:`snapshot_grid` (its first and last included; all of it if n exceeds it)."""
    if not (isinstance(n, (int, np.integer)) and not isinstance(n, bool) and 2 <= n <= size):
        raise ValueError(f"n_evaluations must be an integer in 2..{size}, got {n!r}")
    grid = snapshot_grid(total_epochs, size)
    return [grid[i] for i in np.unique(np.linspace(0, len(grid) - 1, min(n, len(grid))).round().astype(int))]


def weights_id(model) -> str:
    """The sha256 of ``model``'s state dict (names and values, in order): equal exactly when the weights are."""
    digest = hashlib.sha256()
    for name, value in model.state_dict().items():
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def with_state(model, state: dict):
    """A copy of ``model`` holding ``state`` (the original is left as it is)."""
    model = copy.deepcopy(model)
    model.load_state_dict(state)
    return model.eval()


def snapshot_samples(model, s: Schedule, states: dict, n: int, seed: int = 0, prediction: str = "eps") -> dict:
    """{epoch: (n, 2) numpy samples} from each snapshot state, each with its own seeded generator."""
    return {epoch: diffusion.sample(with_state(model, state), s, (n, 2),
                                    torch.Generator().manual_seed(seed * 100_003 + epoch), prediction=prediction).numpy()
            for epoch, state in sorted(states.items())}
