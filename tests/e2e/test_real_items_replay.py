"""Replay of real Earth Search items end to end: raw_scenes -> weekly_cube on a tile.

The ten real ``sentinel-2-c1-l2a`` items of tile T13TDE (Colorado, 2024-03-31..04-22) of
``../shared/real-stac`` are served through the project's own STAC API with their asset
hrefs rewritten to local COGs of the same data type, nodata and layout (uint16 DN, nodata 0,
10 m bands and 20 m swir16/SCL on the item's own UTM grid, tiled with overviews), covering
a small area around a 64 x 64 px tile. The real pipeline runs on them through Dagster (the
``cropassets materialize`` CLI in a child process with the region's own tiles, seasons and
the ``earth-search`` profile): reflectance comes out as ``DN * 1e-4 - 0.1`` (the items'
``raster:bands`` rule) and in [0, 1.2], SCL clouds are masked in the weekly cube, and every
week says it was made without radar (Earth Search has no analysis-ready Sentinel-1).
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from replay_world import ITEMS_DIR, local_asset, real_items, rewrite, run_one_tile

from cropassets.core.storage import open_zarr

pytestmark = pytest.mark.slow

# 64 x 64 px in EPSG:32613 near lon -105.0, lat 40.1: inside both orbits' footprints
TILE_BOUNDS = (500000.0, 4440000.0, 500640.0, 4440640.0)
AREA = (499360.0, 4439360.0, 501280.0, 4441280.0)  # the local COGs: the tile + 640 m
SEASON_START = date(2024, 3, 25)  # a Monday; the items fall in weeks 1-5
BANDS_10M = ("blue", "green", "red", "nir")
REFLECTANCE = {"blue": 0.04, "green": 0.07, "red": 0.05, "nir": 0.40, "swir16": 0.20}


@pytest.fixture(scope="module")
def replay(tmp_path_factory):
    items = real_items("earthsearch_sentinel-2-c1-l2a_S2*_T13TDE_*.json")
    if len(items) != 10:
        pytest.skip(f"{ITEMS_DIR}: the 10 Earth Search c1 T13TDE items are needed")
    root = tmp_path_factory.mktemp("replay")
    first = min(pd.Timestamp(it["properties"]["datetime"]) for it in items)
    # a cloud (SCL 9) over the tile's north-west 32 x 32 px on the first scene
    r0, c0 = int((AREA[3] - TILE_BOUNDS[3]) / 20), int((TILE_BOUNDS[0] - AREA[0]) / 20)
    cloud = (slice(r0, r0 + 16), slice(c0, c0 + 16), 9)
    local = []
    for it in items:
        folder = root / "cogs" / it["id"]
        hrefs = {k: local_asset(folder / f"{k}.tif", AREA, "EPSG:32613",
                                10.0 if k in BANDS_10M else 20.0, "uint16", 0,
                                round((v + 0.1) / 1e-4))  # the items' rule: DN * 1e-4 - 0.1
                 for k, v in REFLECTANCE.items()}
        cloudy = pd.Timestamp(it["properties"]["datetime"]) == first
        hrefs["scl"] = local_asset(folder / "scl.tif", AREA, "EPSG:32613", 20.0, "uint8", 0, 4,
                                   cloud if cloudy else None)
        local.append(rewrite(it, hrefs, root / "absent"))
    data = run_one_tile(root, {"sentinel-2-c1-l2a": local}, "EPSG:32613", TILE_BOUNDS,
                        "2023-03-27", SEASON_START.isoformat(), 5, "earth-search")
    return data, items, first, root / "dagster_home"


def _week_key(ts: pd.Timestamp) -> str:
    day = ts.tz_convert("UTC").date()
    return (SEASON_START + timedelta(days=7 * ((day - SEASON_START).days // 7))).isoformat()


def test_reflectance_by_the_items_rule_and_no_radar_said(replay):
    data, items, _, home = replay
    from rasterio.warp import transform_bounds
    from shapely.geometry import box, shape

    tile_ll = box(*transform_bounds("EPSG:32613", "EPSG:4326", *TILE_BOUNDS))
    by_week: dict[str, list[str]] = {}
    for it in items:
        # the profile's default cloud limit, and the footprint (two orbits) over the tile
        if it["properties"]["eo:cloud_cover"] <= 90 and shape(it["geometry"]).intersects(
                tile_ll):
            by_week.setdefault(_week_key(pd.Timestamp(it["properties"]["datetime"])),
                               []).append(it["id"])
    assert len(by_week) == 5 and sum(map(len, by_week.values())) == 9
    # the weekly cubes' value-range check names the empty radar features and why
    from dagster import AssetCheckKey, AssetKey, DagsterInstance

    with DagsterInstance.from_config(str(home)) as instance:
        evaluation = instance.event_log_storage.get_asset_check_execution_history(
            AssetCheckKey(AssetKey("weekly_cube"), "value_ranges"), limit=1)[0].evaluation
        assert evaluation.passed
        assert "no value at all of ['vv', 'vh', 'vh_vv'] (radar none: profile earth-search" \
            in evaluation.description
    for week, ids in by_week.items():
        raw = open_zarr(data / "raw_scenes" / "R00" / f"{week}.zarr")
        assert sorted(str(v) for v in raw["s2_id"].values) == sorted(ids)
        assert raw.attrs["radar"] == "none: profile earth-search has no analysis-ready Sentinel-1"
        assert raw.sizes["s1_time"] == 0
        cube = open_zarr(data / "weekly_cube" / "R00" / f"{week}.zarr")
        assert np.isnan(cube["features"].sel(feature="vh").values).all()
        for band, expected in REFLECTANCE.items():
            values = raw[band].values
            assert np.isfinite(values).all(), band  # the nodata strip lies outside the tile
            assert (values >= 0).all() and (values <= 1.2).all(), band
            np.testing.assert_allclose(values, expected, atol=1e-4, err_msg=band)


def test_scl_clouds_are_masked_in_the_weekly_cube(replay):
    data, _, first, _ = replay
    cube = open_zarr(data / "weekly_cube" / "R00" / f"{_week_key(first)}.zarr")
    ndvi = cube["features"].sel(feature="ndvi").values
    n_obs = cube["n_obs"].sel(sensor="s2").values
    expected = (REFLECTANCE["nir"] - REFLECTANCE["red"]) / (REFLECTANCE["nir"] + REFLECTANCE["red"])
    # the north-west 32 x 32 px under the cloud (16 SCL pixels of 20 m) lost that scene
    cloud_scenes = n_obs[:32, :32].max()
    assert cloud_scenes < n_obs[48:, 48:].min()
    clear = np.isfinite(ndvi[48:, 48:])
    assert clear.all()
    np.testing.assert_allclose(ndvi[48:, 48:], expected, atol=1e-3)
    if cloud_scenes == 0:  # the only scene of the week: nothing observed under the cloud
        assert np.isnan(ndvi[:32, :32]).all() or n_obs[:32, :32].max() == 0
