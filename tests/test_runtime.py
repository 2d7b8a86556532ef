import hashlib
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from helpers import notebook, runtime


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "fig.png"
    target.write_bytes(b"old")

    def broken(tmp):
        open(tmp, "wb").write(b"half")
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        runtime.atomic_write(target, broken)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["fig.png"]


def test_save_arrays_is_byte_identical_and_round_trips(tmp_path):
    arrays = {"x": np.arange(7.0), "t": np.ones((3, 2), np.float32)}
    digests = []
    for name in ("a.npz", "b.npz"):
        runtime.save_arrays(tmp_path / name, **arrays)
        digests.append(hashlib.sha256((tmp_path / name).read_bytes()).hexdigest())
    assert digests[0] == digests[1]
    with np.load(tmp_path / "a.npz") as back:
        assert all(np.array_equal(back[k], v) for k, v in arrays.items())


def test_seed_everything_repeats_draws():
    g1 = runtime.seed_everything(3)
    a = torch.randn(4, generator=g1), torch.randn(4), np.random.rand(2)
    g2 = runtime.seed_everything(3)
    b = torch.randn(4, generator=g2), torch.randn(4), np.random.rand(2)
    assert all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b))
    assert torch.get_num_threads() == 2


def test_profiles():
    assert runtime.pick("smoke", smoke=1, report=2) == 1
    assert runtime.pick("full", smoke=1, report=2) == 2
    assert runtime.pick("lab", smoke=1, report=2) == 2               # the report's value where the lab gives none
    assert runtime.pick("lab", smoke=1, lab=3, report=2) == 3
    with pytest.raises(ValueError, match="no value given for profile 'smoke'"):
        runtime.pick("smoke", report=2)
    assert runtime.device("report").type == "cpu"
    for bad in (lambda: runtime.check_profile("fast"), lambda: runtime.pick("Report", report=1),
                lambda: runtime.seed_everything(0, threads=0)):
        with pytest.raises(ValueError, match="profile|threads"):
            bad()


def test_unknown_notebook_parameter_is_named(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("profile = 'report'\nT = 50")])
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    notebook.check_parameters(path, {"profile": "smoke", "T": 10})
    with pytest.raises(ValueError, match="profil"):
        notebook.check_parameters(path, {"profil": "smoke"})


def test_failing_notebook_leaves_previous_outputs_intact(tmp_path):
    """A cell that saves a figure and then fails: neither the executed copy nor figures/ change."""
    code = ("import matplotlib.pyplot as plt\nfrom helpers import plotting\n"
            "plotting.save_figure(plt.figure(), 'fig')\nraise RuntimeError('boom')")
    cells = [nbformat.v4.new_code_cell("profile = 'smoke'"), nbformat.v4.new_code_cell(code)]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    source, output, figures = tmp_path / "nb.ipynb", tmp_path / "out.ipynb", tmp_path / "figures"
    nbformat.write(nb, source)
    output.write_text("previous")
    figures.mkdir()
    (figures / "fig.png").write_bytes(b"previous")
    with pytest.raises(Exception, match="boom"):
        notebook.execute(source, output, figures, {"profile": "smoke"})
    assert output.read_text() == "previous" and (figures / "fig.png").read_bytes() == b"previous"


def test_lab_and_smoke_runs_never_write_over_the_published_figures(monkeypatch):
    for name in ("DDPM_FIGURES_DIR", "DDPM_CACHE_DIR"):
        monkeypatch.setenv(name, "set")     # recorded first, so that the teardown also undoes what route_outputs sets
        monkeypatch.delenv(name)
    assert runtime.route_outputs("report") == "" and runtime.figures_dir() == runtime.ROOT / "figures"
    assert "lab" in runtime.route_outputs("lab")
    assert runtime.figures_dir() == runtime.ROOT / "build" / "lab" / "figures"
    assert runtime.cache_dir() == runtime.ROOT / "build" / "lab" / "cache"
    monkeypatch.setenv("DDPM_FIGURES_DIR", "/elsewhere")                       # a runner that says where wins
    runtime.route_outputs("smoke")
    assert runtime.figures_dir() == Path("/elsewhere")


def test_threads_sets_the_count_inside_and_restores_it_after_an_error():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="inside"):
        with runtime.threads(1):
            assert torch.get_num_threads() == 1
            raise RuntimeError("inside")
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads must be an integer >= 1, got 0"):
        with runtime.threads(0):
            pass
