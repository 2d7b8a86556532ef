import math

import numpy as np
import pytest
import torch

from helpers import models, radial


def circle(n, radius=0.7, centre=(0.1, -0.2), jitter=0.0, seed=0):
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0, 2 * np.pi, n)
    pts = np.asarray(centre) + radius * np.stack([np.cos(angle), np.sin(angle)], 1)
    return (pts + rng.normal(0, jitter, pts.shape))[None]


def test_encode_decode_circle():
    c, r = radial.encode(circle(4000), K=64)
    assert torch.allclose(c, torch.tensor([[0.1, -0.2]], dtype=torch.float64), atol=0.02)
    assert float((r - 0.7).abs().max()) < 0.02
    pts = radial.decode(torch.tensor([[0.1, -0.2]]), torch.full((1, 64), 0.7), 500)
    dist = (pts[0].double() - torch.tensor([0.1, -0.2], dtype=torch.float64)).norm(dim=1)
    # on the inscribed 64-gon: between 0.7·cos(π/64) and 0.7
    assert float(dist.min()) >= 0.7 * math.cos(math.pi / 64) - 1e-5 and float(dist.max()) <= 0.7 + 1e-5
    gaps = (pts[0] - pts[0].roll(-1, 0)).norm(dim=1)   # evenly spaced by arc length
    assert float(gaps.max() - gaps.min()) < 2e-3


def test_empty_bins_are_interpolated():
    pts = circle(5)                      # 5 points, 32 bins: most bins empty
    c, r = radial.encode(pts, K=32)
    observed = (torch.as_tensor(pts[0]) - c).norm(dim=1)
    assert torch.isfinite(r).all()
    assert float(r.min()) >= float(observed.min()) - 1e-12 and float(r.max()) <= float(observed.max()) + 1e-12
    assert sum(bool(torch.isclose(r[0], o).any()) for o in observed) == 5   # filled bins keep their value


def test_jitter_estimate_recovers_sigma():
    assert abs(radial.jitter_estimate(circle(4096, jitter=0.02, seed=1), K=64) / 0.02 - 1) < 0.15


def test_rotate_and_reflect_is_a_symmetry():
    """Every augmented row must be some circular shift (and maybe reversal) of its profile, with
    the centre reflected and rotated by the same angle; found by brute force over all 2K maps."""
    K = 16
    x = torch.randn(6, 2 + K, dtype=torch.float64)
    y = radial.rotate_and_reflect(x, torch.Generator().manual_seed(0))
    for xi, yi in zip(x, y):
        found = False
        for flip in (False, True):
            base = xi[2:].flip(0) if flip else xi[2:]                   # r(−θ_k) = r[K−1−k]
            for shift in range(K):
                if torch.allclose(base.roll(shift), yi[2:]):
                    a = 2 * math.pi * shift / K
                    cx, cy = xi[0].item(), (-xi[1] if flip else xi[1]).item()
                    expect = [cx * math.cos(a) - cy * math.sin(a), cx * math.sin(a) + cy * math.cos(a)]
                    found = found or np.allclose(yi[:2].numpy(), expect)
        assert found


def test_profile_denoiser_is_rotation_equivariant_for_centred_stars():
    torch.manual_seed(0)
    net = models.ProfileDenoiser(K=32, channels=16, dilations=(1, 2, 4)).eval()
    x = torch.cat([torch.zeros(3, 2), torch.randn(3, 32)], 1)
    t = torch.tensor([5, 50, 150])
    out, out_shifted = net(x, t), net(torch.cat([x[:, :2], x[:, 2:].roll(7, 1)], 1), t)
    torch.testing.assert_close(out_shifted[:, 2:], out[:, 2:].roll(7, 1), rtol=1e-4, atol=1e-5)


def test_set_stats_denoiser_is_permutation_equivariant():
    torch.manual_seed(0)
    net = models.SetStatsDenoiser(emb=16, hidden=(32, 16)).eval()
    x, t = torch.randn(2, 10, 2), torch.tensor([3, 100])
    perm = torch.randperm(10)
    torch.testing.assert_close(net(x[:, perm], t), net(x, t)[:, perm])


def test_bad_embedding_size():
    with pytest.raises(ValueError, match="size"):
        models.SinusoidalEmbedding(7)
