"""Comparing *sets* of stars: the Chamfer distance between stars, MMD / COV / 1-NNA, memorisation, and
control sets with known faults.

:func:`chamfer_matrix`, :func:`mmd_cov_1nna` and :func:`memorisation` compare sets of stars with the
Chamfer distance as in Achlioptas et al. (2018), "Learning representations and generative models for
3D point clouds", with the MMD / COV / 1-NNA definitions of Yang et al. (2019), "PointFlow: 3D point
cloud generation with continuous normalizing flows". :func:`unit_stars`, :func:`subsample_metrics` and
:func:`power_controls`: the same metrics on stars centred and scaled to unit RMS radius (they see
shape, not place and size), as mean ± sd over disjoint subsamples, and control sets with known faults.

Stars are arrays ``(m, n, 2)``: m stars of n points each (numpy arrays or torch tensors).
"""
import numpy as np
import torch
from scipy import stats

from helpers import data, runtime
from helpers.stars import as_stars

BLOCK_ENTRIES = 2**19                    # squared distances per Chamfer block (fits in cache)


# --- Chamfer distance between stars --------------------------------------------------------


def lifted(points: np.ndarray, side: str) -> torch.Tensor:
    """Points (m, n, 2) lifted to 4-vectors whose dot products are squared distances.

    Left (x, |x|², 1) · right (−2y, 1, |y|²) = |x|² − 2x·y + |y|² = |x − y|².
    Returns float32 (m, n, 4).
    """
    x = torch.as_tensor(points, dtype=torch.float32)
    sq, one = (x * x).sum(-1, keepdim=True), torch.ones_like(x[..., :1])
    return torch.cat([x, sq, one] if side == "left" else [-2 * x, one, sq], dim=-1)


def chamfer_block(left: torch.Tensor, right: torch.Tensor, buffer: torch.Tensor) -> torch.Tensor:
    """Chamfer distances (p, q) between the stars of lifted blocks left (p, n, 4) and
    right (q, n', 4), using ``buffer`` (≥ p·n·q·n' floats) for the squared distances."""
    (p, n, _), (q, n2, _) = left.shape, right.shape
    sq = torch.mm(left.reshape(-1, 4), right.reshape(-1, 4).T,
                  out=buffer[:p * n * q * n2].view(p * n, q * n2)).view(p, n, q, n2)
    forward = sq.amin(dim=3).clamp_(min=0).mean(dim=1)                  # (p, q)
    backward = sq.amin(dim=1).clamp_(min=0).mean(dim=2)                 # (p, q)
    return forward + backward


def default_block(n: int, n2: int) -> int:
    """Stars per block side so that a block holds about :data:`BLOCK_ENTRIES` distances."""
    return max(1, round(np.sqrt(BLOCK_ENTRIES / (n * n2))))


def chamfer_matrix(a, b=None, block=None) -> np.ndarray:
    """Chamfer distance between every star of ``a: (m, n, 2)`` and of ``b: (k, n', 2)``: (m, k).

    CD(X, Y) = mean_{x∈X} min_{y∈Y} |x − y|² + mean_{y∈Y} min_{x∈X} |x − y|² (squared
    distances, both directions summed; Achlioptas et al. 2018, as used by PointFlow).
    ``b=None`` compares a with itself, computing only blocks on or above the diagonal (the
    diagonal is set to 0). Computed in float32 blocks of ``block`` × ``block`` stars
    (default :func:`default_block`); absolute error about 1e-7 · max |x|².
    """
    a = as_stars(a, "a")
    b_arr = a if b is None else as_stars(b, "b")
    block = default_block(a.shape[1], b_arr.shape[1]) if block is None else int(block)
    if block < 1:
        raise ValueError(f"block must be a positive integer, got {block!r}")
    left, right = lifted(a, "left"), lifted(b_arr, "right")
    buffer = torch.empty(block * a.shape[1] * block * b_arr.shape[1])
    out = np.zeros((len(a), len(b_arr)))
    with torch.no_grad(), runtime.threads(1):
        for i in range(0, len(a), block):
            for j in range(i if b is None else 0, len(b_arr), block):
                out[i:i + block, j:j + block] = chamfer_block(
                    left[i:i + block], right[j:j + block], buffer).numpy()
    return symmetrised(out) if b is None else out


def symmetrised(upper: np.ndarray) -> np.ndarray:
    """Square matrix whose blocks above the diagonal were computed: upper triangle mirrored,
    zero diagonal."""
    full = np.triu(upper, 1)
    return full + full.T


# --- set metrics ---------------------------------------------------------------------------


def subsample(points: np.ndarray, k, rng: np.random.Generator) -> np.ndarray:
    """k points per star drawn without replacement (m, k, 2); all points if k is None."""
    if k is None:
        return points
    if int(k) != k or not 1 <= k <= points.shape[1]:
        raise ValueError(f"points_per_star must be an integer in [1, {points.shape[1]}], got {k!r}")
    keep = rng.random(points.shape[:2]).argsort(axis=1)[:, :int(k)]
    return np.take_along_axis(points, keep[..., None], axis=1)


def one_nn_accuracy(d_gg: np.ndarray, d_gr: np.ndarray, d_rr: np.ndarray) -> float:
    """Leave-one-out 1-nearest-neighbour accuracy on generated (label 0) ∪ reference (label 1).

    ``d_gg (g, g)``, ``d_gr (g, r)``, ``d_rr (r, r)`` are Chamfer matrices. Each star is
    classified by the label of its nearest other star; ties go to the lowest index of the union
    (generated first). 0.5 is ideal; an exact copy of the reference scores 0 (every star's
    nearest neighbour is its twin in the other set).
    """
    union = np.block([[d_gg, d_gr], [d_gr.T, d_rr]])
    np.fill_diagonal(union, np.inf)
    label = np.r_[np.zeros(len(d_gg), bool), np.ones(len(d_rr), bool)]
    return float(np.mean(label[union.argmin(axis=1)] == label))


def mmd_cov_1nna(generated, reference, points_per_star=None, seed: int = 0) -> dict:
    """MMD-CD, COV-CD and 1-NNA-CD of generated stars (g, n, 2) against reference (r, n', 2).

    Definitions of Yang et al. (2019, PointFlow) with the Chamfer distance of
    :func:`chamfer_matrix`: MMD = mean over reference stars of the least CD to a generated
    star; COV = fraction of reference stars that are the nearest reference star of at least one
    generated star; 1-NNA = :func:`one_nn_accuracy` (ideal 0.5). ``points_per_star`` points
    per star are drawn with ``seed`` first (fewer points cost quadratically less).
    Returns dict(mmd, cov, nna) of floats.
    """
    rng = np.random.default_rng(seed)
    gen = subsample(as_stars(generated, "generated"), points_per_star, rng)
    ref = subsample(as_stars(reference, "reference"), points_per_star, rng)
    d_gr = chamfer_matrix(gen, ref)
    cov = len(np.unique(d_gr.argmin(axis=1))) / len(ref)
    nna = one_nn_accuracy(chamfer_matrix(gen), d_gr, chamfer_matrix(ref))
    return dict(mmd=float(d_gr.min(axis=0).mean()), cov=float(cov), nna=nna)


def memorisation(generated, train, test, points_per_star=None, seed: int = 0) -> dict:
    """Does the model copy training stars? Nearest training vs nearest test star per sample.

    Returns dict: nearest_train, nearest_test (g,) least Chamfer distance of each generated
    star to a training / test star, nearest_train_index (g,), and
    ratio = median(nearest_train) / median(nearest_test): ≪ 1 means copies of training stars.
    Without memorisation the ratio is ≈ 1 only when train and test hold equally many stars;
    otherwise compare with the same ratio for a fresh draw of real stars (its floor).
    """
    rng = np.random.default_rng(seed)
    gen = subsample(as_stars(generated, "generated"), points_per_star, rng)
    train = subsample(as_stars(train, "train"), points_per_star, rng)
    test = subsample(as_stars(test, "test"), points_per_star, rng)
    d_train, d_test = chamfer_matrix(gen, train), chamfer_matrix(gen, test)
    near_train, near_test = d_train.min(axis=1), d_test.min(axis=1)
    return dict(nearest_train=near_train, nearest_test=near_test,
                nearest_train_index=d_train.argmin(axis=1),
                ratio=float(np.median(near_train) / np.median(near_test)))


# --- shape-sensitive set metrics, their spread and their power -----------------------------


def unit_stars(points) -> np.ndarray:
    """Each star centred at its mean point and scaled to unit RMS radius: (m, n, 2) → (m, n, 2).

    What is left is shape and rotation: a Chamfer distance between unit stars no longer sees
    where a star is or how big it is, which dominate it on raw coordinates.
    """
    x = as_stars(points, "points")
    rel = x - x.mean(axis=1, keepdims=True)
    return rel / np.sqrt((rel**2).sum(-1).mean(1))[:, None, None]


def disjoint_groups(m: int, size: int) -> list:
    """Slices of the ⌊m / size⌋ disjoint consecutive groups of ``size`` stars out of m."""
    if int(size) != size or not 1 <= size <= m:
        raise ValueError(f"size must be an integer in [1, {m}], got {size!r}")
    return [slice(i * size, (i + 1) * size) for i in range(m // size)]


def subsample_metrics(generated, reference, size: int, points_per_star=256, seed: int = 0,
                      shape_only: bool = False) -> dict:
    """:func:`mmd_cov_1nna` over disjoint groups of ``size`` stars, as {metric: (mean, sd)}.

    ``generated: (g, n, 2)`` and ``reference: (r, n', 2)`` are cut into disjoint groups
    (:func:`disjoint_groups`); pair i compares generated group i with reference group i, for
    min(G, R) pairs, so that no group serves twice and the pairs are independent replicates
    (sd 0 for one pair). ``shape_only`` compares :func:`unit_stars` instead of raw coordinates.
    Also returns ``pairs``.
    """
    gen, ref = as_stars(generated, "generated"), as_stars(reference, "reference")
    if shape_only:
        gen, ref = unit_stars(gen), unit_stars(ref)
    gen_groups, ref_groups = disjoint_groups(len(gen), size), disjoint_groups(len(ref), size)
    pairs = min(len(gen_groups), len(ref_groups))
    runs = [mmd_cov_1nna(gen[gen_groups[i]], ref[ref_groups[i]], points_per_star, seed + i) for i in range(pairs)]
    spread = lambda v: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0
    out = {key: (float(np.mean([r[key] for r in runs])), spread([r[key] for r in runs]))
           for key in runs[0]}
    return dict(out, pairs=pairs)


def rings_like(points, seed: int = 0) -> np.ndarray:
    """Arm-less fuzzy rings with each star's centre and size: (m, n, 2).

    Ring j: centre = mean of star j, points at uniform angles with radius drawn from star j's
    own distribution of distances to that centre (so the same mean radius and radial spread).
    """
    x = as_stars(points, "points")
    rng = np.random.default_rng(seed)
    centre = x.mean(axis=1, keepdims=True)
    radius = np.linalg.norm(x - centre, axis=-1)
    radius = np.take_along_axis(radius, rng.integers(0, x.shape[1], radius.shape), axis=1)
    angle = rng.uniform(0.0, 2 * np.pi, radius.shape)
    return centre + radius[..., None] * np.stack([np.cos(angle), np.sin(angle)], axis=-1)


def rotated_about_centre(points, seed: int = 0) -> np.ndarray:
    """Each star rotated about its mean point by a uniform random angle: (m, n, 2)."""
    x = as_stars(points, "points")
    angle = np.random.default_rng(seed).uniform(0.0, 2 * np.pi, len(x))
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    centre = x.mean(axis=1, keepdims=True)
    rel = x - centre
    return centre + np.stack([c * rel[..., 0] - s * rel[..., 1], s * rel[..., 0] + c * rel[..., 1]], -1)


def stars_with_arms(arms, seed: int, n_points: int = 1024, jitter: float = 0.01, rotation: float | None = None) -> np.ndarray:
    """Stars of the data's generator (:func:`helpers.data.star_params`) but with the given arm
    counts ``arms: (m,)``: (m, n_points, 2). The rotation is kept as the same fraction of one arm, or,
    with ``rotation``, set to that angle for every star (one shape up to centre, size and inner ratio)."""
    arms = np.asarray(arms, dtype=np.int64)
    rng = np.random.default_rng(seed)
    params = data.star_params(len(arms), rng)
    turn = params["rotation"] * params["arms"] / arms if rotation is None else np.full(len(arms), float(rotation))
    outline = data.star_outline(arms, params["r_outer"], params["inner_ratio"], turn, params["centre"], n_points)
    return outline + rng.normal(0.0, jitter, outline.shape)


def power_controls(reference, n: int, seed: int = 0, n_points: int = 256) -> dict:
    """Control sets of n stars for testing what a set metric can see: {name: (n, n_points, 2)}.

    fresh real stars; real stars with 3× the jitter; arm-less fuzzy rings of the fresh stars'
    centre and size (:func:`rings_like`); arm counts uniform on 3–12; every star 5 arms; and the
    first n ``reference`` stars, each rotated about its centre (:func:`rotated_about_centre`).
    """
    rng = np.random.default_rng(seed)
    fresh = data.star_dataset(n, n_points, seed=10_000 + seed)[0].astype(np.float64)
    return {"fresh real": fresh,
            "3x jitter": data.star_dataset(n, n_points, jitter=0.03, seed=10_001 + seed)[0].astype(np.float64),
            "fuzzy rings": rings_like(fresh, seed),
            "arms 3-12": stars_with_arms(rng.integers(3, 13, n), 10_002 + seed, n_points),
            "all 5 arms": stars_with_arms(np.full(n, 5), 10_003 + seed, n_points),
            "rotated reference": rotated_about_centre(as_stars(reference, "reference")[:n], seed)}


def centre_check(centre: np.ndarray, half_width: float) -> tuple[float, float, float]:
    """Fitted star centres ``(m, 2)`` against the generator's law, uniform on the square
    [−half_width, half_width]²: the share outside the square and the Kolmogorov–Smirnov p-value of
    each coordinate against U(−half_width, half_width)."""
    centre = np.asarray(centre, dtype=np.float64)
    law = stats.uniform(-half_width, 2 * half_width).cdf
    outside = float((np.abs(centre) > half_width).any(axis=1).mean())
    return outside, float(stats.kstest(centre[:, 0], law).pvalue), float(stats.kstest(centre[:, 1], law).pvalue)
