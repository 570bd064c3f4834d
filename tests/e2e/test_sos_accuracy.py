"""End to end (slow): generated world -> STAC API -> cubes -> series -> SOS vs truth."""

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr

from cropassets.core.cube.composite import weekly_composite
from cropassets.core.seasons import all_weeks, load_seasons
from cropassets.core.stac.catalog_profiles import DEMO
from cropassets.core.stac.scenes import load_week
from cropassets.core.stac.search import search_items
from cropassets.core.stac.server import serve
from cropassets.core.tiles import load_tiles
from cropassets.core.timeseries.smoothing import smooth_series
from cropassets.core.timeseries.start_of_season import start_of_season
from cropassets.world.generate import generate_world

pytestmark = pytest.mark.slow
N_WEEKS = 20


@pytest.fixture(scope="module")
def season_cubes(tmp_path_factory):
    world = tmp_path_factory.mktemp("sos-world")
    generate_world(world, seed=11, size=256, tiles=1, seasons=[
        {"id": "2024", "start": "2024-05-06", "weeks": N_WEEKS, "role": "reference"}])
    tile = next(iter(load_tiles(world / "tiles.json").values()))
    weeks = all_weeks(load_seasons(world / "seasons.json"))
    cubes = []
    with serve(world / "stac") as server:
        for week in weeks:
            start, end = week.interval_utc()
            s2 = search_items(server.url, [DEMO.s2_collection], tile.bbox_wgs84(), start, end,
                              max_cloud_cover=90)
            s1 = search_items(server.url, [DEMO.s1_collection], tile.bbox_wgs84(), start, end)
            raw, _ = load_week(s2, s1, tile, DEMO)
            cubes.append(weekly_composite(raw))
    return world, tile, weeks, cubes


def _truth(world: Path, tile_id: str, season_id: str) -> np.ndarray:
    with rasterio.open(world / "labels/fields" / f"{tile_id}.tif") as src:
        fields = src.read(1)
    lut = np.full(fields.max() + 1, np.nan)
    for f in json.loads((world / "labels" / f"{season_id}.geojson").read_text())["features"]:
        p = f["properties"]
        if p["sos_doy"] is not None and p["field_id"] <= fields.max():
            lut[p["field_id"]] = p["sos_doy"]
    return lut[fields]


def _sos_at(cubes, week_count, season):
    feats = np.stack([c["features"].values for c in cubes[:week_count]], axis=1)
    clear = np.stack([c["n_obs"].values[0] for c in cubes[:week_count]])
    series = xr.DataArray(smooth_series(feats, 0.2, 3, axis=1), dims=("feature", "week", "y", "x"),
                          coords={"feature": list(cubes[0]["feature"].values)})
    return start_of_season(series, season.start, 0.2, 0.15, clear_obs=clear)


def test_sos_agrees_with_truth_once_the_season_has_started(season_cubes):
    world, tile, weeks, cubes = season_cubes
    season = weeks[0].season
    truth = _truth(world, tile.id, season.id)
    season_doy = season.start.timetuple().tm_yday
    report = {}
    for w in (12, 16, N_WEEKS):
        sos = _sos_at(cubes, w, season)
        started = np.isfinite(truth) & (truth <= season_doy + 7 * w - 21)
        err = np.abs(sos - truth)[started]
        within = float((err <= 14).mean())
        report[w] = (int(started.sum()), within, float(np.nanmedian(err)))
    print("week: (clearly started crop px, share within ±14 d, median abs error d)", report)
    n, within, mae = report[N_WEEKS]
    assert n > 10_000
    assert within >= 0.85 and mae <= 7
    assert report[12][1] >= 0.75  # mid-monsoon, radar fallback included
