"""Execute a notebook with papermill, safely: ``python -m helpers.notebook NB [options]``.

* Unknown parameter names are an error (papermill itself only warns).
* Figures are written to a staging folder and the executed notebook to a temporary file;
  both replace the published ones only when every cell succeeded, so a failing run leaves
  the previous notebook and figures intact.
"""
import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

from .runtime import ROOT, atomic_write


def papermill_parameters(notebook: Path) -> dict:
    """The parameters that the notebook's ``parameters`` cell declares."""
    import papermill
    return papermill.inspect_notebook(str(notebook))


def check_parameters(notebook: Path, parameters: dict):
    """Raise a ValueError naming any parameter that the notebook's parameters cell lacks."""
    known = papermill_parameters(notebook)
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} for {notebook.name}; allowed: {sorted(known)}")


def publish_figures(staging: Path, figures: Path):
    """Move every staged file into ``figures`` (sub-folders kept), each move atomic."""
    for src in sorted(p for p in staging.rglob("*") if p.is_file()):
        dest = figures / src.relative_to(staging)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(src, dest)


def execute(notebook: Path, output: Path, figures: Path, parameters: dict):
    """Run ``notebook`` with papermill into ``output``, publishing figures on success only."""
    import papermill
    check_parameters(notebook, parameters)
    figures.mkdir(parents=True, exist_ok=True)
    (ROOT / "build").mkdir(exist_ok=True)
    previous = os.environ.get("DDPM_FIGURES_DIR")
    with tempfile.TemporaryDirectory(dir=ROOT / "build", prefix="stage-") as staging:
        os.environ["DDPM_FIGURES_DIR"] = staging
        try:
            atomic_write(output, lambda tmp: papermill.execute_notebook(
                str(notebook), tmp, parameters=parameters, cwd=str(notebook.parent),
                kernel_name="python3", progress_bar=False))
        finally:
            if previous is None:
                del os.environ["DDPM_FIGURES_DIR"]
            else:
                os.environ["DDPM_FIGURES_DIR"] = previous
        publish_figures(Path(staging), figures)


def _parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebook", type=Path)
    ap.add_argument("--output", type=Path, help="executed copy (default: the notebook itself)")
    ap.add_argument("--figures", type=Path, default=ROOT / "figures")
    ap.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    ap.add_argument("--retrain", action="store_true", help="retrain every model from scratch (notebooks that train)")
    return ap.parse_args(argv)


def main(argv=None):
    args = _parse(argv)
    parameters = {name: yaml.safe_load(value) for name, value in args.p}
    if args.retrain and "retrain" in papermill_parameters(args.notebook):
        parameters["retrain"] = True
    execute(args.notebook.resolve(), (args.output or args.notebook).resolve(),
            args.figures.resolve(), parameters)


if __name__ == "__main__":
    try:
        main()
    except ValueError as err:
        sys.exit(f"error: {err}")
