"""Tests of helpers/data.py: bit-for-bit rebuilds, shape statistics, exact star geometry, errors."""
import hashlib
import json

import numpy as np
import pytest

from helpers import data

TWO_PI = 2 * np.pi


@pytest.fixture(scope="module")
def fresh():
    """Every dataset rebuilt in memory once for the module."""
    return data.fresh_datasets()


# ---------------------------------------------------------------- reproducibility

def test_rebuild_matches_checksums(fresh):
    stored = json.loads(data.checksums_path().read_text())
    assert set(stored) == set(fresh)
    for name, arr in fresh.items():
        assert data.checksum(arr) == stored[name], name


@pytest.mark.parametrize("name", data.SHAPES)
def test_committed_shape_equals_rebuild(fresh, name):
    committed = data.load_shape(name)
    assert committed.dtype == np.float32
    np.testing.assert_array_equal(committed, fresh[name])


def test_checksum_sees_shape_and_dtype():
    a = np.arange(6, dtype=np.float32)
    assert data.checksum(a)["sha256"] == data.checksum(a.reshape(2, 3))["sha256"]
    assert data.checksum(a) != data.checksum(a.reshape(2, 3))
    assert data.checksum(a)["dtype"] == "float32"


def test_values_are_rounded_to_five_decimals(fresh):
    for name in data.SHAPES:
        x = fresh[name].astype(np.float64)
        np.testing.assert_allclose(x, np.round(x, 5), atol=1e-6)


# ---------------------------------------------------------------- 2D shapes

def test_circle_radii(fresh):
    points = fresh["circle"].astype(np.float64)
    radius = np.sqrt(points[:, 0] ** 2 + points[:, 1] ** 2)
    assert points.shape == (1000, 2)
    assert abs(radius.mean() - 1.0) < 4 * 0.02 / np.sqrt(1000)
    assert abs(radius.std() - 0.02) < 0.15 * 0.02


def test_circle_angles_uniform(fresh):
    angle = np.arctan2(fresh["circle"][:, 1], fresh["circle"][:, 0])
    counts = np.histogram(angle, bins=8, range=(-np.pi, np.pi))[0]
    assert counts.min() > 125 - 45 and counts.max() < 125 + 45


def test_square_near_boundary(fresh):
    distance = data.true_outline_distance("square", fresh["square"])
    assert distance.max() < 5 * 0.02
    assert 0.5 * 0.02 < np.median(distance) < 1.5 * 0.02


def test_square_covers_sides_equally(fresh):
    x, y = fresh["square"].T
    horizontal = np.abs(x) > np.abs(y)
    sides = np.where(horizontal, np.where(x > 0, 1, 3), np.where(y > 0, 2, 0))
    counts = np.bincount(sides, minlength=4)
    assert counts.sum() == 1000
    assert np.all(np.abs(counts - 250) < 60), counts


def test_dino(fresh):
    points = fresh["dino"]
    assert points.shape == (10000, 2) and points.dtype == np.float32
    assert abs(np.abs(points).max() - 1.0) < 5 * 0.015
    centre = (points.min(axis=0) + points.max(axis=0)) / 2
    assert np.all(np.abs(centre) < 5 * 0.015)


def test_normalise_outline():
    raw = np.array([[2.0, 10.0], [6.0, 14.0], [4.0, 18.0]])
    expected = np.array([[-0.5, -1.0], [0.5, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(data.normalise_outline(raw), expected)


def test_raw_dino_file():
    raw = data.load_dino_raw()
    assert raw.shape == (142, 2)
    assert hashlib.sha256(data.RAW_DINO.read_bytes()).hexdigest() == data.DINO_SHA256


@pytest.mark.parametrize("name, point, expected", [
    ("square", (0.0, 0.0), 1.0),
    ("square", (1.5, 0.5), 0.5),
    ("square", (2.0, 2.0), np.sqrt(2.0)),
    ("square", (0.25, -0.5), 0.5),
    ("square", (-1.0, 0.3), 0.0),
    ("circle", (2.0, 0.0), 1.0),
    ("circle", (0.0, 0.0), 1.0),
    ("circle", (0.6, -0.8), 0.0),
    ("circle", (0.0, -0.5), 0.5),
])
def test_true_outline_distance(name, point, expected):
    got = data.true_outline_distance(name, np.array([point]))
    assert got.shape == (1,)
    assert got[0] == pytest.approx(expected, abs=1e-12)


# ---------------------------------------------------------------- stars

def star_batch():
    """Two stars with different arm counts in one batch, parameters chosen by hand."""
    return dict(n_arms=np.array([5, 7]), r_outer=np.array([1.0, 0.8]),
                inner_ratio=np.array([0.5, 0.4]), rotation=np.array([0.1, 0.0]),
                centre=np.array([[0.2, -0.1], [0.0, 0.3]]))


def test_star_vertices_at_known_places():
    batch = star_batch()
    points = data.star_outline(**batch, n_points=140)  # 140 = 14 * 10: vertices are samples
    assert points.shape == (2, 140, 2)
    # Star 0: 5 arms, 10 vertices, one every 14 points; vertex j at angle 0.1 + j*pi/5.
    j = np.arange(10)
    radius = np.where(j % 2 == 0, 1.0, 0.5)
    expected = np.array([0.2, -0.1]) + radius[:, None] * np.stack(
        [np.cos(0.1 + j * np.pi / 5), np.sin(0.1 + j * np.pi / 5)], axis=1)
    np.testing.assert_allclose(points[0, ::14], expected, atol=1e-12)
    # Star 1: 7 arms, 14 vertices, one every 10 points; the first tip is at (0.8, 0) + centre.
    np.testing.assert_allclose(points[1, 0], [0.8, 0.3], atol=1e-12)
    offset = points[1, ::10] - [0.0, 0.3]
    np.testing.assert_allclose(np.hypot(*offset.T), np.tile([0.8, 0.32], 7), atol=1e-12)
    angle = np.mod(np.arctan2(offset[:, 1], offset[:, 0]), TWO_PI)
    np.testing.assert_allclose(angle, np.arange(14) * np.pi / 7, atol=1e-12)


def edge_length(r_outer, inner_ratio, arms):
    """Law of cosines: tip to notch, the two radii pi/arms apart."""
    r = r_outer * inner_ratio
    return np.sqrt(r_outer ** 2 + r ** 2 - 2 * r_outer * r * np.cos(np.pi / arms))


def gaps(outline):
    """Distances between consecutive points of closed outlines (m, n, 2) -> (m, n)."""
    return np.linalg.norm(np.roll(outline, -1, axis=1) - outline, axis=-1)


def test_star_points_evenly_spaced_by_arc_length():
    batch = star_batch()
    points = data.star_outline(**batch, n_points=140)
    perimeter = 2 * batch["n_arms"] * edge_length(batch["r_outer"], batch["inner_ratio"],
                                                  batch["n_arms"])
    np.testing.assert_allclose(gaps(points), (perimeter / 140)[:, None] * np.ones(140), rtol=1e-9)


def test_star_spacing_when_vertices_fall_between_samples():
    batch = star_batch()
    points = data.star_outline(**batch, n_points=1024)
    perimeter = 2 * batch["n_arms"] * edge_length(batch["r_outer"], batch["inner_ratio"],
                                                  batch["n_arms"])
    step = (perimeter / 1024)[:, None]
    g = gaps(points)
    assert np.all(g <= step * (1 + 1e-9))
    straight = np.isclose(g, step, rtol=1e-9).sum(axis=1)
    assert np.all(straight >= 1024 - 2 * batch["n_arms"])  # only a gap across a corner is short


def test_star_has_two_corners_per_arm():
    batch = star_batch()
    points = data.star_outline(**batch, n_points=140)
    step = np.roll(points, -1, axis=1) - points
    before = np.roll(step, 1, axis=1)
    cross = before[..., 0] * step[..., 1] - before[..., 1] * step[..., 0]
    turn = np.abs(np.arctan2(cross, np.sum(before * step, axis=-1)))
    np.testing.assert_array_equal((turn > 1e-6).sum(axis=1), 2 * batch["n_arms"])


def test_star_params_in_documented_ranges(fresh):
    table = fresh["stars_train_params"]
    arms, r_outer, inner_ratio, rotation, cx, cy = table.T
    assert table.shape == (1024, 6)
    assert set(arms.astype(int)) == {5, 6, 7, 8}
    assert np.all((0.6 <= r_outer) & (r_outer < 1.0))
    assert np.all((0.35 <= inner_ratio) & (inner_ratio < 0.6))
    assert np.all((0 <= rotation) & (rotation < TWO_PI / arms))
    assert np.all(np.abs(np.stack([cx, cy])) <= 0.3)


def test_star_dataset_types_and_noise():
    points, params = data.star_dataset(8, n_points=64, jitter=0.01, seed=5)
    assert points.shape == (8, 64, 2) and points.dtype == np.float32
    assert params["arms"].dtype == np.int64 and params["centre"].shape == (8, 2)
    clean = data.star_outline(params["arms"], params["r_outer"], params["inner_ratio"],
                              params["rotation"], params["centre"], 64)
    noise = points - clean
    assert abs(noise.std() - 0.01) < 0.002 and abs(noise.mean()) < 0.002


def test_train_and_test_stars_differ(fresh):
    assert data.STARS_TRAIN_SEED != data.STARS_TEST_SEED
    assert fresh["stars_train"].shape == (1024, 1024, 2)
    assert fresh["stars_test"].shape == (256, 1024, 2)
    assert not np.array_equal(fresh["stars_train"][:256], fresh["stars_test"])


def test_load_stars_builds_on_demand(tmp_path, monkeypatch, fresh):
    monkeypatch.setattr(data, "DATA_DIR", tmp_path)
    points, params = data.load_stars("test")
    assert (tmp_path / "stars_test.npz").exists()
    np.testing.assert_array_equal(points, fresh["stars_test"])
    np.testing.assert_array_equal(data.star_param_table(params), fresh["stars_test_params"])
    again, _ = data.load_stars("test")  # second call reads the file
    np.testing.assert_array_equal(again, points)


# ---------------------------------------------------------------- errors

def test_load_shape_rejects_unknown_name():
    with pytest.raises(ValueError, match=r"name.*'circle'.*'triangle'"):
        data.load_shape("triangle")


def test_load_stars_rejects_unknown_split():
    with pytest.raises(ValueError, match=r"split.*'val'"):
        data.load_stars("val")


def test_outline_distance_rejects_dino():
    with pytest.raises(ValueError, match=r"name.*'dino'"):
        data.true_outline_distance("dino", np.zeros((1, 2)))


def test_labelled_shapes_take_equal_distinct_subsets_of_each_shape():
    points, labels = data.labelled_shapes(("circle", "dino"), per_class=300)
    assert points.shape == (600, 2) and np.array_equal(np.bincount(labels), [300, 300])
    for label, name in enumerate(("circle", "dino")):
        ours, source = points[labels == label], data.load_shape(name)
        rows = {tuple(p) for p in source}
        assert all(tuple(p) in rows for p in ours) and len({tuple(p) for p in ours}) == 300
    with pytest.raises(ValueError, match="per_class must be an integer in 1..1000"):
        data.labelled_shapes(("circle",), per_class=1001)
