"""One plotting style and deterministic, atomic figure files."""
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
    """Write ``fig`` to ``<figures dir>/<name>.png`` atomically, without time or version stamps."""
    path = figures_dir() / f"{name}.png"
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


def sample_grid(samples: dict, real, title: str, limit: float = 1.6):
    """One panel per entry of ``samples`` {label: (n, 2)}, real data faint behind each."""
    fig, axes = plt.subplots(1, len(samples), figsize=(2.2 * len(samples), 2.5), sharex=True, sharey=True)
    for ax, (label, points) in zip(np.atleast_1d(axes), samples.items()):
        scatter_points(ax, real, color=DATA_COLOR, size=1, alpha=0.5)
        scatter_points(ax, points, size=2)
        ax.set(title=label, xlim=(-limit, limit), ylim=(-limit, limit), xticks=[], yticks=[])
    fig.suptitle(title)
    return fig


def training_curves(losses, quality: dict, floor: dict, metrics=("sliced_w1", "chamfer"), marks=()):
    """Loss per epoch (left) and sample quality per epoch against its data floor (right).

    ``quality``: {epoch: {metric: value}}; ``floor``: {metric: (mean, sd)} drawn as a band.
    ``marks``: epochs to flag with a vertical line (for example the report's last epoch).
    """
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.2))
    left.plot(np.arange(1, len(losses) + 1), losses, lw=1)
    left.set(xlabel="epoch", ylabel="training loss (MSE)", yscale="log", title="Training loss")
    epochs = sorted(quality)
    for k, name in enumerate(metrics):
        mean, sd = floor[name]
        right.plot(epochs, [quality[e][name] for e in epochs], "o-", ms=3, color=f"C{k}", label=name)
        right.axhspan(mean - sd, mean + sd, color=f"C{k}", alpha=0.2, lw=0, label=f"{name} floor ± sd")
    right.set(xlabel="epoch", ylabel="distance to real data", yscale="log", title="Sample quality")
    for ax in (left, right):
        for epoch in marks:
            ax.axvline(epoch, color="0.5", ls=":", lw=1)
    right.legend(fontsize=8)
    return fig


def reverse_animation(trajectory, real, every: int = 5, hold: int = 8, limit: float = 3.0):
    """An animation of the reverse process: ``trajectory: (T + 1, n, 2)`` with x_t at index t."""
    from matplotlib.animation import FuncAnimation
    T = len(trajectory) - 1
    steps = list(range(T, -1, -every)) + ([0] if T % every else []) + [0] * hold
    fig, ax = plt.subplots(figsize=(3.2, 3.2))
    scatter_points(ax, real, color=DATA_COLOR, size=1, alpha=0.5)
    dots = ax.scatter(*trajectory[T].T, s=2, color=MODEL_COLOR, lw=0)
    ax.set(xlim=(-limit, limit), ylim=(-limit, limit), xticks=[], yticks=[])

    def frame(t):
        dots.set_offsets(trajectory[t])
        ax.set_title(f"t = {t}")
        return (dots,)
    return fig, FuncAnimation(fig, frame, frames=steps, blit=False)
