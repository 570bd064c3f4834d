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

import json
import os
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from affine import Affine

from cropassets.core.cog import write_cog
from cropassets.core.storage import open_zarr

pytestmark = pytest.mark.slow

ITEMS_DIR = Path(os.environ.get("CROPASSETS_REAL_STAC") or
                 Path(__file__).resolve().parents[3] / "shared" / "real-stac" / "items")
# 64 x 64 px in EPSG:32613 near lon -105.0, lat 40.1: inside both orbits' footprints
TILE_BOUNDS = (500000.0, 4440000.0, 500640.0, 4440640.0)
AREA = (499360.0, 4439360.0, 501280.0, 4441280.0)  # the local COGs: the tile + 640 m
SEASON_START = date(2024, 3, 25)  # a Monday; the items fall in weeks 1-5
BANDS_10M = ("blue", "green", "red", "nir")
REFLECTANCE = {"blue": 0.04, "green": 0.07, "red": 0.05, "nir": 0.40, "swir16": 0.20}


def _c1_items() -> list[dict]:
    files = sorted(ITEMS_DIR.glob("earthsearch_sentinel-2-c1-l2a_S2*_T13TDE_*.json"))
    return [json.loads(p.read_text()) for p in files]


def _write_assets(item: dict, folder: Path, cloudy: bool) -> dict:
    """Local COGs for the item's bands and SCL; returns the item with hrefs rewritten."""
    item = json.loads(json.dumps(item))
    for key in (*BANDS_10M, "swir16", "scl"):
        res = 10.0 if key in BANDS_10M else 20.0
        w = int((AREA[2] - AREA[0]) / res)
        h = int((AREA[3] - AREA[1]) / res)
        transform = Affine(res, 0, AREA[0], 0, -res, AREA[3])
        if key == "scl":
            data = np.full((h, w), 4, np.uint8)  # vegetation
            if cloudy:  # a cloud (SCL 9) over the tile's north-west quarter
                r0 = int((AREA[3] - TILE_BOUNDS[3]) / res)
                c0 = int((TILE_BOUNDS[0] - AREA[0]) / res)
                data[r0:r0 + 16, c0:c0 + 16] = 9
        else:
            dn = round((REFLECTANCE[key] + 0.1) / 1e-4)  # the items' rule: DN * 1e-4 - 0.1
            data = np.full((h, w), dn, np.uint16)
            data[:, :4] = 0  # a nodata strip at the west edge, outside the tile
        path = folder / item["id"] / f"{key}.tif"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_cog(path, data, "EPSG:32613", transform, 0, blocksize=256)
        item["assets"][key]["href"] = str(path)
    for key in list(item["assets"]):  # assets the pipeline never reads point nowhere real
        if key not in (*BANDS_10M, "swir16", "scl"):
            item["assets"][key]["href"] = str(folder / "absent" / f"{key}.tif")
    return item


@pytest.fixture(scope="module")
def replay(tmp_path_factory):
    items = _c1_items()
    if len(items) != 10:
        pytest.skip(f"{ITEMS_DIR}: the 10 Earth Search c1 T13TDE items are needed")
    root = tmp_path_factory.mktemp("replay")
    world = root / "world"
    (world / "stac" / "items").mkdir(parents=True)
    cogs = root / "cogs"
    first = min(pd.Timestamp(it["properties"]["datetime"]) for it in items)
    local = [_write_assets(it, cogs, cloudy=pd.Timestamp(it["properties"]["datetime"]) == first)
             for it in items]
    (world / "stac" / "items" / "sentinel-2-c1-l2a.ndjson").write_text(
        "\n".join(json.dumps(it) for it in local) + "\n")
    collection = {
        "type": "Collection", "stac_version": "1.0.0", "id": "sentinel-2-c1-l2a",
        "description": "real Earth Search items, hrefs rewritten to local COGs",
        "license": "proprietary", "links": [],
        "extent": {"spatial": {"bbox": [[-106.2, 39.6, -104.8, 40.7]]},
                   "temporal": {"interval": [["2024-03-01T00:00:00Z", "2024-05-01T00:00:00Z"]]}}}
    (world / "stac" / "collections.json").write_text(json.dumps({"collections": [collection]}))
    config = root / "config"
    config.mkdir()
    (config / "tiles.json").write_text(json.dumps({"tiles": [
        {"id": "R00", "crs": "EPSG:32613", "bounds": list(TILE_BOUNDS), "resolution": 10.0}]}))
    (config / "seasons.json").write_text(json.dumps({"seasons": [
        {"id": "2023", "start": "2023-03-27", "weeks": 5, "role": "reference"},
        {"id": "2024", "start": SEASON_START.isoformat(), "weeks": 5, "role": "current"}]}))
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(Path(__file__).resolve().parents[2] / "deploy" / "dagster.yaml", home)
    env = {**os.environ, "CROPASSETS_WORLD": str(world), "CROPASSETS_DATA": str(root / "data"),
           "CROPASSETS_TILES": str(config / "tiles.json"),
           "CROPASSETS_SEASONS": str(config / "seasons.json"),
           "CROPASSETS_CATALOG_PROFILE": "earth-search", "CROPASSETS_STAC_URL": "",
           "DAGSTER_HOME": str(home), "CROPASSETS_SENSOR": "off"}
    cli = Path(sys.executable).with_name("cropassets")
    done = subprocess.run([str(cli), "materialize", "raw_scenes", "weekly_cube", "--weeks",
                           "2024"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "data", items, first, home


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
