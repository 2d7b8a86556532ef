"""helpers.notebook: normalised outputs, typed parameters, interruption, the reproduction check."""
import ast
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import psutil
import pytest
from papermill.exceptions import PapermillExecutionError

from helpers import notebook
from helpers.runtime import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
FIRST = ROOT / "notebooks" / "01_1d_process.ipynb"
WRONG_TYPE = {bool: "yes please", int: "abc", float: "abc", str: 3, list: "abc", tuple: "abc", dict: "abc"}


def executed_cell(stdout_parts, start):
    """A code cell as papermill and nbclient leave it, printed text split into ``stdout_parts``."""
    cell = nbformat.v4.new_code_cell("print('a')\nprint('b')", execution_count=1, id="cell-1")
    cell.metadata.update(execution={"iopub.status.busy": start, "shell.execute_reply": start},
                         papermill={"duration": 0.1, "start_time": start, "end_time": start,
                                    "exception": False, "status": "completed"})
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text) for text in stdout_parts]
    cell.outputs += [nbformat.v4.new_output("stream", name="stderr", text="epochs:  40%|████   | 4/10 [00:01<00:02]"),
                     nbformat.v4.new_output("display_data", data={notebook.WIDGET_VIEW: {"model_id": start},
                                                                  "text/plain": "bar"})]
    return cell


def executed_notebook(stdout_parts, start):
    injected = nbformat.v4.new_code_cell("seed = 1")
    injected.metadata["tags"] = ["injected-parameters"]
    nb = nbformat.v4.new_notebook(cells=[injected, executed_cell(stdout_parts, start)])
    nb.metadata.update(widgets={"state": {start: {}}},
                       papermill={"duration": 1.0, "start_time": start, "end_time": start, "input_path": start,
                                  "output_path": f"/tmp/.nb.{start}.ipynb", "parameters": {"seed": 1}})
    return nb


def test_normalise_makes_runs_byte_identical():
    """Two runs that differ in timing, paths, widget ids and the split of printed text."""
    first = notebook.normalise(executed_notebook(["a\n", "b\n"], "2026-01-01T00:00:00"))
    second = notebook.normalise(executed_notebook(["a\nb\n"], "2026-06-30T12:34:56"))
    assert nbformat.writes(first) == nbformat.writes(second)
    nbformat.validate(first)
    cell = first.cells[1]
    assert [(o.output_type, o.text) for o in cell.outputs] == [("stream", "a\nb\n")]
    assert cell.metadata.papermill == {"exception": False, "status": "completed"} and "execution" not in cell.metadata
    assert first.metadata.papermill == {"parameters": {"seed": 1}} and "widgets" not in first.metadata
    assert first.cells[0].id == "injected-parameters"


def test_normalise_keeps_order_and_other_streams():
    """Only consecutive streams of one name merge; stderr that is not a progress bar stays."""
    cell = nbformat.v4.new_code_cell("")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="a\n"),
                    nbformat.v4.new_output("stream", name="stderr", text="UserWarning: x\n"),
                    nbformat.v4.new_output("stream", name="stdout", text="b\n"),
                    nbformat.v4.new_output("display_data", data={"text/plain": "fig"}),
                    nbformat.v4.new_output("stream", name="stdout", text="c\n")]
    outputs = notebook.normalise(nbformat.v4.new_notebook(cells=[cell])).cells[0].outputs
    assert [o.get("text", o.get("data")) for o in outputs] == ["a\n", "UserWarning: x\n", "b\n", {"text/plain": "fig"}, "c\n"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_parameter_is_checked_by_type(path):
    """Each parameter accepts its default and rejects a value of another type, naming itself."""
    parameters = notebook.papermill_parameters(path)
    assert parameters
    for name, info in parameters.items():
        default = ast.literal_eval(info["default"])
        assert notebook.check_parameters(path, {name: default}) == {name: default}
        with pytest.raises(ValueError, match=f"^{name} must be {notebook.TYPE_NAMES[type(default)]}, got"):
            notebook.check_parameters(path, {name: WRONG_TYPE[type(default)]})


def test_parameter_types_messages_and_conversions():
    assert notebook.check_parameters(FIRST, {"m": 2, "p": "1e-1", "T": 10}) == {"m": 2.0, "p": 0.1, "T": 10}
    for parameters, message in (({"seed": "abc"}, "seed must be an int, got 'abc'"),
                                ({"seed": 1.5}, "seed must be an int, got 1.5"),
                                ({"seed": True}, "seed must be an int, got True"),
                                ({"m": "three"}, "m must be a float, got 'three'"),
                                ({"profile": 1}, "profile must be a str, got 1")):
        with pytest.raises(ValueError) as err:
            notebook.check_parameters(FIRST, parameters)
        assert str(err.value) == message


def test_command_line_names_the_parameter():
    """``-p seed abc`` stops before the kernel starts, with the parameter's name and exit status 1."""
    run = subprocess.run([sys.executable, "-m", "helpers.notebook", str(FIRST), "-p", "seed", "abc",
                          "--output", "/nonexistent/nb.ipynb"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and run.stderr.strip() == "error: seed must be an int, got 'abc'"


@pytest.mark.parametrize("name, parameters, message", [
    ("01_1d_process", {"beta_T": 1.5}, "beta_T must lie in"),
    ("02_2d_shapes", {"extra_training": 0}, "extra_training must be an integer >= 1"),
    ("03_stars", {"profile": "fast"}, "profile must be one of"),
    ("04_schedule_ablation", {"T": 0}, "T must be an integer >= 1"),
], ids=["01", "02", "03", "04"])
def test_out_of_range_values_are_named_and_publish_nothing(tmp_path, name, parameters, message):
    """Values of the right type that a helper rejects: the run fails naming the parameter."""
    output, figures = tmp_path / "out.ipynb", tmp_path / "figures"
    with pytest.raises(PapermillExecutionError, match=message):
        notebook.execute(ROOT / "notebooks" / f"{name}.ipynb", output, figures, {"profile": "smoke", **parameters})
    assert not output.exists() and not any(figures.rglob("*"))


def test_terminal_output_stays_out_of_the_notebook(tmp_path, capfd, monkeypatch):
    """Printed text split over messages, a training progress bar and a wall-clock time, in a real kernel."""
    monkeypatch.delenv("PYTEST_CURRENT_TEST")   # under pytest, ipykernel would not capture its stderr anyway
    cells = [nbformat.v4.new_code_cell("epochs = 2"), nbformat.v4.new_code_cell(
        "import torch\nfrom helpers import models, runtime, schedules, training\n"
        "runtime.log_to_terminal('trained in 1.2 s')\n"
        "for i in range(3):\n    print(i, flush=True)\n"
        "_ = training.train(models.PointDenoiser(), schedules.linear(10), torch.randn(8, 2), epochs, batch_size=4)")]
    cells[0].metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "language": "python",
                                                                        "display_name": "Python 3"}})
    source, output = tmp_path / "nb.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, source)
    notebook.execute(source, output, tmp_path / "figures", {})
    outputs = nbformat.read(output, as_version=4).cells[1].outputs
    assert [(o.output_type, o.name, o.text) for o in outputs] == [("stream", "stdout", "0\n1\n2\n")]
    terminal = capfd.readouterr().err
    assert "trained in 1.2 s" in terminal and "epochs: 100%" in terminal and "TCP" not in terminal


def published_copy(folder):
    """Notebook 01 published into ``folder`` as ``make figures`` does in notebooks/: (notebook, figures)."""
    copy, figures = folder / "notebooks" / FIRST.name, folder / "figures"
    copy.parent.mkdir(parents=True)
    shutil.copy(FIRST, copy)
    notebook.execute(copy, copy, figures, {"profile": "smoke"})
    return copy, figures


def tree(folder):
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_check_reproduces_and_names_what_differs(tmp_path):
    """A re-run of a published notebook reproduces it; a changed printed value, a changed, a stale and a
    missing figure are named, another notebook's figure is not."""
    copy, figures = published_copy(tmp_path / "repo")
    changed_value, stale, missing, other = (figures / "data" / "01_marginals.npz", figures / "01_old.png",
                                            figures / "01_x0_histogram.png", figures / "02_other.png")
    changed_value.write_bytes(changed_value.read_bytes()[:-1] + b"!")
    stale.write_bytes(b"no notebook writes this")
    other.write_bytes(b"another notebook's figure")
    missing.unlink()
    nb = nbformat.read(copy, as_version=4)
    printed = next(o for cell in nb.cells for o in cell.get("outputs", []) if o.output_type == "stream")
    printed.text = printed.text.replace("T=50", "T=51")
    assert "T=51" in printed.text
    nbformat.write(nb, copy)
    before = tree(tmp_path / "repo")
    changed = notebook.check_reproduces([copy], figures, {"profile": "smoke"}, scratch=tmp_path / "check")
    assert changed == {copy: "differs", missing: "written by the re-run, missing here",
                       stale: "not written by the re-run", changed_value: "differs"}
    assert tree(tmp_path / "repo") == before


def test_sigterm_cleans_up_and_leaves_previous_outputs(tmp_path):
    """SIGTERM during a real run: exit 143, kernel gone, no file left or changed outside build/."""
    copy, figures = tmp_path / "notebooks" / FIRST.name, tmp_path / "figures"
    copy.parent.mkdir()
    shutil.copy(FIRST, copy)
    figures.mkdir()
    (figures / "01_forward_trajectories.png").write_bytes(b"previous")
    before = tree(tmp_path)
    run = subprocess.Popen([sys.executable, "-m", "helpers.notebook", str(copy), "--figures", str(figures),
                            "-p", "profile", "smoke"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process, deadline = psutil.Process(run.pid), time.monotonic() + 60
    while not any("ipykernel" in " ".join(p.cmdline()) for p in process.children()) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(4)                     # the kernel is executing the notebook's cells now
    children = process.children(recursive=True)
    assert children and run.poll() is None
    run.send_signal(signal.SIGTERM)
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 143 and "interrupted" in stderr, stderr
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive
    assert tree(tmp_path) == before


def test_timings_record_papermill_durations_and_the_profile(tmp_path, monkeypatch, capsys):
    """The timing file holds each cell's papermill duration, their sum and the profile, and names the slowest cell."""
    import json
    monkeypatch.setattr(notebook, "BUILD", tmp_path)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("a"), nbformat.v4.new_markdown_cell("b"),
                                         nbformat.v4.new_code_cell("c")])
    for cell, seconds in zip(nb.cells, (1.25, None, 30.0)):
        cell.metadata["papermill"] = {"duration": seconds}
    path = notebook.report_timings(nb, Path("07_example.ipynb"), "lab", {"trained": 2, "reused": 0, "start": "cold"})
    record = json.loads(path.read_text())
    assert path == tmp_path / "timings" / "07_example-lab-cold.json"       # a later warm run does not overwrite it
    assert record["start"] == "cold" and record["trained"] == 2 and isinstance(record["peak_memory_mb"], int)
    assert record["total_s"] == 31.2 and record["profile"] == "lab"     # 31.25 rounded to one decimal
    assert record["cells"] == [[0, 1.25], [1, 0.0], [2, 30.0]]
    assert "slowest cell 2 30 s" in capsys.readouterr().err


def test_profile_of_prefers_the_given_parameter_then_the_default():
    assert notebook.profile_of(FIRST, {"profile": "smoke"}) == "smoke"
    assert notebook.profile_of(FIRST, {}) == ast.literal_eval(notebook.papermill_parameters(FIRST)["profile"]["default"]) == "report"


def test_start_state_tells_cold_from_warm(tmp_path):
    """A run is cold when it trained every model it used, warm when it trained none."""
    a, b = (tmp_path / "a.pt").resolve(), (tmp_path / "b.pt").resolve()
    log = tmp_path / "checkpoints.log"
    assert notebook.start_state(log, set())["start"] == "trains nothing"           # no log: no model was asked for
    log.write_text(f"trained {a}\nloaded {a}\ntrained {b}\n")                       # 04: a worker trains, the kernel loads
    assert notebook.start_state(log, set()) == {"trained": 2, "reused": 0, "start": "cold"}
    log.write_text(f"loaded {a}\nloaded {b}\n")
    assert notebook.start_state(log, {a, b}) == {"trained": 0, "reused": 2, "start": "warm"}
    log.write_text(f"loaded {a}\ntrained {b}\n")
    assert notebook.start_state(log, {a}) == {"trained": 1, "reused": 1, "start": "partly cached"}


def test_cached_training_notes_what_it_trained_and_loaded(tmp_path, monkeypatch):
    from helpers import training
    log = tmp_path / "checkpoints.log"
    monkeypatch.setenv("DDPM_CHECKPOINT_LOG", str(log))
    monkeypatch.setenv("DDPM_CACHE_DIR", str(tmp_path))
    for _ in range(2):
        training.cached("toy", {"x": 1}, lambda: training.TrainResult(losses=[1.0]))
    how = [line.split(" ", 1)[0] for line in log.read_text().splitlines()]
    assert how == ["trained", "loaded"]
    record = notebook.start_state(log, set())
    assert record == {"trained": 1, "reused": 0, "start": "cold"}


def test_the_timing_record_inspects_the_cache_the_kernel_uses(monkeypatch):
    monkeypatch.setenv("DDPM_CACHE_DIR", "set")
    monkeypatch.delenv("DDPM_CACHE_DIR")
    lab = notebook.kernel_cache("lab")
    assert lab == {"DDPM_CACHE_DIR": str(notebook.ROOT / "build" / "lab" / "cache")}
    assert notebook.kernel_cache("report") == {} and notebook.kernel_cache("smoke") == {}
    monkeypatch.setenv("DDPM_CACHE_DIR", "/elsewhere")                  # a runner that says where wins
    assert notebook.kernel_cache("lab") == {}
