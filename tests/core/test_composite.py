"""Weekly compositing: masking, indices, S1 speckle filtering, counts."""

import numpy as np
import pytest
import xarray as xr

from cropassets.core.cube.composite import weekly_composite
from cropassets.core.cube.indices import (
    FeatureConfigError,
    check_features,
    clear_mask,
    lee_filter,
    to_db,
)


def _raw(n_s2=3, n_s1=2, h=6, w=6, seed=0):
    rng = np.random.default_rng(seed)
    red = np.full((n_s2, h, w), 0.05, np.float32)
    nir = np.full((n_s2, h, w), 0.40, np.float32)
    for t in range(n_s2):  # per-scene distinct but clear values
        nir[t] += 0.01 * t
    scl = np.full((n_s2, h, w), 4, np.uint8)
    vv = rng.gamma(4.4, 1 / 4.4, (n_s1, h, w)).astype(np.float32) * 0.1
    vh = rng.gamma(4.4, 1 / 4.4, (n_s1, h, w)).astype(np.float32) * 0.02
    return xr.Dataset(
        {"red": (("s2_time", "y", "x"), red), "nir": (("s2_time", "y", "x"), nir),
         "green": (("s2_time", "y", "x"), red * 1.5), "swir16": (("s2_time", "y", "x"), nir / 2),
         "blue": (("s2_time", "y", "x"), red), "scl": (("s2_time", "y", "x"), scl),
         "vv": (("s1_time", "y", "x"), vv), "vh": (("s1_time", "y", "x"), vh)},
        coords={"y": np.arange(h)[::-1] * 10.0, "x": np.arange(w) * 10.0})


def test_marked_cloud_never_enters_the_median():
    raw = _raw()
    # scene 0, pixel (2, 3): bright cloud (NDVI ~ 0) flagged as SCL 9 -> must be ignored
    raw["red"].values[0, 2, 3] = raw["nir"].values[0, 2, 3] = 0.6
    raw["scl"].values[0, 2, 3] = 9
    # pixel (4, 4): cloudy in every scene -> NaN, count 0
    raw["scl"].values[:, 4, 4] = 8
    cube = weekly_composite(raw, ("ndvi",), dilate_px=0)
    ndvi = cube["features"].sel(feature="ndvi").values
    expected = np.median([(0.41 - 0.05) / 0.46, (0.42 - 0.05) / 0.47])
    assert ndvi[2, 3] == pytest.approx(expected, rel=1e-5)
    assert np.isnan(ndvi[4, 4])
    n_s2 = cube["n_obs"].sel(sensor="s2").values
    assert n_s2[2, 3] == 2 and n_s2[4, 4] == 0 and n_s2[0, 0] == 3
    # median over all three clear scenes elsewhere
    assert ndvi[0, 0] == pytest.approx((0.41 - 0.05) / 0.46, rel=1e-5)


def test_cloud_buffer_masks_neighbours():
    raw = _raw()
    raw["scl"].values[0, 2, 2] = 9
    cube = weekly_composite(raw, ("ndvi",), dilate_px=1)
    n_s2 = cube["n_obs"].sel(sensor="s2").values
    assert n_s2[1:4, 1:4].max() == 2 and n_s2[0, 0] == 3 and n_s2[2, 4] == 3


def test_empty_week_is_all_nan():
    raw = _raw(n_s2=0, n_s1=0)
    cube = weekly_composite(raw)
    assert cube["features"].shape == (5, 6, 6)
    assert np.isnan(cube["features"].values).all()
    assert (cube["n_obs"].values == 0).all()


def test_s1_features_in_db_and_ratio():
    raw = _raw(n_s2=1, n_s1=1)
    cube = weekly_composite(raw, ("vv", "vh", "vh_vv"), lee_window=1)
    vv = cube["features"].sel(feature="vv").values
    vh = cube["features"].sel(feature="vh").values
    np.testing.assert_allclose(vv, to_db(raw["vv"].values[0]), atol=1e-5)
    np.testing.assert_allclose(cube["features"].sel(feature="vh_vv").values, vh - vv, atol=1e-5)


def test_lee_filter_reduces_speckle_and_keeps_mean():
    rng = np.random.default_rng(1)
    truth = np.full((200, 200), 0.05)
    truth[:, 100:] = 0.2  # an edge
    speckled = truth * rng.gamma(4.4, 1 / 4.4, truth.shape)
    out = lee_filter(speckled.astype(np.float32), window=7, enl=4.4)
    flat = out[20:180, 10:90]
    enl_in = speckled[20:180, 10:90].mean() ** 2 / speckled[20:180, 10:90].var()
    enl_out = flat.mean() ** 2 / flat.var()
    assert enl_in == pytest.approx(4.4, rel=0.1)
    assert enl_out > 4 * enl_in
    assert flat.mean() == pytest.approx(0.05, rel=0.03)
    # NaN stays NaN and does not spread
    speckled[50, 50] = np.nan
    out = lee_filter(speckled.astype(np.float32), window=7)
    assert np.isnan(out[50, 50]) and np.isfinite(out[50, 51])
    with pytest.raises(ValueError, match="window"):
        lee_filter(speckled, window=4)


def test_clear_mask_classes():
    scl = np.array([[0, 3, 4, 5], [6, 8, 9, 10]], np.uint8)
    np.testing.assert_array_equal(clear_mask(scl), [[0, 0, 1, 1], [1, 0, 0, 0]])


def test_unproducible_features_are_named():
    with pytest.raises(FeatureConfigError, match="'ndvi' needs band\\(s\\) \\['nir'\\]"):
        check_features(["ndvi"], available_bands=("red", "vv", "vh"))
    with pytest.raises(FeatureConfigError, match="'evi9' is not a known feature"):
        check_features(["evi9"])


def test_block_by_block_composite_equals_unchunked(tmp_path):
    from cropassets.core.cube.composite import write_weekly_composite
    from cropassets.core.storage import open_zarr

    raw = _raw(n_s2=3, n_s1=2, h=70, w=53, seed=3)
    rng = np.random.default_rng(3)
    raw["scl"].values[rng.random(raw["scl"].shape) < 0.1] = 9
    raw["nir"].values += rng.normal(0, 0.02, raw["nir"].shape).astype(np.float32)
    whole = weekly_composite(raw, dilate_px=1, lee_window=5)
    write_weekly_composite(raw, tmp_path / "cube.zarr", dilate_px=1, lee_window=5, chunk=16)
    blocks = open_zarr(tmp_path / "cube.zarr")
    import zarr

    assert zarr.open_array(tmp_path / "cube.zarr" / "features").chunks == (5, 16, 16)
    # stored as the contract says (float64 features and n_obs until issue 16's full tile)
    assert zarr.open_array(tmp_path / "cube.zarr" / "features").dtype == np.float32
    assert zarr.open_array(tmp_path / "cube.zarr" / "n_obs").dtype == np.uint8
    assert blocks["n_obs"].dtype == np.uint8
    np.testing.assert_allclose(blocks["features"].values, whole["features"].values,
                               atol=1e-4, equal_nan=True)
    np.testing.assert_array_equal(blocks["n_obs"].values, whole["n_obs"].values)
