"""Run-time plumbing shared by every notebook: paths, profiles, seeding, devices, atomic writes.

Paths never depend on the working directory: they are resolved from this file, and the
figure directory can be redirected with the environment variable ``DDPM_FIGURES_DIR``
(:mod:`helpers.notebook` points it at a staging folder while a notebook runs).
"""
import io
import os
import random
import sys
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "data"
PROFILES = ("smoke", "lab", "report", "full")
PROFILE_NOTES = {
    "smoke": "**`smoke` profile:** every code path at a tiny size, for the tests; its numbers mean nothing.",
    "lab": "**`lab` profile:** sized for a class on a 2-core laptop: one training seed, fewer epochs, sample sets and "
           "draws than the `report` profile (the parameters cell and the lines printed below give this run's sizes). "
           "The prose was written for the `report` profile's numbers: where a sentence and a table of this run "
           "disagree, the table is this run's. Verdicts that need several training seeds print *Skipped*. Figures, "
           "data and weights go to `build/lab/`, never over the published ones.",
}


def figures_dir() -> Path:
    """Directory the figures go to: ``$DDPM_FIGURES_DIR`` or ``<repo>/figures``."""
    return Path(os.environ.get("DDPM_FIGURES_DIR", ROOT / "figures"))


def cache_dir() -> Path:
    """Directory of the trained weights: ``$DDPM_CACHE_DIR`` or ``<repo>/build/cache``."""
    return Path(os.environ.get("DDPM_CACHE_DIR", ROOT / "build" / "cache"))


def route_outputs(profile: str) -> str:
    """Send a run's figures (any profile but ``report`` and ``full``) and its weights (``lab``) under
    ``build/<profile>/`` unless the environment already says where, so that a notebook run by hand in Jupyter
    never writes over the published figures; return the note a reader of this profile needs ("" for ``report``)."""
    for variable, path in routes(profile).items():
        os.environ.setdefault(variable, path)
    return PROFILE_NOTES.get(profile, "")


def routes(profile: str) -> dict:
    """The output folders a run of ``profile`` uses where the environment names none: ``{variable: path}``."""
    check_profile(profile)
    folders = {"DDPM_FIGURES_DIR": "figures"} if profile in ("smoke", "lab") else {}
    if profile == "lab":
        folders["DDPM_CACHE_DIR"] = "cache"
    return {variable: str(ROOT / "build" / profile / folder) for variable, folder in folders.items()}


def check_choice(name: str, value, allowed):
    """Return ``value`` if it is in ``allowed``, else raise a ValueError naming parameter ``name``."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {tuple(allowed)}, got {value!r}")
    return value


def check_profile(profile: str) -> str:
    """Return ``profile`` if it is one of :data:`PROFILES`, else raise a ValueError naming it."""
    return check_choice("profile", profile, PROFILES)


def pick(profile: str, **by_profile):
    """The value for ``profile`` from keyword arguments ``smoke=..., lab=..., report=..., full=...``.

    ``lab`` and ``full`` fall back to ``report`` when not given: the report's settings wherever
    they fit the profile.
    """
    check_profile(profile)
    if profile in ("lab", "full") and profile not in by_profile:
        profile = "report"
    if profile not in by_profile:
        raise ValueError(f"no value given for profile {profile!r}")
    return by_profile[profile]


def seed_everything(seed: int = 0, threads: int = 2) -> torch.Generator:
    """Seed Python, NumPy and torch, fix the thread count, and return a seeded CPU generator."""
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")   # deterministic cuBLAS (full profile)
    torch.use_deterministic_algorithms(True, warn_only=True)
    return torch.Generator().manual_seed(seed)


def device(profile: str = "report") -> torch.device:
    """CUDA when the ``full`` profile runs on a machine that has it, else the CPU."""
    check_profile(profile)
    return torch.device("cuda" if profile == "full" and torch.cuda.is_available() else "cpu")


def note_checkpoint(path: Path, how: str):
    """Append "``how`` ``path``" (``how``: "trained" or "loaded") to the file ``$DDPM_CHECKPOINT_LOG`` when it is set.

    :mod:`helpers.notebook` sets it for each run, so that a run's timing record can say whether its models
    were trained in it (a cold start) or loaded from the weight cache (a warm one).
    """
    log = os.environ.get("DDPM_CHECKPOINT_LOG")
    if log:
        with open(log, "a") as f:
            f.write(f"{how} {Path(path).resolve()}\n")


def log_to_terminal(message: str):
    """Print ``message`` on the terminal running the notebook (the ``make figures`` log), not into
    its stored outputs: for wall-clock times and whatever else changes from run to run.

    :mod:`helpers.notebook` keeps the kernel's ``sys.__stderr__`` out of the notebook; in an
    interactive Jupyter session the message shows under the cell.
    """
    print(message, file=sys.__stderr__, flush=True)


def atomic_write(path, write) -> Path:
    """Call ``write(tmp_path)`` and move the result onto ``path`` only if it succeeded.

    An interrupted run therefore never leaves a half-written file at ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)   # mkstemp creates 0600; give the file ordinary permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def save_arrays(path, **arrays) -> Path:
    """Write ``arrays`` to an ``.npz`` atomically, byte-identical for equal input.

    ``np.savez`` stamps the wall-clock time into the zip; here every member gets a fixed date.
    """
    def write(tmp):
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, array in arrays.items():
                buffer = io.BytesIO()
                np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
                zf.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)),
                            buffer.getvalue(), zipfile.ZIP_DEFLATED)
    return atomic_write(path, write)


@contextmanager
def threads(n: int):
    """Run torch on ``n`` intra-op threads, then restore the setting. On an idle 2-core machine two threads
    are faster (the 2D sampler on 1000 points: about 0.35 s against 0.5 s on one), but spinning threads slow
    to a crawl when another process shares the cores (1.6e9 vs 1.4e7 Chamfer distances/s), so code that
    runs beside other workers asks for one."""
    if not (isinstance(n, int) and n >= 1):
        raise ValueError(f"threads must be an integer >= 1, got {n!r}")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
