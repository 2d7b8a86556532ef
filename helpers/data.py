"""The datasets of the series: circle, square, dino head (committed) and stars (built on demand).

Every dataset is a deterministic function of a fixed seed, drawn with
``np.random.default_rng(seed)``, and rounded to 5 decimals before the cast to float32 so that
last-ulp differences between maths libraries cannot change a checksum.
``python -m helpers.data`` (``make data``) rebuilds everything; data/README.md documents the
distributions.
"""
import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from functools import partial
from pathlib import Path

import numpy as np

from helpers import runtime
from helpers.runtime import atomic_write, save_arrays

DATA_DIR = runtime.DATA_DIR
RAW_DINO = runtime.DATA_DIR / "raw" / "datasaurus_dino.csv"
DINO_PACKAGE = "same-stats==0.1.1"
DINO_MEMBER = "same_stats/seed_datasets/Datasaurus_data.csv"
DINO_SHA256 = "6bb3ef074b5dcee8cabeffe57f79ad5adf298d7cad0b496ef3d425f4f6086097"

SHAPES = ("circle", "square", "dino")
SPLITS = ("train", "test")
CIRCLE_SEED, SQUARE_SEED, DINO_SEED = 1, 2, 3
STARS_TRAIN_SEED, STARS_TEST_SEED = 101, 102
STAR_SPLITS = {"train": (1024, STARS_TRAIN_SEED), "test": (256, STARS_TEST_SEED)}
STAR_PARAMS = ("arms", "r_outer", "inner_ratio", "rotation", "centre")
STAR_CENTRE = 0.3   # star centres are uniform on the square [-STAR_CENTRE, STAR_CENTRE]^2
SQUARE_CORNERS = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])


# ---------------------------------------------------------------- common pieces

def rounded_float32(points) -> np.ndarray:
    """``points`` rounded to 5 decimals, as float32 (same shape)."""
    return np.round(points, 5).astype(np.float32)


def walk_polygon(vertex_at, position) -> np.ndarray:
    """Points along a closed polygon, the one walker of the series (data outlines and the radial
    decoder of notebook 03).

    ``vertex_at(j)`` gives the coordinates of vertex ``j`` (integer array, any shape) with a
    trailing axis of 2; ``position`` counts edges travelled from vertex 0 (float array): its
    integer part is the edge, its fractional part the share of that edge. When all edges have
    the same length, position is proportional to arc length.
    Returns ``position.shape + (2,)`` float64: linear interpolation along edge ``floor(position)``.
    """
    edge = np.floor(position).astype(np.int64)
    along = (position - edge)[..., None]
    start = vertex_at(edge)
    return start + along * (vertex_at(edge + 1) - start)


def checksum(arr) -> dict:
    """``{"sha256": hex digest of arr.tobytes(), "shape": [...], "dtype": "float32"}``."""
    arr = np.ascontiguousarray(arr)
    digest = hashlib.sha256(arr.tobytes()).hexdigest()
    return {"sha256": digest, "shape": list(arr.shape), "dtype": str(arr.dtype)}


# ---------------------------------------------------------------- 2D shapes

def circle(n=1000, jitter=0.02, seed=CIRCLE_SEED) -> np.ndarray:
    """Unit circle: uniform angles, radius 1 + N(0, jitter²). Returns points: (n, 2) float32."""
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0.0, 2 * np.pi, n)
    radius = 1.0 + rng.normal(0.0, jitter, n)
    return rounded_float32(radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1))


def square(n=1000, jitter=0.02, seed=SQUARE_SEED) -> np.ndarray:
    """Outline of [-1, 1]², uniform by arc length, plus N(0, jitter²) per coordinate.

    Returns points: (n, 2) float32.
    """
    rng = np.random.default_rng(seed)
    position = rng.uniform(0.0, 4.0, n)
    outline = walk_polygon(lambda j: SQUARE_CORNERS[j % 4], position)
    return rounded_float32(outline + rng.normal(0.0, jitter, (n, 2)))


def load_dino_raw() -> np.ndarray:
    """The 142 raw Datasaurus dino points. Returns (142, 2) float64."""
    return np.loadtxt(RAW_DINO, delimiter=",", dtype=np.float64)


def normalise_outline(points) -> np.ndarray:
    """Centre ``points`` (k, 2) at their bounding-box centre and scale so max |coord| = 1.

    Returns (k, 2) float64.
    """
    centred = points - (points.min(axis=0) + points.max(axis=0)) / 2
    return centred / np.abs(centred).max()


def dino_head(n=10000, jitter=0.015, seed=DINO_SEED) -> np.ndarray:
    """Normalised dino resampled with replacement, plus isotropic N(0, jitter²).

    Returns points: (n, 2) float32.
    """
    rng = np.random.default_rng(seed)
    outline = normalise_outline(load_dino_raw())
    picked = outline[rng.integers(0, len(outline), n)]
    return rounded_float32(picked + rng.normal(0.0, jitter, (n, 2)))


SHAPE_BUILDERS = {"circle": circle, "square": square, "dino": dino_head}


def check_shape(name: str) -> str:
    """Return ``name`` if it is one of :data:`SHAPES`, else raise a ValueError naming it."""
    return runtime.check_choice("name", name, SHAPES)


def shape_path(name: str) -> Path:
    """Path of the committed array ``data/<name>.npy``."""
    return DATA_DIR / f"{check_shape(name)}.npy"


def load_shape(name: str) -> np.ndarray:
    """The committed dataset ``name`` (one of :data:`SHAPES`). Returns points: (n, 2) float32."""
    return np.load(shape_path(name), allow_pickle=False)


def labelled_shapes(names=SHAPES, per_class: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A class-labelled training set for a conditional model: ``per_class`` points of each shape in ``names``
    (a seeded subset where a shape has more), as ``(points: (k·per_class, 2), labels: (k·per_class,))`` with
    label i for ``names[i]``. Equal counts, so the training set weighs the shapes alike (whether a trained
    unconditional model does is a measurement, not a consequence)."""
    names = [check_shape(name) for name in names]
    rng = np.random.default_rng(seed)
    parts = []
    for name in names:
        points = load_shape(name)
        if not (isinstance(per_class, int) and 1 <= per_class <= len(points)):
            raise ValueError(f"per_class must be an integer in 1..{len(points)} (the {name}'s points), got {per_class!r}")
        parts.append(points[np.sort(rng.permutation(len(points))[:per_class])])
    return np.concatenate(parts), np.repeat(np.arange(len(names)), per_class)


def circle_distance(points) -> np.ndarray:
    """Distance of each point (n, 2) to the unit circle. Returns (n,) float64."""
    return np.abs(np.hypot(points[:, 0], points[:, 1]) - 1.0)


def square_distance(points) -> np.ndarray:
    """Distance of each point (n, 2) to the boundary of [-1, 1]², inside or outside.

    Returns (n,) float64 (the absolute value of the box's signed distance).
    """
    excess = np.abs(np.asarray(points, dtype=np.float64)) - 1.0
    outside = np.linalg.norm(np.maximum(excess, 0.0), axis=1)
    inside = np.minimum(excess.max(axis=1), 0.0)
    return np.abs(outside + inside)


OUTLINE_DISTANCE = {"circle": circle_distance, "square": square_distance}


def true_outline_distance(name: str, points) -> np.ndarray:
    """Distance of each point (n, 2) to the noiseless outline of ``name`` (circle or square).

    Returns (n,) float64. Raises ValueError for any other name (the dino has no exact outline).
    """
    if name not in OUTLINE_DISTANCE:
        raise ValueError(f"name must be one of {tuple(OUTLINE_DISTANCE)}, got {name!r}")
    return OUTLINE_DISTANCE[name](np.asarray(points, dtype=np.float64))


# ---------------------------------------------------------------- stars

def star_vertices(arms, r_outer, inner_ratio, rotation, centre, index) -> np.ndarray:
    """Vertex ``index`` (m, p) integers of each of m stars; even indices are outer tips.

    Vertex j sits at angle ``rotation + j·π/arms`` and radius ``r_outer`` (j even) or
    ``r_outer·inner_ratio`` (j odd), around ``centre`` (m, 2). Returns (m, p, 2) float64.
    """
    angle = rotation[:, None] + index * (np.pi / arms[:, None])
    radius = np.where(index % 2 == 0, 1.0, inner_ratio[:, None]) * r_outer[:, None]
    ring = np.stack([np.cos(angle), np.sin(angle)], axis=-1)
    return centre[:, None, :] + radius[..., None] * ring


def star_outline(n_arms, r_outer, inner_ratio, rotation, centre, n_points) -> np.ndarray:
    """Noiseless outlines of m stars, ``n_points`` per star evenly spaced by arc length.

    All parameters have shape (m,), ``centre`` (m, 2); arm counts may differ within the batch.
    Each star is the closed polygon of 2·arms equal edges; point 0 is the first outer tip.
    Returns points: (m, n_points, 2) float64.
    """
    arms, r_outer, inner_ratio, rotation, centre = (
        np.asarray(a, dtype=np.float64) for a in (n_arms, r_outer, inner_ratio, rotation, centre))
    # Edges travelled by point i of star s: i * (2 arms_s) / n_points, exact at vertices.
    position = np.arange(n_points)[None, :] * (2 * arms[:, None]) / n_points
    return walk_polygon(partial(star_vertices, arms, r_outer, inner_ratio, rotation, centre),
                        position)


def star_params(n_stars, rng) -> dict:
    """Draw parameters of ``n_stars`` stars from ``rng`` (order fixed, see data/README.md).

    Returns dict: arms (m,) int64 in {5..8}, r_outer (m,) ~ U(0.6, 1), inner_ratio (m,) ~
    U(0.35, 0.6), rotation (m,) ~ U(0, 2π/arms), centre (m, 2) ~ U(-0.3, 0.3)², floats float64.
    """
    arms = rng.integers(5, 9, n_stars).astype(np.int64)
    r_outer = rng.uniform(0.6, 1.0, n_stars)
    inner_ratio = rng.uniform(0.35, 0.6, n_stars)
    rotation = rng.uniform(0.0, 1.0, n_stars) * (2 * np.pi / arms)
    centre = rng.uniform(-STAR_CENTRE, STAR_CENTRE, (n_stars, 2))
    return dict(arms=arms, r_outer=r_outer, inner_ratio=inner_ratio, rotation=rotation,
                centre=centre)


def star_dataset(n_stars, n_points=1024, jitter=0.01, seed=STARS_TRAIN_SEED):
    """Random stars with isotropic N(0, jitter²) noise on every point.

    Returns (points: (m, n_points, 2) float32, params: dict from :func:`star_params`).
    """
    rng = np.random.default_rng(seed)
    params = star_params(n_stars, rng)
    outline = star_outline(params["arms"], params["r_outer"], params["inner_ratio"],
                           params["rotation"], params["centre"], n_points)
    return rounded_float32(outline + rng.normal(0.0, jitter, outline.shape)), params


def star_param_table(params) -> np.ndarray:
    """Star parameters as columns arms, r_outer, inner_ratio, rotation, centre_x, centre_y.

    Returns (m, 6) float64.
    """
    scalars = [np.asarray(params[k], dtype=np.float64) for k in STAR_PARAMS[:-1]]
    return np.column_stack(scalars + [params["centre"]])


def check_split(split: str) -> str:
    """Return ``split`` if it is one of :data:`SPLITS`, else raise a ValueError naming it."""
    return runtime.check_choice("split", split, SPLITS)


def stars_path(split: str) -> Path:
    """Path of the on-demand file ``data/stars_<split>.npz``."""
    return DATA_DIR / f"stars_{check_split(split)}.npz"


def build_stars(split: str) -> Path:
    """Generate the ``split`` stars and write them atomically. Returns the .npz path."""
    n_stars, seed = STAR_SPLITS[check_split(split)]
    points, params = star_dataset(n_stars, seed=seed)
    return save_arrays(stars_path(split), points=points, **params)


def load_stars(split: str):
    """The ``split`` stars ("train" or "test"), built first if the file is missing.

    Returns (points: (m, 1024, 2) float32, params: dict as in :func:`star_params`).
    """
    path = stars_path(split)
    if not path.exists():
        build_stars(split)
    with np.load(path, allow_pickle=False) as stored:
        return stored["points"], {k: stored[k] for k in STAR_PARAMS}


# ---------------------------------------------------------------- rebuilding and checking

def fresh_datasets() -> dict:
    """Every dataset built in memory: {circle, square, dino, stars_<split>, stars_<split>_params}.

    Values are arrays: shapes (n, 2) float32, stars (m, 1024, 2) float32, params (m, 6) float64.
    """
    arrays = {name: SHAPE_BUILDERS[name]() for name in SHAPES}
    for split, (n_stars, seed) in STAR_SPLITS.items():
        points, params = star_dataset(n_stars, seed=seed)
        arrays[f"stars_{split}"] = points
        arrays[f"stars_{split}_params"] = star_param_table(params)
    return arrays


def checksums_path() -> Path:
    """Path of ``data/checksums.json``."""
    return DATA_DIR / "checksums.json"


def write_checksums(arrays) -> Path:
    """Write {name: :func:`checksum`} of ``arrays`` to data/checksums.json atomically."""
    lines = [f"  {json.dumps(k)}: {json.dumps(checksum(a))}" for k, a in sorted(arrays.items())]
    text = "{\n" + ",\n".join(lines) + "\n}\n"
    return atomic_write(checksums_path(), lambda tmp: Path(tmp).write_text(text))


def save_npy(path, arr) -> Path:
    """Write ``arr`` to ``path`` as .npy atomically. Returns the path."""
    def write(tmp):
        with open(tmp, "wb") as f:
            np.save(f, arr, allow_pickle=False)
    return atomic_write(path, write)


def build_all(update_checksums=False) -> dict:
    """Rebuild circle/square/dino .npy and both star files; optionally rewrite checksums.json.

    Returns the fresh arrays as :func:`fresh_datasets` does.
    """
    arrays = fresh_datasets()
    for name in SHAPES:
        save_npy(shape_path(name), arrays[name])
    for split in SPLITS:
        build_stars(split)
    if update_checksums:
        write_checksums(arrays)
    return arrays


def download_wheel(folder) -> Path:
    """``pip download`` the same-stats wheel into ``folder``. Returns the wheel's path."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                    "-d", str(folder), DINO_PACKAGE], check=True)
    return next(Path(folder).glob("same_stats-*.whl"))


def fetch_dino_source(dest=RAW_DINO) -> Path:
    """Re-download the dino CSV from PyPI, check its sha256, write it to ``dest`` atomically.

    Returns ``dest``. Raises ValueError if the digest differs from :data:`DINO_SHA256`.
    """
    with tempfile.TemporaryDirectory() as folder:
        with zipfile.ZipFile(download_wheel(folder)) as wheel:
            content = wheel.read(DINO_MEMBER)
    digest = hashlib.sha256(content).hexdigest()
    if digest != DINO_SHA256:
        raise ValueError(f"sha256 of {DINO_MEMBER} is {digest}, expected {DINO_SHA256}")
    return atomic_write(dest, lambda tmp: Path(tmp).write_bytes(content))


def main(argv=None) -> None:
    """Command line: rebuild every dataset (``make data``); see ``--help`` for the options."""
    parser = argparse.ArgumentParser(prog="python -m helpers.data", description=__doc__)
    parser.add_argument("--update-checksums", action="store_true",
                        help="also rewrite data/checksums.json from the rebuilt arrays")
    parser.add_argument("--fetch-source", action="store_true",
                        help="only re-download and verify data/raw/datasaurus_dino.csv")
    args = parser.parse_args(argv)
    if args.fetch_source:
        print(fetch_dino_source())
    else:
        build_all(update_checksums=args.update_checksums)


if __name__ == "__main__":
    main()
