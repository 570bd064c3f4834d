"""raw_scenes materialized through Dagster with a real (SQLite) instance and a live STAC API."""

import json
import socket
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
from dagster import DagsterInstance, materialize

from cropassets.assets.ingest import raw_scenes
from cropassets.core.reference.sampling import interior_mask
from cropassets.core.seasons import SeasonError
from cropassets.core.storage import open_zarr
from cropassets.materialize import select_weeks
from cropassets.partitions import SEASONS, TILES
from cropassets.resources import DataRoot, StacCatalog, build_resources
from cropassets.settings import load_settings


@pytest.fixture(scope="module")
def instance(tmp_path_factory):
    with DagsterInstance.local_temp(str(tmp_path_factory.mktemp("dagster_home"))) as inst:
        yield inst


def _items(world: Path, collection: str) -> list[dict]:
    lines = (world / "stac/items" / f"{collection}.ndjson").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _in_week(item: dict, week_key: str) -> bool:
    t = datetime.fromisoformat(item["properties"]["datetime"].replace("Z", "+00:00")).date()
    start = datetime.fromisoformat(week_key).date()
    return 0 <= (t - start).days < 7


def _materialize(instance, key, **resources):
    res = build_resources() | resources
    return materialize([raw_scenes], partition_key=key, instance=instance, resources=res)


def _week_with_32648_scene(world: Path) -> tuple[str, dict]:
    """The week of the clearest S2 scene delivered on EPSG:32648 (the tiles are 32647)."""
    weeks = [w.isoformat() for s in SEASONS for w in s.week_starts()]
    items = sorted((it for it in _items(world, "sentinel-2-l2a")
                    if it["properties"]["proj:epsg"] == 32648),
                   key=lambda it: it["properties"]["eo:cloud_cover"])
    assert items, "the demo world must contain EPSG:32648 scenes"
    week = next(w for w in weeks if _in_week(items[0], w))
    return week, items[0]


def _class_raster(world: Path, tile_id: str, season_id: str) -> tuple[np.ndarray, object]:
    with rasterio.open(world / "labels/fields" / f"{tile_id}.tif") as src:
        fields, transform = src.read(1), src.transform
    labels = json.loads((world / "labels" / f"{season_id}.geojson").read_text())
    code = {f["properties"]["field_id"]: f["properties"]["class_code"]
            for f in labels["features"]}
    return np.vectorize(lambda f: code.get(int(f), 0))(fields), (fields, transform)


def test_partition_through_dagster_lands_fields_in_place(instance):
    world = load_settings().world_dir
    week, item32648 = _week_with_32648_scene(world)
    season = next(s for s in SEASONS if s.start.isoformat() <= week)
    # the tile with the most water: dark parcels are the sharpest georeferencing target
    tile = max(TILES.values(),
               key=lambda t: (_class_raster(world, t.id, season.id)[0] == 6).sum())
    result = _materialize(instance, f"{tile.id}|{week}")
    assert result.success
    md = result.asset_materializations_for_node("raw_scenes")[0].metadata
    expected_s2 = sorted(it["id"] for it in _items(world, "sentinel-2-l2a")
                         if _in_week(it, week) and it["properties"]["eo:cloud_cover"] <= 90)
    expected_s1 = sorted(it["id"] for it in _items(world, "sentinel-1-rtc") if _in_week(it, week))
    assert sorted(md["s2_scene_ids"].value) == expected_s2
    assert sorted(md["s1_scene_ids"].value) == expected_s1
    assert md["s2_scenes"].value == len(expected_s2) and md["bytes"].value > 0
    assert md["radar"].value == ("loaded" if expected_s1 else
                                 "none: no sentinel-1-rtc scene this week")
    assert md["optical_only"].value is (not expected_s1)
    # recorded in the instance
    assert f"{tile.id}|{week}" in instance.get_materialized_partitions(raw_scenes.key)

    ds = open_zarr(Path(md["path"].value)).load()
    assert ds.rio.crs.to_epsg() == 32647
    assert ds["red"].shape[1:] == tile.shape
    scene = int(np.flatnonzero(ds["s2_id"].values == item32648["id"])[0])
    clear = np.isin(ds["scl"].values[scene], (4, 5, 6))
    red, nir = ds["red"].values[scene], ds["nir"].values[scene]
    # offset handling: surface reflectance of clear pixels within [0, 1.2]
    assert np.all((red[clear] >= 0) & (red[clear] <= 1.2) & (nir[clear] <= 1.2))
    # georeferencing after reprojection from EPSG:32648: water parcels are dark in NIR,
    # forest parcels have high NDVI, judged from the truth field raster of the tile grid
    classes, (fields, transform) = _class_raster(world, tile.id, season.id)
    assert transform == tile.transform
    interior = interior_mask(fields, radius=2)
    ndvi = (nir - red) / (nir + red)
    water = clear & interior & (classes == 6)
    forest = clear & interior & (classes == 5)
    assert water.sum() > 20 and forest.sum() > 20
    assert np.median(nir[water]) < 0.08
    assert np.median(ndvi[forest]) > 0.6


def test_week_without_scenes_is_a_valid_empty_result(instance, tmp_path):
    from cropassets.testing.stac_fixtures import write_fixture_catalog

    stac_dir = tmp_path / "stac"
    write_fixture_catalog(stac_dir, n_items=0)
    tile = next(iter(TILES))
    key = f"{tile}|{SEASONS[0].start.isoformat()}"
    result = _materialize(instance, key, stac_catalog=StacCatalog(local_stac_dir=str(stac_dir)),
                          data_root=DataRoot(root=str(tmp_path / "data")))
    md = result.asset_materializations_for_node("raw_scenes")[0].metadata
    assert md["empty"].value is True and md["s2_scenes"].value == 0
    ds = open_zarr(Path(md["path"].value))
    assert ds.sizes["s2_time"] == 0 and ds.sizes["s1_time"] == 0


def test_unreachable_stac_api_fails_naming_the_url(instance, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    tile = next(iter(TILES))
    key = f"{tile}|{SEASONS[0].start.isoformat()}"
    with pytest.raises(Exception, match=f"127.0.0.1:{port}"):
        _materialize(instance, key, stac_catalog=StacCatalog(url=url, retries=1, backoff_s=0.05),
                     data_root=DataRoot(root=str(tmp_path / "data")))
    assert not (tmp_path / "data/raw_scenes").exists() or not any(
        (tmp_path / "data/raw_scenes").rglob("*.zarr"))


def test_week_outside_every_season_is_named():
    with pytest.raises(SeasonError, match="'2023-01-02' lies outside every season"):
        select_weeks("2023-01-02...2023-02-06")
    assert select_weeks(f"{SEASONS[0].start}...{SEASONS[0].start}") == [
        SEASONS[0].start.isoformat()]
