"""One plotting style and deterministic, atomic figure files."""
import matplotlib.pyplot as plt

from .runtime import atomic_write, figures_dir, save_arrays

STYLE = {
    "figure.dpi": 100, "savefig.dpi": 110, "font.size": 10, "axes.titlesize": 10,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
    "grid.alpha": 0.3, "legend.frameon": False, "image.cmap": "viridis",
    "svg.hashsalt": "ddpm", "path.simplify": False, "figure.constrained_layout.use": True,
}
DATA_COLOR, MODEL_COLOR, REFERENCE_COLOR = "0.75", "C0", "C3"


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
