"""Distances between point clouds, and the floor each one has between two draws of real data.

Every metric takes two clouds ``a: (n, d)`` and ``b: (m, d)`` (numpy arrays or torch tensors)
and is vectorised; nearest neighbours come from :class:`scipy.spatial.cKDTree`.

* sliced Wasserstein-1 over a fixed set of directions (Bonneel et al., 2015);
* Chamfer distance, the mean nearest-neighbour distance taken both ways, and its median twin,
  which one far point cannot dominate (a single point at distance D adds D/(2n) to the mean);
* the count of points outside the data's range (its bounding box, widened by a margin);
* improved precision and recall with k-nearest-neighbour balls (Kynkäänniemi et al., 2019).

A metric alone says little: two independent draws of the *real* distribution of the same size
already differ. :func:`shape_floor` measures that floor (mean ± sd over several pairs of real
draws) and :func:`repeated_quality` measures a model the same way, over several sample sets.
"""
import numpy as np
from scipy import stats
from scipy.spatial import cKDTree

from . import data

METRICS = ("sliced_w1", "chamfer", "median_nn", "precision", "recall", "coverage")
LABELS = {"sliced_w1": "sliced W1", "chamfer": "Chamfer", "median_nn": "median NN distance", "precision": "precision",
          "recall": "recall", "coverage": "coverage", "outline": "distance to outline", "outside": "points outside the data's range"}
RANGE_MARGIN = 0.1   # the data's range: its bounding box widened by this share of its extent on every side
_CANDIDATES = 8   # lifted nearest neighbours re-checked exactly by inside_balls


def _points(x, name: str) -> np.ndarray:
    """``x`` as a finite float array ``(n, d)`` with n >= 1; a torch tensor is detached first."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=float)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty array of shape (n, d), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def _pair(a, b, names=("a", "b")) -> tuple[np.ndarray, np.ndarray]:
    """Both clouds checked by :func:`_points`, with the same dimension d."""
    a, b = _points(a, names[0]), _points(b, names[1])
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{names[1]} has dimension {b.shape[1]} but {names[0]} has {a.shape[1]}")
    return a, b


def _at_least(value: int, low: int, name: str) -> int:
    """``value`` if it is an integer >= ``low``, else a ValueError naming ``name``."""
    if int(value) != value or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


# --- sliced Wasserstein -------------------------------------------------------------------


def slicing_directions(d: int, n_directions: int = 256, seed: int = 0) -> np.ndarray:
    """Fixed unit directions ``(n_directions, d)``.

    In 2D they are evenly spaced half-turn angles ``k * pi / n_directions`` (a direction and its
    opposite give the same 1D distance), so ``seed`` is unused; in other dimensions they are
    normalised Gaussian vectors drawn from ``seed``.
    """
    n_directions = _at_least(n_directions, 1, "n_directions")
    if d == 2:
        angles = np.arange(n_directions) * np.pi / n_directions
        return np.stack([np.cos(angles), np.sin(angles)], axis=1)
    u = np.random.default_rng(seed).standard_normal((n_directions, d))
    return u / np.linalg.norm(u, axis=1, keepdims=True)


def wasserstein_1d(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Exact W1 between empirical 1D distributions, one per column: ``x: (n, k), y: (m, k) -> (k,)``.

    W1 = integral over t in (0, 1) of ``|F^-1(t) - G^-1(t)|`` (quantile form). Both quantile
    functions are constant between consecutive levels of the merged grid {i/n} ∪ {j/m}; the
    levels are kept as integers in units of 1/(n m) so that shared levels merge exactly.
    """
    n, m = len(x), len(y)
    levels = np.union1d(np.arange(n + 1) * m, np.arange(m + 1) * n)   # t * n * m
    left, width = levels[:-1], np.diff(levels) / (n * m)
    qx, qy = np.sort(x, axis=0)[left // m], np.sort(y, axis=0)[left // n]
    return width @ np.abs(qx - qy)


def sliced_wasserstein(a, b, n_directions: int = 256, seed: int = 0) -> float:
    """Sliced Wasserstein-1: mean over fixed unit directions u of W1(a·u, b·u).

    ``a: (n, d)``, ``b: (m, d)``; sizes may differ. Directions from :func:`slicing_directions`.
    """
    a, b = _pair(a, b)
    u = slicing_directions(a.shape[1], n_directions, seed)
    return float(wasserstein_1d(a @ u.T, b @ u.T).mean())


# --- nearest-neighbour metrics -------------------------------------------------------------


def nearest_distances(a, b) -> np.ndarray:
    """Distance from each point of ``a: (n, d)`` to its nearest point of ``b: (m, d)``: ``(n,)``."""
    a, b = _pair(a, b)
    return cKDTree(b).query(a, k=1)[0]


def chamfer(a, b) -> float:
    """Chamfer distance, symmetric and unsquared:
    ``0.5 * (mean_{x in a} min_{y in b} |x - y| + mean_{y in b} min_{x in a} |y - x|)``.

    ``a: (n, d)``, ``b: (m, d)``. (The stars' PointFlow Chamfer, squared and summed, is another.)
    """
    return 0.5 * float(nearest_distances(a, b).mean() + nearest_distances(b, a).mean())


def median_chamfer(a, b) -> float:
    """The robust twin of :func:`chamfer`: ``0.5 * (median_{x in a} min_{y in b} |x - y| + median_{y in b} min_{x in a} |y - x|)``.

    ``a: (n, d)``, ``b: (m, d)``. Moving one point of ``a`` arbitrarily far moves the first median by
    at most one rank; the second changes only where that point was some point's nearest neighbour,
    and then to another point's distance, never to the far one. A handful of runaways cannot decide
    a ranking, as they do the mean (:func:`chamfer`, which grows by D/(2n) per point at distance D).
    """
    return 0.5 * float(np.median(nearest_distances(a, b)) + np.median(nearest_distances(b, a)))


def outside_range(real, fake, margin: float = RANGE_MARGIN) -> int:
    """How many points of ``fake: (m, d)`` lie outside the data's range: the bounding box of
    ``real: (n, d)`` widened by ``margin`` times its extent on every side."""
    real, fake = _pair(real, fake, ("real", "fake"))
    low, high = real.min(axis=0), real.max(axis=0)
    pad = margin * (high - low)
    return int((((fake < low - pad) | (fake > high + pad)).any(axis=1)).sum())


def knn_radii(points: np.ndarray, k: int = 3) -> np.ndarray:
    """Distance from each point ``(n, d)`` to its k-th nearest *other* point of the set: ``(n,)``."""
    k = _at_least(k, 1, "k")
    if len(points) <= k:
        raise ValueError(f"k = {k} needs more than k points, got {len(points)}")
    return cKDTree(points).query(points, k=k + 1)[0][:, k]


def inside_balls(queries: np.ndarray, centres: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Whether each query ``(q, d)`` lies in at least one ball (centres ``(n, d)``, radii ``(n,)``).

    A query x is inside iff its smallest power distance ``|x - c|^2 - r^2`` is <= 0. Lifting each
    centre to ``(c, sqrt(R^2 - r^2))`` with R = max r, and x to ``(x, 0)``, makes the squared
    lifted distance equal power + R^2, so a nearest-neighbour search finds the smallest power.
    The lifted sums lose precision when R is large (outliers), so the power distances of the
    few nearest lifted candidates are recomputed in the original coordinates.
    """
    lifted = np.column_stack([centres, np.sqrt(radii.max()**2 - radii**2)])
    flat = np.column_stack([queries, np.zeros(len(queries))])
    ranks = np.arange(1, min(_CANDIDATES, len(centres)) + 1)
    near = cKDTree(lifted).query(flat, k=ranks)[1]                      # (q, candidates)
    power = ((queries[:, None] - centres[near])**2).sum(axis=-1) - radii[near]**2
    return (power <= 0).any(axis=1)


def precision_recall(real, fake, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al., 2019), ``real: (n, d)``, ``fake: (m, d)``.

    The real manifold is the union of balls around real points with radius the distance to the
    k-th nearest other real point; precision = fraction of fake points inside it. Recall = the
    fraction of real points inside the fake manifold, built the same way from the fakes.
    """
    real, fake = _pair(real, fake, ("real", "fake"))
    precision = inside_balls(fake, real, knn_radii(real, k)).mean()
    recall = inside_balls(real, fake, knn_radii(fake, k)).mean()
    return float(precision), float(recall)


def coverage(real, fake, k: int = 3) -> float:
    """Coverage (Naeem et al., 2020, eq. 4): the fraction of real points ``real: (n, d)`` whose own
    k-nearest-neighbour ball (radius to the k-th nearest other real point) holds at least one fake
    point of ``fake: (m, d)``. Unlike recall it is built from the real balls only, so samples spread
    wider than the data cannot raise it (blurring a too-narrow model can), and a missing part of the data
    lowers it."""
    real, fake = _pair(real, fake, ("real", "fake"))
    return float((cKDTree(fake).query(real, k=1)[0] <= knn_radii(real, k)).mean())


def shape_metrics(real, fake, k: int = 3) -> dict[str, float]:
    """All single-shape metrics of ``fake: (m, d)`` against ``real: (n, d)``, keyed by :data:`METRICS`."""
    real, fake = _pair(real, fake, ("real", "fake"))
    precision, recall = precision_recall(real, fake, k)
    return {"sliced_w1": sliced_wasserstein(real, fake), "chamfer": chamfer(real, fake),
            "median_nn": median_chamfer(real, fake), "precision": precision, "recall": recall,
            "coverage": coverage(real, fake, k)}


# --- 1D Gaussian fit -----------------------------------------------------------------------


def gaussian_fit(x, mean: float, std: float) -> dict[str, float]:
    """How well 1D samples ``x: (n,)`` match N(mean, std²): their moments and the
    Kolmogorov–Smirnov distance D with its p-value. ``ks_floor`` ≈ 0.8687/√n is E[D] for a
    sample of the target itself (the mean of the Kolmogorov distribution, √(π/2)·ln 2)."""
    x = _points(np.asarray(x).reshape(-1, 1), "x")[:, 0]
    ks = stats.kstest(x, "norm", args=(mean, std))
    return {"mean": float(x.mean()), "std": float(x.std()), "ks": float(ks.statistic),
            "p_value": float(ks.pvalue), "ks_floor": float(np.sqrt(np.pi / 2) * np.log(2) / np.sqrt(len(x)))}


# --- the 2D shapes of notebooks 02 and 04 ----------------------------------------------------


def fresh_shape(name: str, n: int, seed: int) -> np.ndarray:
    """A new draw ``(n, 2)`` from a shape's generating process (seeds >= 1000 never reuse the
    training data's)."""
    return data.SHAPE_BUILDERS[data.check_shape(name)](n=n, seed=1000 + seed)


def shape_quality(name: str, fake, seed: int = 0) -> dict[str, float]:
    """:func:`shape_metrics` of ``fake: (n, 2)`` against a fresh real draw of the same size, plus
    ``outside`` (:func:`outside_range` of the training data's range) and, for the circle and the
    square, ``outline``, the mean distance to the noiseless outline."""
    fake = _points(fake, "fake")
    quality = shape_metrics(fresh_shape(name, len(fake), seed), fake)
    quality["outside"] = float(outside_range(data.load_shape(name), fake))
    if name in data.OUTLINE_DISTANCE:
        quality["outline"] = float(data.true_outline_distance(name, fake).mean())
    return quality


def shape_floor(name: str, n: int, n_draws: int = 5, seed: int = 0) -> dict[str, tuple[float, float]]:
    """The floor of :func:`shape_quality`: its value for real draws of size n, ``{metric: (mean, sd)}``."""
    return repeated_quality(name, lambda k: fresh_shape(name, n, 100 + seed + k), n_draws, seed)


def floor_ratio_interval(name: str, n: int, draws: int = 20, level: float = 0.9, seed: int = 0) -> dict:
    """How far one real draw of size n strays from the floor: the central ``level`` interval of
    value / mean over ``draws`` real-vs-real pairs, ``{metric: (low, high)}``. A model whose ratio
    lies inside it cannot be told from data by that metric at this sample size."""
    runs = [shape_quality(name, fresh_shape(name, n, 300 + seed + k), seed + 400 + k) for k in range(draws)]
    tail = (1 - level) / 2
    return {key: tuple(np.quantile([r[key] for r in runs], [tail, 1 - tail]) / np.mean([r[key] for r in runs]))
            for key in runs[0] if key != "outside"}   # real data has (almost) no point outside its own range


def memorisation_ratio(name: str, fake, seed: int = 0) -> float:
    """Does ``fake: (n, 2)`` sit closer to the training points than to new data?

    median_{x in fake} min_{y in train} |x − y|, divided by the same distance to a fresh real draw of as many
    points as the training set (seeded by ``seed``): train against held-out data, as notebook 03 does for stars.
    Blur moves both distances alike and leaves the ratio near 1 (:func:`memorisation_null` gives its spread
    for real data); samples copied from the training set pull the numerator, and the ratio, down.
    """
    fake, train = _points(fake, "fake"), data.load_shape(name)
    reference = fresh_shape(name, len(train), 700 + seed)
    return float(np.median(nearest_distances(fake, train)) / np.median(nearest_distances(fake, reference)))


def memorisation_null(name: str, n: int, draws: int = 20, seed: int = 0) -> np.ndarray:
    """:func:`memorisation_ratio` of ``draws`` fresh real draws of n points, ``(draws,)``: where a generator
    that does not copy lands at this size (its quantiles give an interval; :func:`~helpers.verdicts.below_null_median`
    tests runs against it)."""
    return np.array([memorisation_ratio(name, fresh_shape(name, n, 800 + seed + k), seed + k) for k in range(draws)])


def class_adherence(fake, label: int, class_points) -> float:
    """The share of ``fake: (n, 2)`` nearer the points of class ``label`` than those of any other class in
    ``class_points`` (a list of ``(N_k, 2)`` arrays): how often a conditional sample lands on its own shape.
    Where the classes overlap, real data of the class itself scores below 1."""
    fake = _points(fake, "fake")
    if not (isinstance(label, (int, np.integer)) and 0 <= label < len(class_points)):
        raise ValueError(f"label must be an integer in 0..{len(class_points) - 1}, got {label!r}")
    distances = np.stack([nearest_distances(fake, _points(points, "class_points")) for points in class_points], axis=1)
    return float((distances.argmin(axis=1) == label).mean())


def per_set_quality(name: str, draw, sets: int, seed: int = 0) -> dict[str, np.ndarray]:
    """:func:`shape_quality` of ``sets`` sample sets ``draw(k) -> (n, 2)``, k = 0..sets-1, set k scored
    against real reference draw ``seed + 50 + k``: ``{metric: (sets,) array}``. Two samplers given the
    same ``seed`` share their reference draws set by set, so their values pair by k."""
    runs = [shape_quality(name, draw(k), seed + 50 + k) for k in range(_at_least(sets, 1, "sets"))]
    return {key: np.array([r[key] for r in runs]) for key in runs[0]}


def repeated_quality(name: str, draw, repeats: int = 5, seed: int = 0) -> dict[str, tuple[float, float]]:
    """:func:`per_set_quality` over ``repeats`` sample sets as ``{metric: (mean, sd)}``: the model's
    spread, comparable with :func:`shape_floor`."""
    return summarise(per_set_quality(name, draw, _at_least(repeats, 2, "repeats"), seed))


def summarise(per_set: dict) -> dict[str, tuple[float, float]]:
    """``{metric: (mean, sd)}`` of :func:`per_set_quality`'s ``{metric: (sets,) array}`` (sample sd)."""
    return {key: (float(values.mean()), float(values.std(ddof=1))) for key, values in per_set.items()}
