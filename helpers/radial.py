"""A star-shaped point set as a radial profile: its centre and its radius r(θ_k) on K angles.

Encoding (points → profile) and decoding (profile → points) are fixed maps, not learned. A set
is star-shaped about its centre when every ray from the centre crosses its outline once; then
the profile keeps the outline, and a diffusion model on profiles (notebook 03) only has to
learn the *family* of outlines: arm count, rotation, radii.
"""
import math

import numpy as np
import torch


def profile_angles(K: int) -> torch.Tensor:
    """Bin centres θ_k = 2π(k + ½)/K, shape (K,)."""
    return (torch.arange(K, dtype=torch.float64) + 0.5) * (2 * math.pi / K)


def encode(points, K: int = 128):
    """Centre (m, 2) = mean of each set ``points: (m, n, 2)``; profile (m, K) = mean distance
    from the centre of the points in each of K equal angular bins (empty bins interpolated)."""
    x = torch.as_tensor(points, dtype=torch.float64)
    if x.dim() != 3 or x.shape[-1] != 2 or x.shape[1] == 0:
        raise ValueError(f"points must have shape (m, n, 2) with n >= 1, got {tuple(x.shape)}")
    if not isinstance(K, int) or K < 4:
        raise ValueError(f"K must be an integer >= 4, got {K!r}")
    centre = x.mean(1)
    d = x - centre[:, None]
    radius = d.norm(dim=-1)
    k = ((torch.atan2(d[..., 1], d[..., 0]) % (2 * math.pi)) * (K / (2 * math.pi))).long().clamp(max=K - 1)
    total = torch.zeros(len(x), K, dtype=torch.float64).scatter_add_(1, k, radius)
    count = torch.zeros(len(x), K, dtype=torch.float64).scatter_add_(1, k, torch.ones_like(radius))
    return centre, fill_empty_bins(total / count.clamp(min=1), count > 0)


def fill_empty_bins(profile: torch.Tensor, filled: torch.Tensor) -> torch.Tensor:
    """Replace empty bins of ``profile: (m, K)`` by circular linear interpolation of filled ones."""
    if bool(filled.all()):
        return profile
    out = profile.clone()
    K = profile.shape[1]
    for row in torch.nonzero(~filled.all(1)).flatten().tolist():
        known = torch.nonzero(filled[row]).flatten().numpy()
        out[row] = torch.as_tensor(np.interp(np.arange(K), known, profile[row, known].numpy(), period=K))
    return out


def decode(centre, profile, n_points: int, jitter: float = 0.0, generator=None) -> torch.Tensor:
    """``n_points`` per set, spread evenly by arc length (random phase) along the closed polygon
    through centre + r_k·(cos θ_k, sin θ_k), plus isotropic N(0, jitter²) noise: (m, n_points, 2)."""
    centre, profile = torch.as_tensor(centre, dtype=torch.float64), torch.as_tensor(profile, dtype=torch.float64)
    vertices = polygon(centre, profile)
    edges = torch.roll(vertices, -1, dims=1) - vertices                       # (m, K, 2)
    cumulative = torch.cumsum(edges.norm(dim=-1), 1)                          # (m, K)
    phase = torch.rand(len(centre), 1, generator=generator, dtype=torch.float64)
    s = (torch.arange(n_points, dtype=torch.float64) + phase) / n_points * cumulative[:, -1:]
    k = torch.searchsorted(cumulative, s).clamp(max=profile.shape[1] - 1)    # edge of each point
    start = cumulative.gather(1, k) - edges.norm(dim=-1).gather(1, k)
    frac = ((s - start) / edges.norm(dim=-1).gather(1, k).clamp(min=1e-12))[..., None]
    pick = k[..., None].expand(-1, -1, 2)
    points = vertices.gather(1, pick) + frac * edges.gather(1, pick)
    noise = torch.randn(points.shape, generator=generator, dtype=torch.float64)
    return (points + jitter * noise).float()


def rotate_and_reflect(x: torch.Tensor, generator=None) -> torch.Tensor:
    """Random symmetry of a batch of standardised stars ``x: (B, 2 + K)`` = (centre, profile):
    a rotation by a whole number of bins (circular shift of the profile, centre rotated alike)
    and, for half of them, the reflection y → −y (profile read backwards)."""
    B, K = x.shape[0], x.shape[1] - 2
    shift = torch.randint(0, K, (B,), generator=generator)
    flip = torch.rand(B, generator=generator) < 0.5
    idx = (torch.arange(K)[None, :] - shift[:, None]) % K                    # read r rotated by shift bins,
    idx = torch.where(flip[:, None], (K - 1 - idx) % K, idx)                 # of the reflected profile
    angle = shift.to(x.dtype) * (2 * math.pi / K)
    cx, cy = x[:, 0], torch.where(flip, -x[:, 1], x[:, 1])
    cx, cy = cx * angle.cos() - cy * angle.sin(), cx * angle.sin() + cy * angle.cos()
    return torch.cat([torch.stack([cx, cy], 1), x[:, 2:].gather(1, idx)], dim=1)


def polygon(centre, profile) -> torch.Tensor:
    """The K vertices centre + r_k·(cos θ_k, sin θ_k) of each profile: (m, K, 2)."""
    theta = profile_angles(profile.shape[1])
    return centre[:, None] + profile[..., None] * torch.stack([theta.cos(), theta.sin()], -1)


def outline_distance(points, centre, profile, chunk: int = 8) -> torch.Tensor:
    """Distance of each point ``(m, n, 2)`` to the closed polygon of its profile: (m, n).

    Works on ``chunk`` sets at a time (memory grows as chunk·n·K)."""
    if len(points) > chunk:
        return torch.cat([outline_distance(points[i:i + chunk], centre[i:i + chunk], profile[i:i + chunk], chunk)
                          for i in range(0, len(points), chunk)])
    x = torch.as_tensor(points, dtype=torch.float64)
    a = polygon(torch.as_tensor(centre, dtype=torch.float64), torch.as_tensor(profile, dtype=torch.float64))
    edge = torch.roll(a, -1, dims=1) - a                                        # (m, K, 2)
    rel = x[:, :, None] - a[:, None]                                            # (m, n, K, 2)
    u = ((rel * edge[:, None]).sum(-1) / (edge ** 2).sum(-1)[:, None].clamp(min=1e-12)).clamp(0, 1)
    return (rel - u[..., None] * edge[:, None]).norm(dim=-1).min(-1).values


def jitter_estimate(points, K: int = 128) -> float:
    """σ of isotropic jitter around the profile outline, from the mean point-to-outline distance
    d̄ = σ·√(2/π) (the mean |N(0, σ²)| across a straight edge)."""
    centre, profile = encode(points, K)
    return outline_distance(points, centre, profile).mean().item() / math.sqrt(2 / math.pi)
