"""One plotting style and deterministic, atomic figure files."""
import textwrap
import warnings

import matplotlib.pyplot as plt
import numpy as np

from .runtime import atomic_write, figures_dir, save_arrays

STYLE = {
    "figure.dpi": 100, "savefig.dpi": 110, "font.size": 10, "axes.titlesize": 10,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
    "grid.alpha": 0.3, "legend.frameon": False, "image.cmap": "viridis",
    "svg.hashsalt": "ddpm", "path.simplify": False, "figure.constrained_layout.use": True,
}
DATA_COLOR, MODEL_COLOR = "0.75", "C0"


def use_style():
    """Apply the series' matplotlib style (fixed sizes and no random salts)."""
    plt.rcParams.update(STYLE)


def save_figure(fig, name: str):
    """Write ``fig`` to ``<figures dir>/<name>.png`` atomically, without time or version stamps. A layout
    that collapses (matplotlib's "constrained_layout not applied") is an error, not a broken figure."""
    path = figures_dir() / f"{name}.png"
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="constrained_layout not applied")
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", metadata={"Software": None}))


def save_figure_data(name: str, **arrays):
    """Save the arrays behind a figure as ``<figures dir>/data/<name>.npz`` for re-evaluation."""
    save_arrays(figures_dir() / "data" / f"{name}.npz", **arrays)


def save_animation(anim, name: str, fps: int = 12):
    """Write a matplotlib animation to ``<figures dir>/<name>.gif`` atomically."""
    from matplotlib.animation import PillowWriter
    path = figures_dir() / f"{name}.gif"
    atomic_write(path, lambda tmp: anim.save(tmp, writer=PillowWriter(fps=fps)))


def scatter_points(ax, points, color=MODEL_COLOR, size=2, alpha=0.8, **kwargs):
    """Scatter a (n, 2) point cloud on ``ax`` with equal axis scales."""
    ax.scatter(points[:, 0], points[:, 1], s=size, color=color, alpha=alpha, lw=0, **kwargs)
    ax.set_aspect("equal")
    return ax


def outside(points, limit: float) -> str:
    """"k of n beyond the axes (±limit), max |x| = …" for the points of ``points: (n, 2)`` beyond ±limit; "" if none."""
    points = np.asarray(points)
    far = np.abs(points).max(axis=1) > limit
    if not far.any():
        return ""
    return f"{far.sum()} of {len(points)} beyond the axes (±{limit:g}), max |x| = {np.abs(points).max():.3g}"


def note_outside(ax, points, limit: float, compact: bool = False):
    """Write :func:`outside` in the panel's lower left, so fixed limits never hide points silently;
    ``compact``: on two short lines and left out of the layout, so a narrow panel keeps its size."""
    note = outside(points, limit)
    if not note:
        return
    if compact:
        count, largest = note.split(", max ")
        note = f"{count}\nmax {largest}"
    text = ax.text(0.02, 0.02, note, transform=ax.transAxes, fontsize=7 if compact else 8, color="C3", va="bottom",
                   bbox=dict(facecolor="white", alpha=0.8, lw=0, pad=1))
    text.set_in_layout(not compact)


def points_panel(ax, points, real=None, limit: float = 1.6, title: str = "", compact: bool = False):
    """Model points over faint real data on fixed limits ±limit, labelled axes, points outside noted
    (``compact`` notes for narrow panels)."""
    if real is not None:
        scatter_points(ax, real, color=DATA_COLOR, size=1, alpha=0.5)
    scatter_points(ax, points, size=2)
    ax.set(title=title, xlim=(-limit, limit), ylim=(-limit, limit), xlabel="x", ylabel="y")
    note_outside(ax, points, limit, compact)
    return ax


def sample_grid(samples: dict, real, title: str, limit: float = 1.6):
    """One panel per entry of ``samples`` {label: (n, 2)}, real data faint behind each."""
    fig, axes = plt.subplots(1, len(samples), figsize=(2.3 * len(samples), 3.0), sharex=True, sharey=True)
    for ax, (label, points) in zip(np.atleast_1d(axes), samples.items()):
        points_panel(ax, points, real, limit, label, compact=True)
    fig.suptitle(textwrap.fill(title, width=int(2.3 * len(samples) * 11)))   # about 11 characters per inch of width
    return fig


def training_curves(losses, quality: dict, floor: dict, metrics=("sliced_w1", "chamfer"), marks=None):
    """Loss per epoch (left), sample quality per epoch as a ratio to its data floor (middle, log axis) and
    the same ratios over the last two thirds of the evaluated epochs on a linear axis (right), where late
    changes and the floor's band are visible.

    ``quality``: {epoch: {metric: value}}; ``floor``: {metric: (mean, sd)}: the ratio 1 is a line
    and the floor's own spread, sd/mean, a band around it. ``marks``: {label: epoch} flagged by a
    dotted vertical line (for example the report's last epoch).
    """
    from .metrics import LABELS
    fig, (left, right, zoom) = plt.subplots(1, 3, figsize=(14, 3.3))
    left.plot(np.arange(1, len(losses) + 1), losses, lw=1)
    left.set(xlabel="epoch", ylabel="training loss (MSE)", yscale="log", title="Training loss")
    epochs = sorted(quality)
    late = epochs[len(epochs) // 3:]
    for ax, shown in ((right, epochs), (zoom, late)):
        ax.axhline(1, color="k", lw=1, label="data floor (two real draws)")
        for k, name in enumerate(metrics):
            mean, sd = floor[name]
            ax.plot(shown, [quality[e][name] / mean for e in shown], "o-", ms=3, color=f"C{k}", label=LABELS[name])
            ax.axhspan(1 - sd / mean, 1 + sd / mean, color=f"C{k}", alpha=0.15, lw=0, label=f"floor ± sd, {LABELS[name]}")
    right.set(xlabel="epoch", ylabel="model / floor", yscale="log", title="Sample quality (ratio to the data floor)")
    zoom.set(xlabel="epoch", ylabel="model / floor", title=f"The same from epoch {late[0]}, linear axis")
    for label, epoch in (marks or {}).items():
        for ax in (left, right, zoom):
            ax.axvline(epoch, color="0.4", ls=":", lw=1)
        left.text(epoch, 1, f" {label}", transform=left.get_xaxis_transform(), fontsize=8, va="top", color="0.3")
    right.legend(fontsize=7)
    return fig


def reverse_animation(trajectory, real, every: int = 5, hold: int = 8, limit: float = 3.0):
    """An animation of the reverse process: ``trajectory: (T + 1, n, 2)`` with x_t at index t."""
    from matplotlib.animation import FuncAnimation
    T = len(trajectory) - 1
    steps = list(range(T, -1, -every)) + ([0] if T % every else []) + [0] * hold
    fig, ax = plt.subplots(figsize=(3.2, 3.2))
    scatter_points(ax, real, color=DATA_COLOR, size=1, alpha=0.5)
    dots = ax.scatter(*trajectory[T].T, s=2, color=MODEL_COLOR, lw=0)
    ax.set(xlim=(-limit, limit), ylim=(-limit, limit), xlabel="x", ylabel="y")

    def frame(t):
        dots.set_offsets(trajectory[t])
        note = outside(trajectory[t], limit)
        ax.set_title(f"t = {t}" + (f"\n{note}" if note else ""), fontsize=8)
        return (dots,)
    return fig, FuncAnimation(fig, frame, frames=steps, blit=False)
