"""Noise-prediction networks: the report's point-wise MLP (§2.2) and set-conditioned variants."""
import math

import torch
from torch import nn


class SinusoidalEmbedding(nn.Module):
    """Each scalar v becomes [sin(scale·v·ω_k), cos(scale·v·ω_k)], ω_k = 10000^(−k/(size/2 − 1)).

    ``v: (n,)`` → ``(n, size)``. The frequencies span four decades (Vaswani et al. 2017, §3.5);
    ``scale`` stretches inputs of order 1 (coordinates) onto them.
    """

    def __init__(self, size: int = 32, scale: float = 1.0):
        super().__init__()
        if size < 4 or size % 2:
            raise ValueError(f"size must be an even integer >= 4, got {size!r}")
        half = size // 2
        self.scale = scale
        self.register_buffer("freqs", torch.exp(-math.log(10000.0) * torch.arange(half) / (half - 1)))

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        angles = self.scale * v.float()[:, None] * self.freqs
        return torch.cat([angles.sin(), angles.cos()], dim=-1)


def mlp(sizes, out: int) -> nn.Sequential:
    """Fully connected layers ``sizes[0] → sizes[1] → … → out``, ReLU after all but the last."""
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(sizes[-1], out))


class PointDenoiser(nn.Module):
    """The report's network (§2.2): embed x, y and t (size ``emb`` each), concatenate, and map
    through fully connected layers ``hidden`` with ReLU to the 2D noise (or v) prediction.

    ``forward(x: (n, 2), t: (n,)) -> (n, 2)``. ``context`` extra per-point inputs (for example
    a set's statistics) are appended after the embeddings.
    """

    def __init__(self, emb: int = 32, hidden=(128, 256, 64), coord_scale: float = 25.0, context: int = 0):
        super().__init__()
        self.coord_embedding = SinusoidalEmbedding(emb, coord_scale)
        self.time_embedding = SinusoidalEmbedding(emb, 1.0)
        self.net = mlp([3 * emb + context, *hidden], 2)

    def features(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Concatenated embeddings of x, y and t: ``(n, 3·emb)``."""
        return torch.cat([self.coord_embedding(x[:, 0]), self.coord_embedding(x[:, 1]),
                          self.time_embedding(t)], dim=-1)

    def forward(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(x, t)
        return self.net(h if context is None else torch.cat([h, context], dim=-1))
