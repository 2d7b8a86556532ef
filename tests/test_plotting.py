"""helpers.plotting: a collapsed layout is an error, and the sample grid keeps narrow panels readable."""
import matplotlib
import numpy as np
import pytest

from helpers import plotting

matplotlib.use("Agg")


@pytest.fixture
def figures(tmp_path, monkeypatch):
    monkeypatch.setenv("DDPM_FIGURES_DIR", str(tmp_path))
    plotting.use_style()
    return tmp_path


def test_a_collapsed_layout_is_an_error_and_writes_nothing(figures):
    fig, axes = matplotlib.pyplot.subplots(1, 6, figsize=(6, 2))
    for ax in axes:
        ax.text(0.02, 0.02, "a note far wider than its panel " * 4, transform=ax.transAxes)
    with pytest.raises(UserWarning, match="constrained_layout not applied"):
        plotting.save_figure(fig, "collapsed")
    assert not (figures / "collapsed.png").exists()


def test_sample_grid_with_far_points_saves_and_notes_them(figures):
    rng = np.random.default_rng(0)
    points = rng.normal(size=(1000, 2)) * 3                       # most points beyond ±1.6
    fig = plotting.sample_grid({f"epoch {e}": points for e in range(6)}, rng.normal(size=(200, 2)), "six narrow panels")
    plotting.save_figure(fig, "grid")
    assert (figures / "grid.png").exists()
    far = int((np.abs(points).max(axis=1) > 1.6).sum())
    notes = [t.get_text() for t in fig.axes[0].texts]
    assert notes == [f"{far} of 1000 beyond the axes (±1.6)\nmax |x| = {np.abs(points).max():.3g}"]
