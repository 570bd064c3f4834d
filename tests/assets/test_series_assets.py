"""weekly_cube -> sos_map through Dagster on the test world.

The season series is not stored (issue 16): sos_map computes it from the cubes of weeks
1..w, rounded as the int16 store rounded it, so SOS equals the stored-series SOS.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from dagster import AssetKey, DagsterInstance, MultiPartitionKey, materialize
from rio_cogeo.cogeo import cog_validate

from cropassets.assets.ingest import raw_scenes
from cropassets.assets.series import weekly_cube
from cropassets.assets.sos import sos_map, write_sos
from cropassets.core.seasons import find_week
from cropassets.core.storage import dataset_to_series, open_zarr, write_zarr_atomic
from cropassets.core.timeseries.season_series import (
    season_series,
    season_series_as_stored,
    stack_cubes,
)
from cropassets.partitions import SEASON_TO_DATE, SEASONS, TILES, tile_week_partitions
from cropassets.resources import DataRoot, build_resources
from cropassets.settings import load_settings

ASSETS = [raw_scenes, weekly_cube, sos_map]


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
    series = dataset_to_series(_series_ds(root, tile, weeks[:3]))
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


def _cubes(root, tile, weeks):
    return stack_cubes([root / "weekly_cube" / tile / f"{w}.zarr" for w in weeks], weeks,
                       chunk=64)


def _series_ds(root, tile, weeks):
    """The season series of weeks 1..w as sos_map computes it (in memory)."""
    cfg = build_resources()["series_settings"]
    return season_series_as_stored(_cubes(root, tile, weeks), cfg.cutoff, cfg.order)


def _sos(path):
    with rasterio.open(path) as src:
        return src.read(1)


def test_no_series_is_stored(run):
    assert not (run["root"] / "season_series").exists()
    assert not run["instance"].get_materialized_partitions(AssetKey("season_series"))


def test_sos_equals_sos_of_the_stored_int16_series(run, tmp_path):
    """The COG equals, byte for byte, the one computed from the series as it was stored.

    The old path: season_series written as int16 Zarr (write_zarr_atomic), read back
    (open_zarr), SOS from that; the new one: the materialized sos_map (in memory).
    """
    root, tile, weeks = run["root"], run["tile"], run["weeks"]
    cfg = build_resources()["series_settings"]
    for k in (1, 2, 3):
        out, enc = season_series(_cubes(root, tile, weeks[:k]), cfg.cutoff, cfg.order)
        write_zarr_atomic(out, tmp_path / f"series{k}.zarr", enc)
        stored = open_zarr(tmp_path / f"series{k}.zarr")
        mem = _series_ds(root, tile, weeks[:k])
        np.testing.assert_array_equal(dataset_to_series(mem).values,
                                      dataset_to_series(stored).values)
        assert dataset_to_series(mem).dtype == dataset_to_series(stored).dtype == np.float32
        old_cog = tmp_path / f"sos{k}.tif"
        write_sos(old_cog, stored, dataset_to_series(stored).load(),
                  stored["n_obs_s2"].values, find_week(SEASONS, weeks[k - 1]), cfg)
        new_cog = root / "sos_map" / tile / f"{weeks[k - 1]}.tif"
        assert new_cog.read_bytes() == old_cog.read_bytes(), k
    assert (_sos(new_cog) > 0).any()  # week 3 has started pixels: the equality means something


def test_sos_map_reads_the_cubes_of_weeks_1_to_w(run):
    mats = run["instance"].fetch_materializations(AssetKey("sos_map"), limit=10).records
    md = {r.asset_materialization.partition: r.asset_materialization.metadata for r in mats}
    key = f"{run['tile']}|{run['weeks'][2]}"
    assert md[key]["cubes_read"].value == 3 and md[key]["weeks"].value == 3
    assert md[key]["nan_share_after_fill"].value >= 0


def test_later_observations_change_nothing_of_week_w(run, tmp_path):
    """Rule 1: materializing later weeks (new scenes arriving) leaves week 3 identical."""
    root, tile, weeks, go = run["root"], run["tile"], run["weeks"], run["go"]
    before_series = dataset_to_series(_series_ds(root, tile, weeks[:3])).values
    sos3 = root / "sos_map" / tile / f"{weeks[2]}.tif"
    before_sos = sos3.read_bytes()
    # new weeks arrive: ingest and process weeks 4..6, then recompute week 3 from scratch
    for w in weeks[3:6]:
        go(w)
    sos3.unlink()
    go(weeks[2], [sos_map])
    after = dataset_to_series(_series_ds(root, tile, weeks[:3])).values
    np.testing.assert_array_equal(after, before_series)
    assert sos3.read_bytes() == before_sos
    # while week 6's SOS does see the later weeks
    mats = run["instance"].get_materialized_partitions(AssetKey("sos_map"))
    assert f"{tile}|{weeks[5]}" in mats
    assert _series_ds(root, tile, weeks[:6]).sizes["week"] == 6


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
