"""Execute a notebook with papermill, safely and reproducibly: ``python -m helpers.notebook NB [options]``.

* Parameters are checked before the kernel starts: an unknown name is an error (papermill itself
  only warns), and every value must have the type of the default in the ``parameters`` cell.
* Everything temporary lives in one folder under ``build/``: the staged figures, the executed
  notebook and the kernel's IPC sockets. The executed notebook and the figures replace the
  published ones only when every cell succeeded, so a failing or interrupted run (Ctrl-C or
  SIGTERM: the kernel is shut down and the folder removed) leaves them intact.
* The published notebook is normalised (:func:`normalise`): running twice on unchanged inputs
  writes the same bytes. Whatever the kernel writes to its process's stderr (``sys.__stderr__``:
  progress bars, wall-clock times) goes to the terminal, never into the notebook.
* ``--check NB...`` re-runs notebooks into ``build/check`` and names every published file that
  the run would change (``make check-figures``).
"""
import argparse
import ast
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import yaml

from . import runtime
from .runtime import ROOT

BUILD = ROOT / "build"
CHECK_DIR = BUILD / "check"
KERNEL_ARGUMENTS = ["--IPKernelApp.capture_fd_output=False"]   # the process's stderr stays the terminal
TYPE_NAMES = {bool: "a bool", int: "an int", float: "a float", str: "a str", list: "a list",
              tuple: "a list", dict: "a dict"}
VOLATILE_PAPERMILL_KEYS = ("start_time", "end_time", "duration", "input_path", "output_path")
PROGRESS_BAR = re.compile(r"\d+%\|.*\|")   # tqdm: " 40%|████      | 4/10 [00:01<00:02, ...]"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def papermill_parameters(notebook: Path) -> dict:
    """The parameters that the notebook's ``parameters`` cell declares."""
    import papermill
    return papermill.inspect_notebook(str(notebook))


def default_type(name: str, default: str):
    """The type of a parameter's default (its source text in the parameters cell); None for ``None``."""
    try:
        value = ast.literal_eval(default)
    except (ValueError, SyntaxError):
        raise ValueError(f"the default of parameter {name} is not a literal ({default}), "
                         f"so the type of its values cannot be checked") from None
    return None if value is None else type(value)


def typed_value(name: str, value, kind):
    """``value`` if it has type ``kind`` (ints pass as floats, a list as a tuple), else a ValueError naming ``name``.

    A float parameter also takes a number spelled as a string: YAML reads ``1e-4`` as one.
    """
    if kind is None or (isinstance(value, kind) and not (kind is int and isinstance(value, bool))):
        return value
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is float and isinstance(value, str):
        with contextlib.suppress(ValueError):
            return float(value)
    if kind is tuple and isinstance(value, list):
        return value
    raise ValueError(f"{name} must be {TYPE_NAMES.get(kind, kind.__name__)}, got {value!r}")


def check_parameters(notebook: Path, parameters: dict) -> dict:
    """``parameters`` with each value checked against the type of its default in the notebook.

    Raises a ValueError naming any parameter that the notebook's parameters cell lacks, or whose
    value has the wrong type ("seed must be an int, got 'abc'"). Ints given for a float
    parameter come back as floats.
    """
    known = papermill_parameters(notebook)
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} for {notebook.name}; allowed: {sorted(known)}")
    return {name: typed_value(name, value, default_type(name, known[name]["default"]))
            for name, value in parameters.items()}


def without_injected_parameters(notebook: Path) -> nbformat.NotebookNode:
    """The notebook without the cell of a previous run's injected parameters (they never carry over)."""
    nb = nbformat.read(notebook, as_version=4)
    nb.cells = [cell for cell in nb.cells if "injected-parameters" not in cell.metadata.get("tags", [])]
    return nb


def normalise(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Make an executed notebook depend on its inputs only; modifies and returns ``nb``.

    Drops execution timestamps and durations, the run's paths and widget state from the
    metadata, gives the injected-parameters cell a fixed id, and normalises every cell's outputs
    (:func:`normalise_outputs`). The result is still a valid notebook for nbval and papermill.
    """
    nb.metadata.pop("widgets", None)
    for key in VOLATILE_PAPERMILL_KEYS:
        nb.metadata.get("papermill", {}).pop(key, None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        for key in VOLATILE_PAPERMILL_KEYS:
            cell.metadata.get("papermill", {}).pop(key, None)
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.id = "injected-parameters"
        if "outputs" in cell:
            cell.outputs = normalise_outputs(cell.outputs)
    return nb


def normalise_outputs(outputs: list) -> list:
    """Outputs without progress bars and widget views, consecutive streams of one name merged.

    The kernel splits printed text into messages at arbitrary points; merged, equal text gives
    equal outputs. Widget views carry random model ids and do not render without a kernel.
    """
    merged = []
    for output in outputs:
        if output.output_type == "stream" and output.name == "stderr" and PROGRESS_BAR.search(output.text):
            continue
        if WIDGET_VIEW in output.get("data", {}):
            continue
        if output.output_type == "stream" and merged and merged[-1].output_type == "stream" \
                and merged[-1].name == output.name:
            merged[-1].text += output.text
        else:
            merged.append(output)
    return merged


@contextlib.contextmanager
def environment(**values):
    """Set environment variables (inherited by the kernel) within the block, restoring them after."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                del os.environ[name]
            else:
                os.environ[name] = value


def kernel_config(folder: Path):
    """Kernel manager settings: IPC transport, sockets and connection file in ``folder``.

    A socket's path holds at most 107 bytes; a deeply nested clone falls back to TCP (and to the
    kernel's warning that TCP is unencrypted).
    """
    from traitlets.config import Config
    sockets = str(folder / "kernel")
    transport = {"transport": "ipc", "ip": sockets} if len(f"{sockets}-65535".encode()) <= 107 else {}
    return Config({"KernelManager": {**transport, "connection_file": str(folder / "kernel.json")}})


def publish(staged: Path, destination: Path):
    """Move ``staged`` (a file or a folder's files, sub-folders kept) onto ``destination``.

    Each file is renamed, atomically when both lie on one filesystem (``build/`` and the
    repository do); across filesystems it is copied.
    """
    files = [staged] if staged.is_file() else sorted(p for p in staged.rglob("*") if p.is_file())
    for src in files:
        dest = destination if src == staged else destination / src.relative_to(staged)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(src, dest)


def execute(notebook: Path, output: Path, figures: Path, parameters: dict):
    """Run ``notebook`` with papermill into ``output``, publishing it and its figures on success only."""
    import papermill
    parameters = check_parameters(notebook, parameters)
    BUILD.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=BUILD, prefix="run-") as folder:
        folder = Path(folder)
        staging = folder / "figures"
        staging.mkdir()
        checkpoints = folder / "checkpoints.log"
        profile = profile_of(notebook, parameters)
        with environment(DDPM_FIGURES_DIR=str(staging), PYTHONHASHSEED=os.environ.get("PYTHONHASHSEED", "0"),
                         DDPM_CHECKPOINT_LOG=str(checkpoints), **kernel_cache(profile)):
            cached_before = cache_contents()
            # shutdown "immediate": an interrupted kernel is killed mid-cell, not asked to finish
            nb = papermill.execute_notebook(
                without_injected_parameters(notebook), None, parameters=parameters, cwd=str(notebook.parent),
                kernel_name="python3", progress_bar=False, config=kernel_config(folder),
                extra_arguments=KERNEL_ARGUMENTS, shutdown_kernel="immediate")
        report_timings(nb, notebook, profile, start_state(checkpoints, cached_before))
        nbformat.write(normalise(nb), folder / "notebook.ipynb")
        publish(folder / "notebook.ipynb", output)
        publish(staging, figures)


def kernel_cache(profile: str) -> dict:
    """``{"DDPM_CACHE_DIR": path}`` where a run of ``profile`` routes its weight cache (:func:`helpers.runtime.routes`)
    and the environment names none, else ``{}``: set before the kernel starts, so that the record of a cold or warm
    start inspects the cache the kernel uses."""
    if profile not in runtime.PROFILES:           # the notebook itself names a wrong profile
        return {}
    return {k: v for k, v in runtime.routes(profile).items() if k == "DDPM_CACHE_DIR" and k not in os.environ}


def profile_of(notebook: Path, parameters: dict) -> str:
    """The profile a run uses: the ``profile`` parameter given, else the notebook's default, else "default"."""
    declared = papermill_parameters(notebook).get("profile")
    return str(parameters.get("profile", ast.literal_eval(declared["default"]) if declared else "default"))


def cache_contents() -> set:
    """The checkpoint files in the weight cache now (resolved paths)."""
    from .runtime import cache_dir
    return {p.resolve() for p in cache_dir().glob("*.pt")}


STARTS = ("trains nothing", "cold", "warm", "partly cached")   # how a run can start, as start_state names it


def start_state(log: Path, cached_before: set) -> dict:
    """How a run started, from its checkpoint log (:func:`helpers.runtime.note_checkpoint`) and the cache's contents
    before it: {"trained": models trained in the run, "reused": models loaded that were cached before it, "start":
    "cold" (every model trained in the run), "warm" (none), "partly cached" or "trains nothing"}."""
    lines = [line.split(" ", 1) for line in log.read_text().splitlines()] if log.exists() else []
    trained = {Path(path) for how, path in lines if how == "trained"}
    reused = {Path(path) for how, path in lines if how == "loaded"} & (cached_before - trained)
    start = ("trains nothing" if not lines else "warm" if not trained else "cold" if not reused else "partly cached")
    return {"trained": len(trained), "reused": len(reused), "start": start}


def cell_durations(nb: nbformat.NotebookNode) -> list[tuple[int, float]]:
    """[(cell index, seconds)] from papermill's per-cell metadata, in cell order."""
    return [(i, float(cell.metadata.get("papermill", {}).get("duration") or 0.0)) for i, cell in enumerate(nb.cells)]


MAXRSS_PER_MB = 1024 ** 2 if sys.platform == "darwin" else 1024   # ru_maxrss counts bytes on macOS, KiB on Linux


def report_timings(nb: nbformat.NotebookNode, notebook: Path, profile, start: dict | None = None) -> Path:
    """Write ``build/timings/NAME-PROFILE-START.json`` (total and per-cell seconds of this run, how it started
    (:func:`start_state`: a cold and a warm run are kept apart), the peak memory of the largest process it ran,
    the date and the machine's core count) and print the total and the three slowest cells to stderr
    (wall-clock times never enter the notebook)."""
    import resource
    durations = cell_durations(nb)
    start = start or {"start": "unknown"}
    record = {"notebook": notebook.name, "profile": profile, "total_s": round(sum(d for _, d in durations), 1), **start,
              "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / MAXRSS_PER_MB),
              "date": time.strftime("%Y-%m-%d"), "cores": os.cpu_count(), "cells": [[i, round(d, 2)] for i, d in durations]}
    path = BUILD / "timings" / f"{notebook.stem}-{profile}-{start['start'].replace(' ', '-')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")
    slowest = ", ".join(f"cell {i} {d:.0f} s" for i, d in sorted(durations, key=lambda x: -x[1])[:3])
    print(f"{notebook.name} ({profile}): cells took {record['total_s']:.0f} s; slowest {slowest}", file=sys.stderr)
    return path


def digests(folder: Path, prefix: str) -> dict:
    """{path relative to ``folder``: sha256} of every file whose name starts with ``prefix``."""
    return {p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in folder.rglob(f"{prefix}*") if p.is_file()}


def check_reproduces(notebooks, figures: Path, parameters: dict, scratch: Path = CHECK_DIR) -> dict:
    """Re-run ``notebooks`` into ``scratch``; return {published file: how the re-run changes it}.

    The files are each notebook whose stored copy differs from the re-run, and each file under
    ``figures`` named after one of the notebooks (``NN_*``) that differs, that the re-run did not
    write, or that the re-run wrote but ``figures`` lacks. Nothing outside ``scratch`` is modified.
    """
    shutil.rmtree(scratch, ignore_errors=True)
    changed = {}
    for notebook in notebooks:
        rerun, prefix = scratch / "notebooks" / notebook.name, notebook.name.split("_")[0] + "_"
        print(f"== check {notebook.name}", flush=True)
        execute(notebook, rerun, scratch / "figures", parameters)
        if rerun.read_bytes() != notebook.read_bytes():
            changed[notebook] = "differs"
        stored, new = digests(figures, prefix), digests(scratch / "figures", prefix)
        for name in sorted(set(stored) | set(new)):
            if name not in new:
                changed[figures / name] = "not written by the re-run"
            elif name not in stored:
                changed[figures / name] = "written by the re-run, missing here"
            elif stored[name] != new[name]:
                changed[figures / name] = "differs"
    return changed


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C's KeyboardInterrupt so that every clean-up runs."""


@contextlib.contextmanager
def terminate_as_interrupt():
    """Within the block, SIGTERM raises :class:`Terminated` (main thread only)."""
    def interrupt(signum, frame):
        raise Terminated(f"signal {signum}")
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", type=Path, nargs="+", metavar="notebook")
    ap.add_argument("--output", type=Path, help="executed copy (default: the notebook itself)")
    ap.add_argument("--figures", type=Path, default=ROOT / "figures")
    ap.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    ap.add_argument("--retrain", action="store_true", help="retrain every model from scratch (notebooks that train)")
    ap.add_argument("--check", action="store_true", help=f"re-run into {CHECK_DIR.relative_to(ROOT)} "
                    "and fail, naming them, if published files would change")
    args = ap.parse_args(argv)
    if len(args.notebooks) > 1 and not args.check:
        ap.error("several notebooks need --check")
    if args.check and (args.output or args.retrain):
        ap.error("--check compares the cached weights' results with the notebooks themselves; "
                 "--output and --retrain are not allowed")
    return args


def main(argv=None):
    args = _parse(argv)
    parameters = {name: yaml.safe_load(value) for name, value in args.p}
    notebooks = [nb.resolve() for nb in args.notebooks]
    if args.check:
        changed = check_reproduces(notebooks, args.figures.resolve(), parameters)
        if changed:
            names = "\n  ".join(f"{os.path.relpath(path)}: {how}" for path, how in changed.items())
            raise ValueError(f"re-running changed {len(changed)} published file(s) "
                             f"(the re-run is in {os.path.relpath(CHECK_DIR)}):\n  {names}")
        return
    if args.retrain and "retrain" in papermill_parameters(notebooks[0]):
        parameters["retrain"] = True
    execute(notebooks[0], (args.output or notebooks[0]).resolve(), args.figures.resolve(), parameters)


if __name__ == "__main__":
    try:
        with terminate_as_interrupt():
            main()
    except ValueError as err:
        sys.exit(f"error: {err}")
    except KeyboardInterrupt as err:
        print(f"interrupted ({err or 'Ctrl-C'}); published notebook and figures unchanged", file=sys.stderr)
        sys.exit(143 if isinstance(err, Terminated) else 130)
