"""A week stored in strips of rows equals the week loaded whole; a scene failing midway
publishes nothing."""

import numpy as np
import pytest
import rasterio
from affine import Affine

from cropassets.core.stac.catalog_profiles import DEMO
from cropassets.core.stac.scenes import load_week
from cropassets.core.stac.week_writer import CHUNK, write_week
from cropassets.core.storage import open_zarr, write_zarr_atomic
from cropassets.core.tiles import TileSpec

# 2100 rows x 40 columns: three strips of 1024, 1024 and 52 rows
TILE = TileSpec("T", "EPSG:32647", (620000.0, 1600000.0, 620400.0, 1621000.0), 10.0)


def _raster(path, arr, crs, transform, nodata, tiled=False):
    opts = {"tiled": True, "blockxsize": 16, "blockysize": 16} if tiled else {}
    with rasterio.open(path, "w", driver="GTiff", width=arr.shape[1], height=arr.shape[0],
                       count=1, dtype=arr.dtype, crs=crs, transform=transform,
                       nodata=nodata, **opts) as dst:
        dst.write(arr, 1)
    return str(path)


def _scene_grid(crs, res):
    """A grid in ``crs`` covering the tile with a margin (the neighbour zone reprojects)."""
    from rasterio.warp import transform_bounds

    w, s, e, n = transform_bounds(TILE.crs, crs, *TILE.bounds)
    transform = Affine(res, 0, w - 200, 0, -res, n + 200)
    return transform, (int((n - s + 400) / res), int((e - w + 400) / res))


def _s2_item(tmp_path, rng, scene_id, crs, dt, tiled=False, ramp=False):
    """Random DN, or (``ramp``) a smooth ramp of 2 DN per 10 m east and 1 DN per 10 m south."""
    assets = {}
    for band, res in (("blue", 10), ("green", 10), ("red", 10), ("nir", 10), ("swir16", 20)):
        transform, shape = _scene_grid(crs, res)
        if ramp:
            r, c = np.mgrid[: shape[0], : shape[1]] * (res / 10)
            dn = (1500 + 2 * c + r).astype(np.uint16)
        else:
            dn = rng.integers(1000, 6000, shape, dtype=np.uint16)
        dn[:, : shape[1] // 3] = 0  # nodata: the western third (into the tile)
        href = _raster(tmp_path / f"{scene_id}_{band}.tif", dn, crs, transform, 0, tiled)
        assets[band] = {"href": href, "raster:bands": [
            {"nodata": 0, "data_type": "uint16", "scale": 0.0001, "offset": -0.1}]}
    transform, shape = _scene_grid(crs, 20)
    scl = rng.choice(np.array([4, 5, 8, 9], np.uint8), shape)
    assets["scl"] = {"href": _raster(tmp_path / f"{scene_id}_scl.tif", scl, crs, transform, 0),
                     "raster:bands": [{"nodata": 0, "data_type": "uint8"}]}
    return {"id": scene_id, "properties": {"datetime": dt, "eo:cloud_cover": 20.0,
                                           "s2:processing_baseline": "05.10"},
            "assets": assets}


def _s1_item(tmp_path, rng, scene_id, dt):
    transform, shape = _scene_grid(TILE.crs, 20)
    assets = {}
    for band in ("vv", "vh"):
        lin = rng.uniform(0.001, 0.3, shape).astype(np.float32)
        assets[band] = {"href": _raster(tmp_path / f"{scene_id}_{band}.tif", lin, TILE.crs,
                                        transform, None)}
    return {"id": scene_id, "collection": "sentinel-1-rtc", "properties": {"datetime": dt},
            "assets": assets}


@pytest.fixture(scope="module")
def week_items(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scenes")
    rng = np.random.default_rng(7)
    s2 = [_s2_item(tmp, rng, "S2A_A", "EPSG:32647", "2025-05-06T03:45:00Z"),
          _s2_item(tmp, rng, "S2B_B", "EPSG:32648", "2025-05-08T03:45:00Z", ramp=True)]
    s1 = [_s1_item(tmp, rng, "S1A_X_rtc", "2025-05-07T11:00:00Z")]
    return s2, s1


def test_strips_store_what_the_whole_tile_load_gives(week_items, tmp_path):
    s2, s1 = week_items
    whole, skipped = load_week(s2, s1, TILE, DEMO)
    assert skipped == []
    written = write_week(s2, s1, TILE, DEMO, tmp_path / "w.zarr",
                         lambda ds, skipped: {"week": "2025-05-05", "s1": ds.sizes["s1_time"]},
                         strip_rows=CHUNK)
    assert written.strips == 3 and written.skipped == []
    assert written.s2_ids == ["S2A_A", "S2B_B"] and written.s1_ids == ["S1A_X_rtc"]
    stored = open_zarr(tmp_path / "w.zarr")
    assert (stored.attrs["week"], stored.attrs["s1"]) == ("2025-05-05", 1)
    assert stored["red"].shape == (2, 2100, 40)
    assert stored.rio.transform() == TILE.transform and str(stored.rio.crs) == "EPSG:32647"
    np.testing.assert_array_equal(stored["y"].values, TILE.y_coords())
    np.testing.assert_array_equal(stored["s2_id"].values, whole["s2_id"].values)
    np.testing.assert_array_equal(written.scl, stored["scl"].values)
    assert np.isnan(whole["blue"].values).any()  # the nodata columns reach the tile
    # same UTM zone (an affine warp): exactly the whole load's values (as stored: 1e-4 DN)
    for name in ("blue", "swir16", "scl", "vv", "vh"):
        a, b = stored[name].values, whole[name].values
        idx = slice(0, 1) if name in ("blue", "swir16", "scl") else slice(None)
        np.testing.assert_allclose(a[idx], b[idx], rtol=0, atol=6e-5, equal_nan=True,
                                   err_msg=name)
    # the neighbour zone: GDAL's warper approximates the reprojection within 0.125 px per
    # window, so a strip and the whole tile sample a smooth scene at up to 1/8 px apart
    for name in ("blue", "swir16"):
        a, b = stored[name].values[1], whole[name].values[1]
        assert (np.isnan(a) == np.isnan(b)).mean() > 0.99
        np.testing.assert_allclose(a, b, rtol=0, atol=3 * 0.125 * 2e-4 + 6e-5,
                                   equal_nan=True, err_msg=name)
    assert written.nbytes > 0


def test_a_scene_failing_in_a_later_strip_publishes_nothing(week_items, tmp_path):
    s2, s1 = week_items
    rng = np.random.default_rng(1)
    broken = _s2_item(tmp_path, rng, "S2A_CUT", "EPSG:32647", "2025-05-09T03:45:00Z",
                      tiled=True)
    href = broken["assets"]["nir"]["href"]
    with open(href, "r+b") as f:  # blocks are stored top to bottom: cut the southern half
        f.truncate(f.seek(0, 2) // 2)
    path = tmp_path / "w.zarr"
    ds, _ = load_week(s2[:1], [], TILE, DEMO)
    write_zarr_atomic(ds, path)  # an earlier write of this partition
    with pytest.raises(RuntimeError, match=r"scene S2A_CUT loaded for rows 0-1024 of tile T "
                                           r"but failed for rows"):
        write_week([*s2, broken], s1, TILE, DEMO, path, strip_rows=CHUNK)
    kept = open_zarr(path)
    assert [str(v) for v in kept["s2_id"].values] == ["S2A_A"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_small_tile_is_written_whole_and_bad_strip_rows_named(week_items, tmp_path):
    s2, s1 = week_items
    small = TileSpec("S", "EPSG:32647", (620000.0, 1620000.0, 620400.0, 1621000.0), 10.0)
    written = write_week(s2, s1, small, DEMO, tmp_path / "s.zarr")
    assert written.strips == 1 and written.scl.shape == (2, 100, 40)
    with pytest.raises(ValueError, match="strip_rows must be a positive multiple of 1024"):
        write_week(s2, s1, TILE, DEMO, tmp_path / "x.zarr", strip_rows=1000)
