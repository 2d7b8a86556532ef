import os
import sys

import numpy as np
import pytest
import torch
from torch import nn

from helpers import models, schedules, training
from conftest import assert_mc_close

S = schedules.linear(50)
DATA = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))


def small_model():
    torch.manual_seed(0)
    return models.PointDenoiser(emb=8, hidden=(16,))


def run(**kwargs):
    return training.train(small_model(), S, DATA, kwargs.pop("epochs", 2), 16,
                          generator=torch.Generator().manual_seed(1), progress=False, **kwargs)


def test_training_is_deterministic_and_keeps_snapshots():
    a, b = run(snapshot_epochs=(1,)), run(snapshot_epochs=(1,))
    assert len(a.losses) == 2 and set(a.snapshots) == {1}
    assert all(torch.equal(a.state[k], b.state[k]) for k in a.state)
    assert not all(torch.equal(a.state[k], a.snapshots[1][k]) for k in a.state)


def test_loss_falls_on_a_learnable_target():
    """A point mass at c: the best ε̂ is (x_t − √ᾱ_t c)/√(1 − ᾱ_t), reachable by the network."""
    data = torch.tensor([[0.5, -0.5]]).repeat(512, 1)
    torch.manual_seed(0)
    result = training.train(models.PointDenoiser(emb=16, hidden=(64, 64)), S, data, 30, 64, lr=3e-3,
                            generator=torch.Generator().manual_seed(0), progress=False)
    assert result.losses[-1] < 0.3 * result.losses[0], result.losses[::5]


class NaNModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))

    def forward(self, x, t):
        return x * self.w * float("nan")


def test_nan_loss_stops_training_with_a_clear_message():
    with pytest.raises(FloatingPointError, match="diverged.*lr"):
        training.train(NaNModel(), S, DATA, 1, 16, progress=False)


@pytest.mark.parametrize("kwargs, word", [({"epochs": 0}, "epochs"), ({"batch_size": 0}, "batch_size"),
                                          ({"lr": -1.0}, "lr"), ({"prediction": "x0"}, "prediction")])
def test_bad_arguments_are_named(kwargs, word):
    args = dict(epochs=1, batch_size=16, lr=1e-3, progress=False) | kwargs
    with pytest.raises(ValueError, match=word):
        training.train(small_model(), S, DATA, **args)


def test_points_per_item_subsamples_each_star():
    stars = torch.randn(4, 10, 2)
    sub = training._subsample(stars, 3, torch.Generator().manual_seed(0))
    assert sub.shape == (4, 3, 2)
    for star, kept in zip(stars, sub):   # every kept point comes from its own star, no repeats
        matches = (kept[:, None] == star[None]).all(-1)
        assert bool(matches.any(1).all()) and len(set(matches.float().argmax(1).tolist())) == 3


def test_cache_loads_without_retraining_and_retrain_forces(tmp_path, monkeypatch):
    monkeypatch.setenv("DDPM_CACHE_DIR", str(tmp_path))
    calls = []

    def fit():
        calls.append(1)
        return run()
    first = training.cached("toy", {"a": 1}, fit)
    again = training.cached("toy", {"a": 1}, fit)
    assert len(calls) == 1 and all(torch.equal(first.state[k], again.state[k]) for k in first.state)
    training.cached("toy", {"a": 2}, fit)
    training.cached("toy", {"a": 1}, fit, retrain=True)
    assert len(calls) == 3 and len(list(tmp_path.iterdir())) == 2   # one file per setting, no temporaries


def test_ema_run_keeps_the_raw_weights_of_the_same_run():
    """The raw snapshots of an EMA run equal the weights of the same run without the EMA."""
    def run(ema):
        torch.manual_seed(0)
        return training.train(small_model(), S, DATA, 2, 16, generator=torch.Generator().manual_seed(3),
                              snapshot_epochs=(1, 2), ema_decay=ema, progress=False)
    with_ema, without = run(0.9), run(None)
    for epoch in (1, 2):
        assert all(torch.equal(with_ema.raw_snapshots[epoch][k], without.snapshots[epoch][k]) for k in without.snapshots[epoch])
        assert not all(torch.equal(with_ema.snapshots[epoch][k], without.snapshots[epoch][k]) for k in without.snapshots[epoch])
    assert without.raw_snapshots == {}


def _load_augment(path, body):
    """Write module ``aug`` with ``def augment`` returning ``body`` at ``path`` and import it afresh."""
    import importlib.util
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"def augment(x, generator=None):\n    return {body}\n")
    spec = importlib.util.spec_from_file_location("aug", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.augment


def test_the_cache_key_changes_when_an_augmentation_is_edited(tmp_path):
    """The same module and function name with an edited body (two copies of ``aug.py``: the source cache
    of one process keeps a file's first text): the setting, and so the key, changes."""
    before = _load_augment(tmp_path / "v1" / "aug.py", "x")
    after = _load_augment(tmp_path / "v2" / "aug.py", "-x")
    assert before.__qualname__ == after.__qualname__
    assert training.describe(before) != training.describe(after)
    assert training.cache_key(augment=training.describe(before)) != training.cache_key(augment=training.describe(after))
    assert training.describe(before) == training.describe(_load_augment(tmp_path / "v3" / "aug.py", "x"))
    assert training.describe(3) == 3


def test_ema_is_the_hand_computed_weighted_average_past_its_warm_up():
    """θ̄_k = d_k θ̄_{k−1} + (1 − d_k) θ_k with d_k = min(d, (1 + k)/(10 + k)), checked against the explicit
    weights w_j = (1 − d_j) ∏_{i>j} d_i (and w_0 = ∏ d_i on the initial weights) over 400 steps with d = 0.98,
    which the warm-up reaches at k = (10d − 1)/(1 − d) = 440 — so also a run that ends before it, then one past it."""
    from helpers.training import EMA
    for steps, decay in ((400, 0.98), (600, 0.98)):
        model = torch.nn.Linear(1, 1, bias=False)
        thetas = torch.randn(steps + 1, generator=torch.Generator().manual_seed(steps)).double()
        with torch.no_grad():
            model.weight.fill_(thetas[0])
        average = EMA(model, decay)
        for k in range(1, steps + 1):
            with torch.no_grad():
                model.weight.fill_(thetas[k])
            average.update(model)
        d = [min(decay, (1 + k) / (10 + k)) for k in range(1, steps + 1)]
        expected, tail = 0.0, 1.0
        for k in range(steps, 0, -1):            # newest first: weight (1 − d_k) times the decays after it
            expected += (1 - d[k - 1]) * tail * thetas[k].item()
            tail *= d[k - 1]
        expected += tail * thetas[0].item()
        assert average.state_dict()["weight"].item() == pytest.approx(expected, rel=1e-5)
        assert (d[-1] == decay) == (steps > (10 * decay - 1) / (1 - decay))


def test_ema_window_matches_the_explicit_weights_and_its_limits():
    from helpers.training import ema_window
    d = [min(0.999, (1 + k) / (10 + k)) for k in range(1, 1921)]
    weights, tail = [], 1.0
    for k in range(1920, 0, -1):
        weights.append(((1 - d[k - 1]) * tail, 1920 - k))
        tail *= d[k - 1]
    age = sum(w * a for w, a in weights) / sum(w for w, _ in weights)
    last, mean_age = ema_window(0.999, 1920)
    assert last == pytest.approx(1921 / 1930) and mean_age == pytest.approx(age, rel=1e-9)
    assert 180 < mean_age < 200                      # about steps / 10 inside the warm-up
    assert ema_window(0.995, 30_000)[1] == pytest.approx(0.995 / 0.005, rel=0.01)   # d / (1 − d) past it


def test_evaluation_epochs_are_a_subset_of_the_stored_grid():
    grid = training.snapshot_grid(300)
    assert len(grid) == 20 and grid[0] == 1 and grid[-1] == 300
    # the old n_evaluations = 20 epochs, on which the published report weights were stored (their snapshot epochs enter
    # the cache key, so a different grid would retrain them)
    assert grid == np.unique(np.linspace(1, 300, 20).round().astype(int)).tolist()
    assert training.evaluation_epochs(300, 20) == grid
    few = training.evaluation_epochs(300, 5)
    assert len(few) == 5 and set(few) <= set(grid) and few[0] == 1 and few[-1] == 300
    assert training.snapshot_grid(4) == [1, 2, 3, 4] and training.evaluation_epochs(4, 20) == [1, 2, 3, 4]
    assert training.evaluation_epochs(300, np.int64(5)) == few        # a numpy integer is an integer
    for bad in (1, 21, 2.5, True):
        with pytest.raises(ValueError, match="n_evaluations must be an integer in 2..20"):
            training.evaluation_epochs(300, bad)


def test_label_dropout_replaces_labels_at_its_rate(gen):
    labels = torch.randint(0, 3, (200_000,), generator=gen)
    dropped = training.drop_labels(labels, 0.1, gen)
    kept = dropped != -1
    assert_mc_close(1 - kept.double().mean(), 0.1, 0.3, len(labels))          # Bernoulli(0.1): sd 0.3
    assert torch.equal(dropped[kept], labels[kept])


def test_conditional_training_checks_its_labels():
    s = schedules.linear(20, 1e-4, 0.02)
    x, model = torch.randn(10, 2), models.ClassConditionalDenoiser(2)
    with pytest.raises(ValueError, match="labels must be a \\(10,\\) tensor"):
        training.train(model, s, x, epochs=1, batch_size=5, labels=torch.zeros(9, dtype=torch.long), progress=False)
    with pytest.raises(ValueError, match="label_dropout must lie in"):
        training.train(model, s, x, epochs=1, batch_size=5, labels=torch.zeros(10, dtype=torch.long), label_dropout=1.0,
                       progress=False)
    # the labels are part of the cache key: other labels, other weights
    assert training.describe(torch.zeros(10, dtype=torch.long)) != training.describe(torch.ones(10, dtype=torch.long))


def test_parallel_workers_fill_the_cache_with_the_weights_of_a_one_thread_run(tmp_path, monkeypatch):
    monkeypatch.setenv("DDPM_CACHE_DIR", str(tmp_path))
    s = schedules.linear(50, 1e-4, 0.02)
    jobs = [("train_shape", "circle", s, dict(epochs=1, batch_size=250, seed=3)),
            ("train_labelled_shapes", ["circle", "square"], s, dict(per_class=200, epochs=2, batch_size=100, seed=4))]
    training.train_in_parallel(jobs)
    assert len(list(tmp_path.glob("*.pt"))) == 2
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for function, what, s_, kwargs in jobs:           # the same call in this process, retrained on one thread
            cached_model, _ = getattr(training, function)(what, s_, progress=False, **kwargs)
            fresh_model, _ = getattr(training, function)(what, s_, progress=False, retrain=True, **kwargs)
            for a, b in zip(cached_model.parameters(), fresh_model.parameters()):
                assert torch.equal(a, b), function
    finally:
        torch.set_num_threads(threads)
    with pytest.raises(ValueError, match="function must be one of"):
        training.train_in_parallel([("train", "circle", s, {})])


def test_class_conditional_denoiser_feeds_a_one_hot_label_and_zeros_for_no_class():
    torch.manual_seed(0)
    model = models.ClassConditionalDenoiser(3)
    x, t = torch.randn(4, 2), torch.tensor([1, 5, 9, 200])
    labels = torch.tensor([0, 2, -1, 1])
    by_hand = torch.tensor([[1., 0, 0], [0, 0, 1], [0, 0, 0], [0, 1, 0]])
    assert torch.equal(model(x, t, labels), model.point(x, t, by_hand))
    with pytest.raises(ValueError, match="labels must lie in -1..2"):
        model(x, t, torch.tensor([0, 3, 1, 1]))


class _LabelRecorder(nn.Module):
    """A conditional 'network' that records the (x_t, labels) pairs it is given and predicts zeros."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.seen = []

    def forward(self, x, t, labels):
        self.seen.append((x.detach().clone(), labels.clone()))
        return self.weight * x


def test_labelled_training_keeps_each_label_with_its_point_and_drops_at_the_rate():
    # a one-step schedule with β = 1e-8 leaves x_t within 1e-3 of x_0, so each x_t says which point, and class, it came from
    s = schedules.Schedule([1e-8])
    labels = torch.arange(600) % 3
    points = torch.stack([labels.float() * 10, torch.arange(600).float() / 100], dim=1)     # class c sits at x = 10 c
    model = _LabelRecorder()
    training.train(model, s, points, epochs=20, batch_size=50, generator=torch.Generator().manual_seed(0), progress=False,
                   labels=labels, label_dropout=0.2)
    x = torch.cat([x for x, _ in model.seen])
    given = torch.cat([c for _, c in model.seen])
    kept = given != -1
    assert torch.equal(given[kept], (x[kept, 0] / 10).round().long())              # every kept label is its own point's
    assert_mc_close(1 - kept.double().mean(), 0.2, 0.4, len(given))                # Bernoulli(0.2) dropout: sd 0.4


def test_the_foreach_adam_gives_the_weights_of_the_one_tensor_at_a_time_loop(monkeypatch):
    fast = run(ema_decay=0.9)
    loop = torch.optim.Adam
    monkeypatch.setattr(training.torch.optim, "Adam", lambda params, lr, foreach: loop(params, lr=lr, foreach=False))
    slow = run(ema_decay=0.9)
    assert all(torch.equal(fast.state[k], slow.state[k]) for k in fast.state)
    assert fast.losses == slow.losses


def test_weights_id_is_equal_exactly_for_equal_weights():
    model = small_model()
    copy = training.with_state(small_model(), model.state_dict())
    assert training.weights_id(copy) == training.weights_id(model)
    with torch.no_grad():
        first = next(copy.parameters())
        first.view(-1)[0] = torch.nextafter(first.view(-1)[0], torch.tensor(1.0))    # one weight moved by one ulp
    assert training.weights_id(copy) != training.weights_id(model)


def test_fused_adam_is_adam_to_float_precision_but_not_bitwise():
    """The fused kernel against the default foreach update (bitwise PyTorch's one-tensor-at-a-time loop, the test
    above; an independent implementation): the same update within float32 rounding over 8 steps, yet not the same
    bits on this CPU, which is why it enters the cache key."""
    fused, loop = run(fused_adam=True), run()
    for k in loop.state:
        torch.testing.assert_close(fused.state[k], loop.state[k], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fused.losses, loop.losses, rtol=1e-5)
    assert not all(torch.equal(fused.state[k], loop.state[k]) for k in loop.state)


def test_fused_adam_enters_the_cache_key_only_when_on():
    """A setting added after weights were cached (training.KEY_NEUTRAL) leaves the key of a run that does not use it
    unchanged, so those weights still load; switched on, it names a different run."""
    config = dict(name="x", make_model=small_model, s=S, data_=DATA, epochs=2, batch_size=16)
    plain = training.cache_key(**training.checkpoint_config(**config))
    assert training.cache_key(**training.checkpoint_config(**config, fused_adam=False)) == plain
    assert training.cache_key(**training.checkpoint_config(**config, fused_adam=True)) != plain


def test_describe_names_a_function_by_its_import_name_also_when_its_module_runs_as_main(tmp_path):
    """A module run as ``python -m NAME`` is ``__main__`` to Python; its functions must still enter a cache key under
    NAME, as they do when the module is imported (the notebook's case), or a worker's results would never be loaded."""
    import subprocess
    (tmp_path / "keyed.py").write_text("def augment(x):\n    return x\n\n\nif __name__ == '__main__':\n"
                                       "    from helpers import training\n    print(training.describe(augment))\n")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{training.runtime.ROOT}"}
    as_main = subprocess.run([sys.executable, "-m", "keyed"], env=env, capture_output=True, text=True, check=True)
    imported = subprocess.run([sys.executable, "-c", "import keyed; from helpers import training; "
                               "print(training.describe(keyed.augment))"], env=env, capture_output=True, text=True, check=True)
    assert as_main.stdout == imported.stdout and as_main.stdout.startswith("keyed.augment:")
