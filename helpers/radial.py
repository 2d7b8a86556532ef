"""A star-shaped point set as a radial profile: its centre and its radius r(θ_k) on K angles.

Encoding (points → profile) and decoding (profile → points) are fixed maps, not learned. A set
is star-shaped about its centre when every ray from the centre crosses its outline once; then
the profile keeps the outline, and a diffusion model on profiles (notebook 03) only has to
learn the *family* of outlines: arm count, rotation, radii.

The geometry is shared with the star fitter and the data: angles, centre and profile come from
:mod:`helpers.stars` (:func:`~helpers.stars.bin_centres`, :func:`~helpers.stars.estimate_centre`,
:func:`~helpers.stars.radius_profile`, :func:`~helpers.stars.segment_distance`), and the walk
along the outline is :func:`helpers.data.walk_polygon`.
"""

import numpy as np
import torch

from helpers import data, stars


def _bins(K) -> int:
    """``K`` if it is an integer >= 4, else a ValueError naming it."""
    if not isinstance(K, (int, np.integer)) or K < 4:
        raise ValueError(f"K must be an integer >= 4, got {K!r}")
    return int(K)


def encode(points, K: int = 128):
    """Centre (m, 2) and profile (m, K) of each set ``points: (m, n, 2)``, float64 tensors.

    Centre: :func:`helpers.stars.estimate_centre` (area centroid of the profile); profile r_k:
    mean distance from the centre of the points in angular bin k, centred at
    θ_k = :func:`helpers.stars.bin_centres` (empty bins interpolated round the circle).
    """
    x = stars.as_stars(points, "points")
    K = _bins(K)
    centre = stars.estimate_centre(x, K)
    return torch.from_numpy(centre), torch.from_numpy(stars.radius_profile(x, centre, K))


def polygon(centre, profile) -> np.ndarray:
    """The K vertices centre + r_k·(cos θ_k, sin θ_k) of each profile, θ_k =
    :func:`helpers.stars.bin_centres`: ``centre (m, 2)``, ``profile (m, K)`` → (m, K, 2)."""
    centre, profile = (np.asarray(v, dtype=np.float64) for v in (centre, profile))
    theta = stars.bin_centres(profile.shape[1])
    return centre[:, None] + profile[..., None] * np.stack([np.cos(theta), np.sin(theta)], -1)


def _cross(a, b) -> np.ndarray:
    """z-component of the cross product of 2-vectors ``(..., 2)``."""
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def line_crossing(a, b, c, d) -> np.ndarray:
    """Where the line through a, b meets the line through c, d: a + s(b − a) with
    s = (c − a)×(d − c) / (b − a)×(d − c). All ``(..., 2)``; parallel lines give inf or nan."""
    with np.errstate(divide="ignore", invalid="ignore"):
        s = _cross(c - a, d - c) / _cross(b - a, d - c)
    return a + s[..., None] * (b - a)


def corner_polygon(centre, profile) -> np.ndarray:
    """:func:`polygon` with its corners restored: ``(m, K, 2)``.

    A bin that holds a corner of the outline averages the radius across it, so the polygon
    through the bin centres cuts every tip and fills every notch. Where r_k is a local extremum
    (r rising over the two bins before it and falling over the two after, or the reverse), vertex
    k moves to the crossing of the two edges beside it: the line through vertices k − 2, k − 1
    and the line through k + 1, k + 2. The move is kept only if the crossing lies inside the
    wedge between the rays θ_{k−1} and θ_{k+1}, on the extremum's side of r_k, and no further
    from r_k than the larger of its steps to r_{k±1}; otherwise (nearly parallel edges, noise)
    the vertex stays.
    """
    centre, profile = (np.asarray(v, dtype=np.float64) for v in (centre, profile))
    v = polygon(centre, profile)
    at = lambda a, j: np.roll(a, -j, axis=1)                    # at(a, j)[:, k] = a[:, k + j], round the circle
    rise = profile - at(profile, -1)                            # r_k − r_{k−1}
    peak = (at(rise, -1) >= 0) & (rise >= 0) & (at(rise, 1) <= 0) & (at(rise, 2) <= 0)
    notch = (at(rise, -1) <= 0) & (rise <= 0) & (at(rise, 1) >= 0) & (at(rise, 2) >= 0)
    crossing = line_crossing(at(v, -2), at(v, -1), at(v, 1), at(v, 2))
    c = centre[:, None]
    inside = (_cross(at(v, -1) - c, crossing - c) > 0) & (_cross(crossing - c, at(v, 1) - c) > 0)
    move = np.linalg.norm(crossing - c, axis=-1) - profile
    ok = (inside & (np.abs(move) <= np.maximum(np.abs(rise), np.abs(at(rise, 1))))
          & ((peak & (move >= 0)) | (notch & (move <= 0))))
    return np.where(ok[..., None], crossing, v)


def decode(centre, profile, n_points: int, jitter: float = 0.0, generator=None, corners: bool = True) -> torch.Tensor:
    """``n_points`` per set, spread evenly by arc length (random phase) along the closed polygon
    :func:`corner_polygon` (``corners=False``: :func:`polygon`), plus isotropic N(0, jitter²)
    noise: float32 tensor (m, n_points, 2).

    Arc length s becomes an edge position (edge index + fraction along it), walked by
    :func:`helpers.data.walk_polygon`.
    """
    vertices = (corner_polygon if corners else polygon)(centre, profile)
    m, K = vertices.shape[:2]
    length = np.linalg.norm(np.roll(vertices, -1, axis=1) - vertices, axis=-1)   # (m, K)
    end = np.cumsum(length, axis=1)                                              # arc length at each edge's end
    phase = torch.rand(m, 1, generator=generator, dtype=torch.float64).numpy()
    s = (np.arange(n_points) + phase) / n_points * end[:, -1:]                   # (m, n_points)
    edge = np.minimum(torch.searchsorted(torch.from_numpy(end), torch.from_numpy(s), right=True).numpy(),
                      K - 1)                                                     # first edge ending after s
    row = np.arange(m)[:, None]
    start = end[row, edge] - length[row, edge]
    position = edge + np.clip((s - start) / np.maximum(length[row, edge], 1e-12), 0.0, 1.0)
    points = data.walk_polygon(lambda j: vertices[row, j % K], position)
    noise = torch.randn(points.shape, generator=generator, dtype=torch.float64)
    return (torch.from_numpy(points) + jitter * noise).float()


def rotate_and_reflect(x: torch.Tensor, generator=None) -> torch.Tensor:
    """Random symmetry of a batch of standardised stars ``x: (B, 2 + K)`` = (centre, profile).

    The profile: each star turned about its own centre by a whole number of bins (circular shift)
    and, for half of them, reflected (read backwards: with bins centred at θ_k = −π + (k + ½)·2π/K,
    −θ_k = θ_{K−1−k}). The centre: moved by one of the eight symmetries of the square, drawn on its
    own (swap x and y, then flip the sign of each coordinate, each with probability ½). Both are
    exact symmetries of the data: the generator draws the rotation uniformly, the centre uniformly on
    a square (``data.STAR_CENTRE``), and the two independently, so any map of the profile's law onto
    itself combined with any map of the centre's law onto itself leaves the joint law unchanged.
    Turning the centre with the profile would not: a square turned by other than a quarter turn is
    not the square, and the centres would spread into a disc."""
    B, K = x.shape[0], x.shape[1] - 2
    shift = torch.randint(0, K, (B,), generator=generator)
    flip = torch.rand(B, generator=generator) < 0.5
    idx = (torch.arange(K)[None, :] - shift[:, None]) % K                    # read r rotated by shift bins,
    idx = torch.where(flip[:, None], (K - 1 - idx) % K, idx)                 # of the reflected profile
    swap = torch.rand(B, generator=generator) < 0.5
    sign = torch.where(torch.rand(B, 2, generator=generator) < 0.5, -1.0, 1.0).to(x.dtype)
    centre = torch.where(swap[:, None], x[:, :2].flip(1), x[:, :2]) * sign
    return torch.cat([centre, x[:, 2:].gather(1, idx)], dim=1)


def square_symmetry(centre: torch.Tensor, generator=None) -> torch.Tensor:
    """A random symmetry of the square for each centre of ``centre: (B, 2)``: the centre part of
    :func:`rotate_and_reflect`, with the same random draws (its profile a dummy of 4 bins)."""
    padded = torch.cat([centre, centre.new_zeros(len(centre), 4)], dim=1)
    return rotate_and_reflect(padded, generator)[:, :2]


def outline_distance(points, centre, profile, chunk: int = 8) -> np.ndarray:
    """Distance of each point ``(m, n, 2)`` to the closed polygon of its profile: (m, n).

    The least :func:`helpers.stars.segment_distance` over the K edges; ``chunk`` sets at a time
    (memory grows as chunk·n·K)."""
    points = stars.as_stars(points, "points")
    vertices = polygon(centre, profile)
    parts = [stars.segment_distance(points[i:i + chunk, :, None], vertices[i:i + chunk, None],
                                    np.roll(vertices[i:i + chunk], -1, axis=1)[:, None]).min(-1)
             for i in range(0, len(points), chunk)]
    return np.concatenate(parts)


def first_harmonic(profile) -> np.ndarray:
    """(m, 2) coefficients (a, b) of the least-squares fit r(θ_k) ≈ r̄ + a cos θ_k + b sin θ_k of each profile
    ``profile: (m, K)`` at the bin centres θ_k: a = (2/K) Σ_k r_k cos θ_k, b = (2/K) Σ_k r_k sin θ_k. A star of
    three or more arms has none (up to the aliasing of its binned harmonics, about 1e-5); a centre placed δ off the
    star's own adds about −δ to (a, b)."""
    r = np.asarray(profile, dtype=np.float64)
    theta = stars.bin_centres(r.shape[1])
    return 2.0 / r.shape[1] * np.stack([r @ np.cos(theta), r @ np.sin(theta)], axis=1)


def energy_above(profile, harmonic: int) -> np.ndarray:
    """(m,) the mean square of each profile ``profile: (m, K)`` carried by its harmonics above ``harmonic`` (Parseval:
    r_k = A cos(jθ_k) with j > ``harmonic`` gives A²/2): the profile's fine structure, where the binned jitter of a
    real star's points lives and a too-smooth generated profile falls short."""
    r = np.asarray(profile, dtype=np.float64)
    K = r.shape[1]
    power = np.abs(np.fft.rfft(r, axis=1)) ** 2 / K ** 2
    weight = np.where(np.arange(power.shape[1]) == K / 2, 1.0, 2.0)      # the Nyquist term has no mirror image
    return (power * weight)[:, harmonic + 1:].sum(axis=1)


def jitter_estimate(points, K: int = 128) -> float:
    """σ of isotropic jitter around the profile outline: :func:`helpers.stars.jitter_from_distance`
    of the mean point-to-outline distance. ``points: (m, n, 2)``."""
    centre, profile = encode(points, K)
    return stars.jitter_from_distance(outline_distance(points, centre, profile).mean())
