"""weekly_cube -> season_series -> sos_map through Dagster on the test world."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from dagster import AssetKey, DagsterInstance, MultiPartitionKey, materialize
from rio_cogeo.cogeo import cog_validate

from cropassets.assets.ingest import raw_scenes
from cropassets.assets.series import SEASON_TO_DATE, season_series, weekly_cube
from cropassets.assets.sos import sos_map
from cropassets.core.storage import dataset_to_series, open_zarr
from cropassets.partitions import SEASONS, TILES, tile_week_partitions
from cropassets.resources import DataRoot, build_resources
from cropassets.settings import load_settings

ASSETS = [raw_scenes, weekly_cube, season_series, sos_map]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Materialize the chain for the first tile, weeks 1..3 of the reference season."""
    root = tmp_path_factory.mktemp("data")
    home = tmp_path_factory.mktemp("home")
    tile = next(iter(TILES))
    weeks = [w.isoformat() for w in SEASONS[0].week_starts()]
    resources = build_resources() | {"data_root": DataRoot(root=str(root))}
    with DagsterInstance.local_temp(str(home)) as instance:
        def go(week: str, assets=ASSETS):
            result = materialize(ASSETS, selection=assets, partition_key=f"{tile}|{week}",
                                 instance=instance, resources=resources)
            assert result.success
            return result

        for w in weeks[:3]:
            go(w)
        yield {"root": root, "tile": tile, "weeks": weeks, "go": go, "instance": instance}


def test_weekly_cube_and_series_shapes(run):
    root, tile, weeks = run["root"], run["tile"], run["weeks"]
    cube = open_zarr(root / "weekly_cube" / tile / f"{weeks[0]}.zarr")
    assert cube["features"].dims == ("feature", "y", "x")
    assert list(cube["feature"].values) == ["ndvi", "lswi", "vv", "vh", "vh_vv"]
    assert cube["features"].shape[1:] == TILES[tile].shape
    assert cube.rio.crs.to_epsg() == 32647
    series = dataset_to_series(open_zarr(root / "season_series" / tile / f"{weeks[2]}.zarr"))
    assert series.dims == ("feature", "week", "y", "x")
    assert series.shape == (5, 3, *TILES[tile].shape)
    assert list(series["week"].values) == weeks[:3]
    vals = series.values
    # stored per feature: backscatter in dB survives the int16 storage
    assert -40 < np.nanmin(vals[3]) < np.nanmax(vals[3]) < 5
    # gap-filled: a pixel is NaN only where a feature was never observed in weeks 1..3
    cubes = np.stack([open_zarr(root / "weekly_cube" / tile / f"{w}.zarr")["features"].values
                      for w in weeks[:3]], axis=1)
    never = np.isnan(cubes).all(axis=1)
    np.testing.assert_array_equal(np.isnan(vals).any(axis=1), never)
    ndvi = vals[0][np.isfinite(vals[0])]
    assert -1 <= ndvi.min() and ndvi.max() <= 1


def test_series_partition_mapping_reads_season_start_to_this_week():
    tile = next(iter(TILES))
    weeks = [w.isoformat() for w in SEASONS[1].week_starts()]
    downstream = MultiPartitionKey({"tile": tile, "week": weeks[3]})
    upstream = SEASON_TO_DATE.get_upstream_mapped_partitions_result_for_partitions(
        tile_week_partitions.subset_with_partition_keys([downstream]), tile_week_partitions,
        tile_week_partitions).partitions_subset.get_partition_keys()
    assert sorted(k.keys_by_dimension["week"] for k in upstream) == weeks[:4]
    assert {k.keys_by_dimension["tile"] for k in upstream} == {tile}


def test_sos_cog_is_valid_and_tagged(run):
    path = run["root"] / "sos_map" / run["tile"] / f"{run['weeks'][2]}.tif"
    assert cog_validate(str(path), quiet=True)[0]
    with rasterio.open(path) as src:
        assert src.dtypes[0] == "uint16" and src.nodata == 0
        assert src.crs.to_epsg() == 32647
        assert src.transform == TILES[run["tile"]].transform
        tags = src.tags()
        assert tags["season"] == SEASONS[0].id and tags["week_of_season"] == "3"
        assert tags["last_observation_date"] == "2024-05-26"
        doy = src.read(1)
    started = doy[doy > 0]
    season_doy = SEASONS[0].start.timetuple().tm_yday
    assert np.all((started >= season_doy) & (started < season_doy + 21))


def _series(root, tile, week):
    return dataset_to_series(open_zarr(root / "season_series" / tile / f"{week}.zarr")).values


def test_later_observations_change_nothing_of_week_w(run, tmp_path):
    """Rule 1: materializing later weeks (new scenes arriving) leaves week 3 identical."""
    root, tile, weeks, go = run["root"], run["tile"], run["weeks"], run["go"]
    before_series = _series(root, tile, weeks[2])
    with rasterio.open(root / "sos_map" / tile / f"{weeks[2]}.tif") as src:
        before_sos = src.read(1)
    # new weeks arrive: ingest and process weeks 4..6, then recompute week 3 from scratch
    for w in weeks[3:6]:
        go(w)
    shutil.rmtree(root / "season_series" / tile / f"{weeks[2]}.zarr")
    go(weeks[2], [season_series, sos_map])
    after = _series(root, tile, weeks[2])
    np.testing.assert_array_equal(after, before_series)
    with rasterio.open(root / "sos_map" / tile / f"{weeks[2]}.tif") as src:
        np.testing.assert_array_equal(src.read(1), before_sos)
    # while week 6's series does see the later weeks
    series6 = open_zarr(root / "season_series" / tile / f"{weeks[5]}.zarr")
    assert series6.sizes["week"] == 6
    mats = run["instance"].get_materialized_partitions(AssetKey("season_series"))
    assert f"{tile}|{weeks[5]}" in mats


def test_week_with_no_clear_observation_is_all_nan(run, tmp_path):
    """A week whose every S2 pixel is masked still gives a valid (NaN) composite."""
    from cropassets.core.cube.composite import weekly_composite

    raw = open_zarr(run["root"] / "raw_scenes" / run["tile"] / f"{run['weeks'][0]}.zarr").load()
    raw["scl"][:] = 9
    cube = weekly_composite(raw)
    assert np.isnan(cube["features"].sel(feature="ndvi").values).all()
    assert (cube["n_obs"].sel(sensor="s2").values == 0).all()


def test_truth_labels_exist_for_evaluation():
    world = load_settings().world_dir
    labels = json.loads((Path(world) / "labels" / f"{SEASONS[0].id}.geojson").read_text())
    assert any(f["properties"]["sos_doy"] for f in labels["features"])
