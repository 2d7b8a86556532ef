"""Fitting a star to each point set, and its crispness.

A star here is the polygon of :func:`helpers.data.star_outline`: 2·arms vertices at angles
``rotation + j·π/arms`` around ``centre``, radius ``r_outer`` at even j (tips) and
``r_outer·inner_ratio`` at odd j.

:func:`fit_stars` recovers (arms, r_outer, inner_ratio, rotation, centre) of every star from
its angular radius profile, matched against a bank of unit-star templates; ``residual`` = mean
distance of the points to the fitted outline (:func:`distance_to_star`) measures crispness, to be
compared with the data's own jitter. Set-level metrics are in :mod:`helpers.starsets`, the
parameter-by-parameter tests in :mod:`helpers.startests`.

The angular bins, centre estimate, radius profile and point-to-segment distance here are the
only ones in the series: :mod:`helpers.radial` encodes the model's latent with them.

Stars are arrays ``(m, n, 2)``: m stars of n points each (numpy arrays or torch tensors).
"""
from functools import lru_cache

import numpy as np

PROFILE_BINS = 180                       # angular bins of the radius profile
RATIO_GRID = np.linspace(0.2, 0.9, 36)   # inner ratios of the template bank
ROTATION_STEPS = 48                      # rotations per arm count in [0, 2π/arms)
BIN_SAMPLES = 4                          # directions averaged per bin for a template
REFINE_STEPS = 9                         # local grid per parameter when refining


# --- input checks --------------------------------------------------------------------------


def as_stars(x, name: str) -> np.ndarray:
    """``x`` as a finite float64 array (m, n, 2) with m, n >= 1, else a ValueError naming it."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3 or x.shape[2] != 2 or 0 in x.shape:
        raise ValueError(f"{name} must have shape (m, n, 2) with m, n >= 1, got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def _star_params(params: dict, m: int) -> dict:
    """The five star parameters of ``params`` as float64 arrays of m stars, checked."""
    shapes = {"arms": (m,), "r_outer": (m,), "inner_ratio": (m,), "rotation": (m,),
              "centre": (m, 2)}
    out = {}
    for key, shape in shapes.items():
        if key not in params:
            raise ValueError(f"params lacks {key!r}")
        out[key] = np.asarray(params[key], dtype=np.float64)
        if out[key].shape != shape:
            raise ValueError(f"params[{key!r}] must have shape {shape}, got {out[key].shape}")
    return out


def _arms_range(arms_range) -> np.ndarray:
    """Candidate arm counts as int64 (a,), each >= 2, else a ValueError naming arms_range."""
    arms = np.asarray(list(arms_range), dtype=np.int64)
    if arms.ndim != 1 or len(arms) == 0 or (arms < 2).any():
        raise ValueError(f"arms_range must hold integers >= 2, got {list(arms_range)!r}")
    return arms


# --- the star polygon ----------------------------------------------------------------------


def fold_into_sector(angle, arms, rotation) -> np.ndarray:
    """Angle folded into the star's fundamental sector [0, π/arms] (broadcasting arrays).

    The star is symmetric under rotation by 2π/arms and under reflection through each tip, so
    direction ``angle`` sees the same geometry as ``β = min(α, 2π/arms − α)`` with
    ``α = (angle − rotation) mod 2π/arms``: β = 0 points at a tip, β = π/arms at an inner
    vertex.
    """
    period = 2 * np.pi / arms
    alpha = np.mod(angle - rotation, period)
    return np.minimum(alpha, period - alpha)


def radial_function(angle, arms, inner_ratio, rotation) -> np.ndarray:
    """Radius of the unit star polygon (r_outer = 1, centre 0) along direction ``angle``.

    In the folded sector the outline is the edge from the tip (1, 0) to the inner vertex
    ρ(cos h, sin h), h = π/arms. Its line has normal n = (ρ sin h, 1 − ρ cos h), so the ray
    t(cos β, sin β) meets it at t = n·tip / n·(cos β, sin β). All arguments broadcast.
    """
    h = np.pi / arms
    beta = fold_into_sector(angle, arms, rotation)
    rho_sin = inner_ratio * np.sin(h)
    return rho_sin / (rho_sin * np.cos(beta) + (1 - inner_ratio * np.cos(h)) * np.sin(beta))


def bin_centres(bins: int) -> np.ndarray:
    """Centres of ``bins`` equal angular bins covering [−π, π): (bins,)."""
    return -np.pi + (np.arange(bins) + 0.5) * (2 * np.pi / bins)


def binned_radial_function(arms, inner_ratio, rotation, bins: int) -> np.ndarray:
    """Template profile: :func:`radial_function` averaged over each angular bin.

    Parameters broadcast to shape S; returns S + (bins,). Each bin average uses
    :data:`BIN_SAMPLES` evenly spaced directions inside the bin.
    """
    offsets = ((np.arange(BIN_SAMPLES) + 0.5) / BIN_SAMPLES - 0.5) * (2 * np.pi / bins)
    angle = bin_centres(bins)[:, None] + offsets                       # (bins, samples)
    expand = lambda p: np.asarray(p, dtype=np.float64)[..., None, None]
    return radial_function(angle, expand(arms), expand(inner_ratio), expand(rotation)).mean(-1)


def star_segments(params: dict):
    """The tip-to-inner-vertex edge of each star in its folded frame (centre at 0, tip on +x).

    Returns (tip (m, 2), inner (m, 2)) float64. Every other edge is an image of this one under
    the star's symmetries.
    """
    h = np.pi / params["arms"]
    tip = np.stack([params["r_outer"], np.zeros_like(h)], axis=-1)
    inner_radius = params["r_outer"] * params["inner_ratio"]
    return tip, inner_radius[:, None] * np.stack([np.cos(h), np.sin(h)], axis=-1)


def segment_distance(points, start, end) -> np.ndarray:
    """Distance from points to segments start–end, all ``(..., 2)`` broadcasting: (...)."""
    edge, rel = end - start, points - start
    t = np.clip((rel * edge).sum(-1) / np.maximum((edge * edge).sum(-1), 1e-300), 0.0, 1.0)
    return np.linalg.norm(rel - t[..., None] * edge, axis=-1)


def distance_to_star(points, params: dict) -> np.ndarray:
    """Exact distance of each point to its star's outline (all 2·arms edges): (m, n).

    ``points: (m, n, 2)``; ``params`` holds arms, r_outer, inner_ratio, rotation (m,) and
    centre (m, 2). The star's symmetry group (rotations by 2π/arms, reflections through tips)
    is generated by reflections, and for two points p, q of its fundamental sector |p − q| ≤
    |p − g q| for every symmetry g; so the distance to the whole outline equals the distance of
    the folded point to the single edge inside the sector (:func:`star_segments`).
    """
    points = as_stars(points, "points")
    params = _star_params(params, len(points))
    rel = points - params["centre"][:, None, :]
    radius = np.linalg.norm(rel, axis=-1)
    beta = fold_into_sector(np.arctan2(rel[..., 1], rel[..., 0]),
                            params["arms"][:, None], params["rotation"][:, None])
    folded = radius[..., None] * np.stack([np.cos(beta), np.sin(beta)], axis=-1)
    tip, inner = star_segments(params)
    return segment_distance(folded, tip[:, None], inner[:, None])


# --- radius profile and centre -------------------------------------------------------------


def polar_about(points: np.ndarray, centre: np.ndarray):
    """Radius and angle in [−π, π] of points (m, n, 2) about centre (m, 2): two (m, n)."""
    rel = points - centre[:, None, :]
    return np.linalg.norm(rel, axis=-1), np.arctan2(rel[..., 1], rel[..., 0])


def fill_circular(profile: np.ndarray, filled: np.ndarray) -> np.ndarray:
    """Empty bins of profile (m, K) linearly interpolated between the nearest filled bins,
    going round the circle; ``filled`` (m, K) bool needs one True per row. Returns (m, K)."""
    m, k = profile.shape
    tiled, position = np.tile(filled, 3), np.arange(3 * k)
    before = np.maximum.accumulate(np.where(tiled, position, -1), axis=1)[:, k:2 * k]
    after = np.minimum.accumulate(np.where(tiled, position, 3 * k)[:, ::-1], axis=1)[:, ::-1]
    after, values = after[:, k:2 * k], np.tile(profile, 3)
    low, high = (np.take_along_axis(values, i, axis=1) for i in (before, after))
    weight = (position[k:2 * k] - before) / np.maximum(after - before, 1)
    return np.where(filled, profile, low + weight * (high - low))


def radius_profile(points: np.ndarray, centre: np.ndarray, bins: int) -> np.ndarray:
    """Mean radius of the points in each of ``bins`` angular bins about centre: (m, bins).

    Bins follow :func:`bin_centres`; empty bins are filled by :func:`fill_circular`.
    """
    radius, angle = polar_about(points, centre)
    m = len(points)
    index = np.minimum(((angle + np.pi) * (bins / (2 * np.pi))).astype(np.int64), bins - 1)
    flat = (index + bins * np.arange(m)[:, None]).ravel()
    count = np.bincount(flat, minlength=m * bins).reshape(m, bins)
    total = np.bincount(flat, radius.ravel(), minlength=m * bins).reshape(m, bins)
    return fill_circular(total / np.maximum(count, 1), count > 0)


def profile_centroid(profile: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Area centroid (m, 2) of the region bounded by the profile (m, K) about centre (m, 2).

    The region is the fan of triangles (centre, p_k, p_k+1), p_k = centre + r_k u(θ_k): area
    ½ r_k r_k+1 sin(2π/K), centroid centre + (p_k + p_k+1 − 2 centre)/3. A star's area centroid
    is its centre, whatever the density of points along its outline.
    """
    ring = np.stack([np.cos(bin_centres(profile.shape[1])),
                     np.sin(bin_centres(profile.shape[1]))], axis=-1)
    corner = profile[..., None] * ring                                  # (m, K, 2)
    following = np.roll(corner, -1, axis=1)
    area = profile * np.roll(profile, -1, axis=1)                       # ∝ triangle areas
    offset = (area[..., None] * (corner + following)).sum(1) / (3 * np.maximum(
        area.sum(1), 1e-300))[:, None]                                  # 0 for a point
    return centre + offset


def estimate_centre(points: np.ndarray, bins: int, iterations: int = 2) -> np.ndarray:
    """Star centres (m, 2): the mean of the points, then ``iterations`` steps to the area
    centroid of the radius profile (:func:`profile_centroid`)."""
    centre = points.mean(axis=1)
    for _ in range(iterations):
        centre = profile_centroid(radius_profile(points, centre, bins), centre)
    return centre


# --- template matching ---------------------------------------------------------------------


@lru_cache(maxsize=4)
def template_bank(arms_range: tuple, bins: int) -> dict:
    """Binned unit-star profiles over arms × :data:`RATIO_GRID` × :data:`ROTATION_STEPS`
    rotations in [0, 2π/arms). Returns dict of arrays: arms, inner_ratio, rotation (T,),
    profiles (T, bins), sq_norm (T,) = |profile|²."""
    grids = [np.meshgrid([a], RATIO_GRID, np.arange(ROTATION_STEPS) * 2 * np.pi
                         / (a * ROTATION_STEPS), indexing="ij") for a in arms_range]
    arms, ratio, rotation = (np.concatenate([g[i].ravel() for g in grids]) for i in range(3))
    profiles = binned_radial_function(arms, ratio, rotation, bins)
    return dict(arms=arms.astype(np.int64), inner_ratio=ratio, rotation=rotation,
                profiles=profiles, sq_norm=(profiles**2).sum(1))


def scaled_errors(profile, templates, sq_norm):
    """Least-squares fit of profile ≈ R·template for every (star, template) pair.

    ``profile: (m, K)``, ``templates: (T, K)`` or per-star ``(m, T, K)``, ``sq_norm`` their
    squared norms. R = <r, g>/<g, g> in closed form; returns (scale, squared error), both (m, T).
    """
    dot = profile @ templates.T if templates.ndim == 2 else np.einsum("mk,mtk->mt", profile,
                                                                       templates)
    scale = dot / sq_norm
    return scale, (profile**2).sum(1, keepdims=True) - scale * dot


def pick_best(scale, error, *grids) -> tuple:
    """Per star (row), the scale and the grid values at the least error: arrays (m,)."""
    best = error.argmin(axis=1)
    row = np.arange(len(best))
    pick = lambda g: g[best] if g.ndim == 1 else g[row, best]
    return (scale[row, best],) + tuple(pick(g) for g in grids)


def coarse_fit(profile: np.ndarray, bank: dict) -> tuple:
    """Best bank template per star: (r_outer, arms, inner_ratio, rotation), each (m,)."""
    scale, error = scaled_errors(profile, bank["profiles"], bank["sq_norm"])
    return pick_best(scale, error, bank["arms"], bank["inner_ratio"], bank["rotation"])


def refine_fit(profile, arms, ratio, rotation, ratio_step, rotation_step) -> tuple:
    """Local grid search of inner ratio × rotation (± one step each, :data:`REFINE_STEPS`
    values) around each star's estimate, arms fixed. Returns (r_outer, inner_ratio, rotation)."""
    local = np.linspace(-1.0, 1.0, REFINE_STEPS)
    r = np.clip(ratio[:, None, None] + ratio_step[:, None, None] * local[:, None], 0.05, 1.0)
    phi = rotation[:, None, None] + rotation_step[:, None, None] * local
    r, phi = (np.broadcast_to(g, (len(arms), REFINE_STEPS, REFINE_STEPS)).reshape(len(arms), -1)
              for g in (r, phi))
    templates = binned_radial_function(arms[:, None], r, phi, profile.shape[1])
    scale, error = scaled_errors(profile, templates, (templates**2).sum(-1))
    return pick_best(scale, error, r, phi)


def fit_profiles(profile: np.ndarray, arms_range: tuple, rounds: int = 2) -> dict:
    """Star parameters (no centre) from radius profiles (m, K): coarse bank search, then
    ``rounds`` local refinements each zooming in by (REFINE_STEPS − 1)/2."""
    r_outer, arms, ratio, rotation = coarse_fit(profile, template_bank(arms_range, len(profile[0])))
    ratio_step = np.full(len(arms), RATIO_GRID[1] - RATIO_GRID[0])
    rotation_step = 2 * np.pi / (arms * ROTATION_STEPS)
    for _ in range(rounds):
        r_outer, ratio, rotation = refine_fit(profile, arms, ratio, rotation, ratio_step,
                                              rotation_step)
        ratio_step, rotation_step = (s * 2 / (REFINE_STEPS - 1) for s in (ratio_step,
                                                                           rotation_step))
    return dict(arms=arms, r_outer=r_outer, inner_ratio=ratio,
                rotation=np.mod(rotation, 2 * np.pi / arms))


def fit_stars(points, arms_range=range(3, 13), bins: int = PROFILE_BINS,
              chunk: int = 64) -> dict:
    """Fit one star polygon to each point set ``points: (m, n, 2)``.

    Centre: :func:`estimate_centre`. Shape: the radius profile (:func:`radius_profile`) is
    matched in least squares by R·g(θ; arms, ρ, φ) over the unit-star bank
    (:func:`template_bank`, R in closed form), then ρ and φ are refined locally.
    Returns dict of arrays over m stars: arms (int64), r_outer, inner_ratio,
    rotation ∈ [0, 2π/arms), centre (m, 2), and residual = mean distance of the star's points
    to the fitted outline (:func:`distance_to_star`): its crispness. ``chunk`` stars at a time.
    """
    points, arms_range = as_stars(points, "points"), tuple(_arms_range(arms_range).tolist())
    for name, value, low in (("bins", bins, 8), ("chunk", chunk, 1)):
        if not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    parts = [fit_chunk(points[i:i + chunk], arms_range, int(bins)) for i in range(0, len(points), chunk)]
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def fit_chunk(points: np.ndarray, arms_range: tuple, bins: int) -> dict:
    """:func:`fit_stars` on checked points (m, n, 2) float64."""
    centre = estimate_centre(points, bins)
    fit = fit_profiles(radius_profile(points, centre, bins), arms_range)
    fit["centre"] = centre
    fit["residual"] = distance_to_star(points, fit).mean(axis=1)
    return fit


# --- summaries of a fit --------------------------------------------------------------------


def rotation_error(fitted, true, arms) -> np.ndarray:
    """|fitted − true| as an angle modulo the star's period 2π/arms, in [0, π/arms]."""
    period = 2 * np.pi / np.asarray(arms, dtype=np.float64)
    diff = np.mod(np.asarray(fitted) - np.asarray(true), period)
    return np.minimum(diff, period - diff)


def parameter_recovery(fit: dict, params: dict) -> dict:
    """How well a fit recovers known star parameters (arrays over m stars).

    Returns dict: arms_exact (fraction with the right arm count), and per-star errors
    r_outer (relative), inner_ratio (absolute), rotation (radians, :func:`rotation_error`),
    centre (Euclidean distance).
    """
    truth = _star_params(params, len(fit["arms"]))
    return dict(
        arms_exact=float(np.mean(fit["arms"] == truth["arms"])),
        r_outer=np.abs(fit["r_outer"] / truth["r_outer"] - 1),
        inner_ratio=np.abs(fit["inner_ratio"] - truth["inner_ratio"]),
        rotation=rotation_error(fit["rotation"], truth["rotation"], truth["arms"]),
        centre=np.linalg.norm(fit["centre"] - truth["centre"], axis=1))


def parameter_summary(fit: dict, data_residual: float, threshold=None,
                      arms_range=range(3, 13)) -> dict:
    """A fit of m stars in a few numbers.

    ``data_residual``: median residual of real stars (the data's own crispness); a star is
    well fitted when its residual ≤ ``threshold`` (default 2 × data_residual).
    Returns dict: arms (a,) candidate counts, arm_fraction (a,) share of stars per count,
    mean_residual, median_residual, residual_ratio (median / data_residual), well_fitted.
    """
    arms, residual = _arms_range(arms_range), np.asarray(fit["residual"], dtype=np.float64)
    threshold = 2.0 * data_residual if threshold is None else threshold
    return dict(arms=arms, arm_fraction=(np.asarray(fit["arms"])[:, None] == arms).mean(0),
                mean_residual=float(residual.mean()), median_residual=float(np.median(residual)),
                residual_ratio=float(np.median(residual) / data_residual),
                well_fitted=float(np.mean(residual <= threshold)))


def jitter_from_distance(mean_distance: float) -> float:
    """σ of isotropic jitter from the mean distance d̄ of points to a straight outline:
    d̄ = σ·√(2/π), the mean |N(0, σ²)| across the edge."""
    return float(mean_distance / np.sqrt(2 / np.pi))


def jitter_from_residual(residual) -> float:
    """σ of isotropic jitter from fit residuals ``residual: (m,)`` (mean distance to the fitted
    outline per star): :func:`jitter_from_distance` of their median."""
    return jitter_from_distance(np.median(np.asarray(residual, dtype=np.float64)))
