"""Loading scenes onto a tile grid: reprojection, resampling, scale/offset, skipping."""

import json

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.warp import transform as warp_transform

from cropassets.core.stac.catalog_profiles import DEMO, EARTH_SEARCH
from cropassets.core.stac.item_metadata import UnsupportedScene, reflectance_scale_offset
from cropassets.core.stac.scenes import load_week, radar_status
from cropassets.core.tiles import TileSpec

TILE = TileSpec("T", "EPSG:32647", (620000.0, 1614880.0, 621280.0, 1616160.0), 10.0)  # 128 px
# A point inside the tile (UTM 47N), where the fixture scenes put a bright 60 m square.
PX, PY = 620655.0, 1615505.0


def _write(path, arr, crs, transform, nodata):
    with rasterio.open(path, "w", driver="GTiff", width=arr.shape[1], height=arr.shape[0],
                       count=1, dtype=arr.dtype, crs=crs, transform=transform,
                       nodata=nodata) as dst:
        dst.write(arr, 1)
    return str(path)


def _s2_item(tmp_path, scene_id, crs, res, dt="2024-05-07T03:45:00Z"):
    """An S2 item whose rasters hold DN 1000+refl*1e4 with a bright square at (PX, PY)."""
    (x,), (y,) = warp_transform("EPSG:32647", crs, [PX], [PY])
    n = int(2000 / res)
    transform = Affine(res, 0, x - 1000, 0, -res, y + 1000)  # 2 km scene centred on the point
    assets = {}
    for band, refl in {"blue": 0.05, "green": 0.08, "red": 0.04, "nir": 0.40,
                       "swir16": 0.20}.items():
        dn = np.full((n, n), 1000 + refl * 1e4, np.uint16)
        c = n // 2
        half = max(1, int(30 / res))
        dn[c - half:c + half, c - half:c + half] = 1000 + 9000  # reflectance 0.9
        dn[:, : int(600 / res)] = 0  # nodata strip: the scene's western 600 m
        href = _write(tmp_path / f"{scene_id}_{band}.tif", dn, crs, transform, 0)
        assets[band] = {"href": href, "raster:bands": [
            {"nodata": 0, "data_type": "uint16", "scale": 0.0001, "offset": -0.1}]}
    scl = np.full((n, n), 4, np.uint8)
    assets["scl"] = {"href": _write(tmp_path / f"{scene_id}_scl.tif", scl, crs, transform, 0),
                     "raster:bands": [{"nodata": 0, "data_type": "uint8"}]}
    return {"id": scene_id, "properties": {"datetime": dt, "eo:cloud_cover": 12.5,
                                           "s2:processing_baseline": "05.10"},
            "assets": assets}


def _bright_centroid(arr):
    rows, cols = np.nonzero(arr > 0.5)
    return rows.mean(), cols.mean()


@pytest.mark.parametrize("crs,res", [("EPSG:32647", 10.0), ("EPSG:32648", 10.0),
                                     ("EPSG:32647", 20.0)])
def test_reprojected_scene_lands_on_the_tile_grid(tmp_path, crs, res):
    ds, skipped = load_week([_s2_item(tmp_path, "S2A_X", crs, res)], [], TILE, DEMO)
    assert skipped == []
    assert ds["red"].shape == (1, 128, 128) and ds["red"].dtype == np.float32
    r, c = _bright_centroid(ds["red"].values[0])
    # expected pixel of the point on the tile grid (pixel-centre coordinates)
    exp_c = (PX - TILE.bounds[0]) / 10.0 - 0.5
    exp_r = (TILE.bounds[3] - PY) / 10.0 - 0.5
    assert abs(r - exp_r) <= 1.0 and abs(c - exp_c) <= 1.0
    # scale/offset applied: background reflectance recovered, values in [0, 1.2]
    red = ds["red"].values[0]
    valid = red[np.isfinite(red)]
    assert np.all((valid >= 0) & (valid <= 1.2))
    assert np.median(valid) == pytest.approx(0.04, abs=1e-4)
    # the scene covers only 2 km: the rest of the tile is nodata (NaN, SCL 0)
    # the nodata strip covers the tile's western ~25 columns: NaN there, data east of it
    assert np.isnan(red[:, :20]).all() and np.isfinite(red[:, 30:]).all()
    assert set(np.unique(ds["scl"].values)) <= {0, 4}
    assert str(ds["s2_id"].values[0]) == "S2A_X"
    assert ds.rio.crs.to_epsg() == 32647


def test_scale_offset_from_baseline_when_not_declared():
    item = {"properties": {"s2:processing_baseline": "05.10"}, "assets": {"B04": {}}}
    got = reflectance_scale_offset(item, "B04")
    assert (got.scale, got.offset) == (1e-4, -0.1)
    item["properties"]["s2:processing_baseline"] = "03.01"
    assert reflectance_scale_offset(item, "B04").offset == 0.0


def test_a_grd_scene_is_refused_not_skipped():
    """Sentinel-1 GRD digital numbers would pass for backscatter: the week fails, naming
    the item and the remedy, instead of quietly running on optical data."""
    grd = {"id": "S1A_IW_GRDH_1SSH_X", "collection": "sentinel-1-grd",
           "properties": {"datetime": "2024-05-08T11:00:00Z", "sar:product_type": "GRD"},
           "assets": {"vv": {"href": "nowhere.tif"}, "vh": {"href": "nowhere.tif"}}}
    with pytest.raises(UnsupportedScene, match="S1A_IW_GRDH_1SSH_X.*sentinel-1-rtc"):
        load_week([], [grd], TILE, DEMO)


def test_missing_or_corrupt_cog_skips_that_scene_only(tmp_path):
    good = _s2_item(tmp_path, "S2A_GOOD", "EPSG:32647", 10.0)
    bad = _s2_item(tmp_path, "S2B_BAD", "EPSG:32647", 10.0, dt="2024-05-09T03:45:00Z")
    with open(bad["assets"]["nir"]["href"], "wb") as f:
        f.write(b"not a tiff")
    gone = _s2_item(tmp_path, "S2A_GONE", "EPSG:32647", 10.0, dt="2024-05-10T03:45:00Z")
    gone["assets"]["red"]["href"] = str(tmp_path / "missing.tif")
    ds, skipped = load_week([good, bad, gone], [], TILE, DEMO)
    assert [str(v) for v in ds["s2_id"].values] == ["S2A_GOOD"]
    assert {s.scene_id for s in skipped} == {"S2B_BAD", "S2A_GONE"}


def test_empty_week_is_a_valid_empty_dataset():
    ds, skipped = load_week([], [], TILE, DEMO)
    assert skipped == []
    assert ds.sizes["s2_time"] == 0 and ds.sizes["s1_time"] == 0
    assert ds["red"].shape == (0, 128, 128) and ds["vv"].shape == (0, 128, 128)


def test_radar_status_says_why_a_week_has_no_radar():
    assert radar_status(DEMO, 2, 2) == "loaded"
    assert radar_status(DEMO, 0, 0) == "none: no sentinel-1-rtc scene this week"
    assert radar_status(DEMO, 3, 0) == "none: all 3 sentinel-1-rtc scenes were skipped"
    assert radar_status(EARTH_SEARCH, 0, 0) == (
        "none: profile earth-search has no analysis-ready Sentinel-1")


def test_radar_tags_name_the_weeks_made_without_radar():
    from cropassets.core.stac.scenes import radar_tags

    on, off = "loaded", "none: no sentinel-1-rtc scene this week"
    assert radar_tags({"2025-05-05": on, "2025-05-12": on}) == {
        "radar": "all weeks", "weeks_without_radar": "[]"}
    mixed = radar_tags({"2025-05-12": off, "2025-05-05": on, "2025-05-19": None})
    assert mixed["radar"] == "missing in 1 of 2 weeks"
    assert json.loads(mixed["weeks_without_radar"]) == ["2025-05-12"]
    assert radar_tags({"2025-05-05": off})["radar"] == "no week"
    assert radar_tags({"2025-05-05": None})["radar"] == "unknown"


def test_an_item_without_the_assets_a_profile_reads_is_refused_by_name():
    """A Planetary Computer item read with the earth-search naming: B04 is not 'red'."""
    item = {"id": "S2B_PC_ITEM", "collection": "sentinel-2-l2a",
            "properties": {"datetime": "2024-05-08T03:45:00Z"},
            "assets": {k: {"href": "x.tif"} for k in ("B02", "B03", "B04", "B08", "B11",
                                                     "SCL")}}
    with pytest.raises(UnsupportedScene, match=r"S2B_PC_ITEM.*'blue'.*earth-search.*B04"):
        load_week([item], [], TILE, EARTH_SEARCH)
