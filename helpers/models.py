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

    def extra_repr(self) -> str:
        return f"size={2 * len(self.freqs)}, scale={self.scale}"

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


class ClassConditionalDenoiser(nn.Module):
    """A :class:`PointDenoiser` told which class a point belongs to: the label enters as a one-hot
    ``context``, and the label ``NO_CLASS`` (−1) as zeros, so one network is both the conditional
    ε_θ(x_t, t, c) and the unconditional ε_θ(x_t, t, ∅) that classifier-free guidance combines
    (Ho & Salimans 2022). ``forward(x: (n, 2), t: (n,), labels: (n,) in −1..n_classes−1) -> (n, 2)``.
    """
    NO_CLASS = -1

    def __init__(self, n_classes: int, emb: int = 32, hidden=(128, 256, 64), coord_scale: float = 25.0):
        super().__init__()
        if not (isinstance(n_classes, int) and n_classes >= 2):
            raise ValueError(f"n_classes must be an integer >= 2, got {n_classes!r}")
        self.n_classes = n_classes
        self.point = PointDenoiser(emb, hidden, coord_scale, context=n_classes)

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        labels = torch.as_tensor(labels).expand(len(x))
        if not bool(((labels >= self.NO_CLASS) & (labels < self.n_classes)).all()):
            raise ValueError(f"labels must lie in -1..{self.n_classes - 1} (-1: no class)")
        one_hot = nn.functional.one_hot(labels.clamp_min(0), self.n_classes).float()
        return self.point(x, t, one_hot * (labels != self.NO_CLASS)[:, None])


class SetStatsDenoiser(nn.Module):
    """The report's star model (§2.3): a :class:`PointDenoiser` whose every point also gets the
    mean and variance (x and y) of its whole noised star as four extra inputs.

    ``forward(x: (B, n, 2), t: (B,)) -> (B, n, 2)``; t is common to the points of a star.
    """

    def __init__(self, emb: int = 128, hidden=(1024, 512, 128), coord_scale: float = 25.0):
        super().__init__()
        self.point = PointDenoiser(emb, hidden, coord_scale, context=4)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        B, n, _ = x.shape
        stats = torch.cat([x.mean(1), x.var(1)], dim=-1)                       # (B, 4)
        context = stats[:, None].expand(B, n, 4).reshape(B * n, 4)
        out = self.point(x.reshape(B * n, 2), t.repeat_interleave(n), context)
        return out.view(B, n, 2)


class SpectralConv(nn.Module):
    """A global circular convolution done in Fourier space, the Fourier layer's F⁻¹(R·F(v)) of
    Li et al. 2021 ("Fourier neural operator"): the first ``modes`` harmonics of the C channels,
    Z_m = rfft(z)_m, are mixed by a learned complex C×C matrix per harmonic, Y_m = Z_m W_m; the
    rest are dropped.
    ``z: (B, C, K)`` → ``(B, C, K)``. A circular shift of z shifts the output alike."""

    def __init__(self, channels: int, modes: int):
        super().__init__()
        self.modes = modes
        self.weight = nn.Parameter(torch.randn(modes, channels, channels, 2) / (channels * math.sqrt(2)))

    def extra_repr(self) -> str:
        return f"modes={self.modes}"

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        harmonics = torch.fft.rfft(z, dim=-1)[..., :self.modes]                          # (B, C, modes)
        mixed = torch.einsum("bcm,mcd->bdm", harmonics, torch.view_as_complex(self.weight))
        return torch.fft.irfft(mixed, n=z.shape[-1], dim=-1)


class CircularBlock(nn.Module):
    """Residual block on a periodic signal ``h: (B, C, K)``: h + op(relu(norm(h) + shift)), the
    shift a per-channel map of the time embedding and the signal's global mean. ``op`` is a
    circular convolution with the given ``dilation`` (kernel 5), or with ``dilation="fourier"``
    a :class:`SpectralConv` over all K/2 + 1 harmonics of a K-periodic signal."""

    def __init__(self, channels: int, dilation, K: int, kernel: int = 5):
        super().__init__()
        if dilation != "fourier" and not (isinstance(dilation, int) and dilation >= 1):
            raise ValueError(f"layers must hold dilations (integers >= 1) or 'fourier', got {dilation!r}")
        self.op = (SpectralConv(channels, K // 2 + 1) if dilation == "fourier" else
                   nn.Conv1d(channels, channels, kernel, padding=dilation * (kernel // 2), dilation=dilation,
                             padding_mode="circular"))
        self.mix = nn.Linear(2 * channels, channels)
        self.norm = nn.GroupNorm(8, channels)

    def forward(self, h: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        shift = self.mix(torch.cat([temb, h.mean(-1)], dim=-1))[..., None]
        return h + self.op(torch.relu(self.norm(h) + shift))


class ProfileDenoiser(nn.Module):
    """Noise predictor for a star as (centre, radial profile): ``x: (B, 2 + K)`` → ``(B, 2 + K)``.

    Two networks side by side. The data's centre is independent of its profile, and the forward
    process noises each coordinate on its own, so q_t(c, r) = q_t(c)·q_t(r): the score, and with it
    the optimal ε (= −√(1−ᾱ_t)·∇log q_t) or v, splits into a part that depends on the noised
    centre alone and a part that depends on the noised profile alone. So the centre goes through
    its own :class:`PointDenoiser` (``centre_hidden``), and the profile, a periodic signal, through
    circular operations: a rotation of the star is a circular shift of its profile, and the network
    treats every rotation alike. ``layers`` lists the profile's blocks (:class:`CircularBlock`): a
    dilation 1, 2, 4, … each gives a local view that widens block by block; ``"fourier"`` a block
    that sees the whole circle at once (an arm count is a harmonic of the profile).
    """

    def __init__(self, K: int = 128, channels: int = 32, layers=(1, 2, 4, "fourier", 8, 16, 32, "fourier"),
                 centre_hidden=(128, 256, 64)):
        super().__init__()
        self.K = K
        self.centre = PointDenoiser(hidden=centre_hidden)
        self.time_embedding = nn.Sequential(SinusoidalEmbedding(channels), nn.Linear(channels, channels), nn.ReLU())
        self.inp = nn.Conv1d(1, channels, 1)
        self.blocks = nn.ModuleList(CircularBlock(channels, d, K) for d in layers)
        self.out = nn.Conv1d(channels, 1, 1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != 2 + self.K:
            raise ValueError(f"x must have shape (B, {2 + self.K}), got {tuple(x.shape)}")
        centre, profile = x[:, :2], x[:, 2:]
        temb = self.time_embedding(t)
        h = self.inp(profile[:, None])
        for block in self.blocks:
            h = block(h, temb)
        return torch.cat([self.centre(centre, t), self.out(h)[:, 0]], dim=-1)
