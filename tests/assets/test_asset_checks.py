"""Asset checks through Dagster on the test world: pass on normal data, fail on broken data."""

import shutil
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
import zarr
from dagster import (
    AssetCheckSeverity,
    AssetSelection,
    DagsterInstance,
    materialize,
)

from cropassets.assets.ingest import raw_scenes
from cropassets.assets.maps import coverage_cogs_on_disk, coverage_map, week_layers
from cropassets.assets.series import weekly_cube
from cropassets.assets.sos import sos_cogs_on_disk, sos_map
from cropassets.core.publish.manifest_record import WeekManifest
from cropassets.core.storage import open_zarr
from cropassets.partitions import SEASONS, TILES
from cropassets.resources import DataRoot, build_resources

ASSETS = [raw_scenes, weekly_cube, sos_map, coverage_map, week_layers,
          sos_cogs_on_disk, coverage_cogs_on_disk]
CHAIN = [raw_scenes, weekly_cube, sos_map]
T0, T1 = list(TILES)[:2]
REF = [w.isoformat() for w in SEASONS[0].week_starts()]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    resources = build_resources() | {"data_root": DataRoot(root=str(root))}
    with DagsterInstance.local_temp(str(tmp_path_factory.mktemp("home"))) as instance:
        def go(selection, key=None, data_root=None, **kw):
            res = resources if data_root is None else resources | {
                "data_root": DataRoot(root=str(data_root))}
            return materialize(ASSETS, selection=selection, partition_key=key,
                               instance=instance, resources=res, **kw)

        assert go([raw_scenes, weekly_cube], f"{T0}|{REF[0]}").success
        normal = go(CHAIN, f"{T0}|{REF[1]}")  # SOS reads the cubes of weeks 1 and 2
        yield {"root": root, "go": go, "normal": normal}


def _checks(result):
    return {(e.asset_key.to_user_string(), e.check_name): e
            for e in result.get_asset_check_evaluations()}


def test_checks_pass_on_a_normal_partition(env):
    result = env["normal"]
    assert result.success
    checks = _checks(result)
    assert set(checks) == {
        ("raw_scenes", "scene_count"), ("raw_scenes", "cloud_free_share"),
        ("weekly_cube", "clear_observation_share"), ("weekly_cube", "value_ranges"),
        ("sos_map", "gap_fill_complete"), ("sos_map", "cog_valid"),
        ("sos_map", "sos_within_season"), ("sos_map", "sos_cogs_on_disk")}
    on_disk = checks.pop(("sos_map", "sos_cogs_on_disk"))  # standalone: runs with its asset
    assert on_disk.passed and on_disk.partition is None and on_disk.metadata["files"].value == 1
    for (asset, name), e in checks.items():
        assert e.partition == f"{T0}|{REF[1]}", (asset, name)  # a status per partition
        if e.severity == AssetCheckSeverity.ERROR:
            assert e.passed, (asset, name, e.description)
    md = {k: {n: v.value for n, v in e.metadata.items()} for k, e in checks.items()}
    assert md[("raw_scenes", "scene_count")]["s2_scenes"] >= 1
    assert 0 <= md[("raw_scenes", "cloud_free_share")]["clear_share"] <= 1
    ranges = md[("weekly_cube", "value_ranges")]["features"]
    assert -1 <= ranges["ndvi"]["min"] <= ranges["ndvi"]["max"] <= 1
    assert -40 <= ranges["vh"]["min"] <= ranges["vh"]["max"] <= 10
    fill = md[("sos_map", "gap_fill_complete")]
    assert fill["failed_share"] == 0 and fill["weeks"] == 2
    assert 0 < fill["observed_share"] <= 1
    assert fill["legit_nan_share"] == pytest.approx(1 - fill["observed_share"])
    cog = md[("sos_map", "cog_valid")]
    assert cog["valid_cog"] and cog["dtypes"] == ["uint16"] and cog["nodata"] == [0.0]
    # blocking where downstream would be garbage
    assert {s.name: s.blocking for s in sos_map.check_specs}["gap_fill_complete"]
    assert {s.name: s.blocking for s in weekly_cube.check_specs}["value_ranges"]


def test_ui_metadata_timings_and_tiler_link(env):
    result = env["normal"]
    for asset in ("weekly_cube", "sos_map"):
        md = result.asset_materializations_for_node(asset)[0].metadata
        assert md["seconds"].value >= 0, asset
    link = result.asset_materializations_for_node("sos_map")[0].metadata["map"].value
    parsed = urlparse(link)
    assert f"{parsed.scheme}://{parsed.netloc}" == "http://127.0.0.1:8080"
    assert parse_qs(parsed.fragment) == {"season": [SEASONS[0].id], "week": [REF[1]],
                                         "layer": ["sos"]}
    raw = result.asset_materializations_for_node("raw_scenes")[0].metadata
    assert raw["s2_scene_ids"].value and raw["total_seconds"].value >= 0


def _broken_cube(env, tmp_path, zero_counts: bool):
    """A data root holding a copy of a real weekly cube of week 1, features set to NaN."""
    root = tmp_path / "data"
    cube = root / "weekly_cube" / T0 / f"{REF[0]}.zarr"
    shutil.copytree(env["root"] / "weekly_cube" / T0 / f"{REF[0]}.zarr", cube)
    zarr.open_array(str(cube / "features"), mode="r+")[...] = np.nan
    if zero_counts:
        zarr.open_array(str(cube / "n_obs"), mode="r+")[...] = 0
    assert np.isnan(open_zarr(cube)["features"].values).all()
    return root


def test_all_nan_cube_fails_gap_fill_and_blocks(env, tmp_path):
    """A composite that lost its values (its counts say observed) -> series NaN -> blocked.

    The series is computed inside sos_map (not stored), so the check is sos_map's: the step
    fails and no SOS COG is written (a broken series never reaches a published product).
    """
    root = _broken_cube(env, tmp_path, zero_counts=False)
    assert (open_zarr(root / "weekly_cube" / T0 / f"{REF[0]}.zarr")["n_obs"].values > 0).any()
    result = env["go"]([sos_map], f"{T0}|{REF[0]}", data_root=root, raise_on_error=False)
    assert not result.success
    fill = _checks(result)[("sos_map", "gap_fill_complete")]
    assert not fill.passed and fill.blocking and fill.severity == AssetCheckSeverity.ERROR
    assert fill.metadata["failed_share"].value == 1.0
    assert fill.metadata["unfilled_pairs"].value == fill.metadata["observed_pairs"].value > 0
    assert result.is_node_failed("sos_map")
    assert not (root / "sos_map" / T0 / f"{REF[0]}.tif").exists()


def test_series_value_where_nothing_was_observed_fails_gap_fill(env, tmp_path, monkeypatch):
    """A series value where the cubes saw nothing (an invented value) fails the check."""
    import cropassets.assets.sos as sos_module

    root = _broken_cube(env, tmp_path, zero_counts=True)  # nothing observed in week 1
    real = sos_module.season_series_as_stored

    def inventing(cubes, cutoff, order=3):
        ds = real(cubes, cutoff, order)
        return ds.assign(series_ndvi=ds["series_ndvi"].fillna(0.5))

    monkeypatch.setattr(sos_module, "season_series_as_stored", inventing)
    result = env["go"]([sos_map], f"{T0}|{REF[0]}", data_root=root, raise_on_error=False)
    assert not result.success and result.is_node_failed("sos_map")
    fill = _checks(result)[("sos_map", "gap_fill_complete")]
    assert not fill.passed and fill.blocking
    assert fill.metadata["invented_pairs"].value == open_zarr(
        root / "weekly_cube" / T0 / f"{REF[0]}.zarr").sizes["y"] ** 2
    assert not (root / "sos_map" / T0 / f"{REF[0]}.tif").exists()


def test_all_clouded_first_week_is_legitimately_nan(env, tmp_path):
    """A week with nothing observed (NaN and zero counts) passes and SOS still runs."""
    root = _broken_cube(env, tmp_path, zero_counts=True)
    result = env["go"]([sos_map], f"{T0}|{REF[0]}", data_root=root)
    fill = _checks(result)[("sos_map", "gap_fill_complete")]
    assert fill.passed and fill.metadata["legit_nan_share"].value == 1.0
    assert fill.metadata["nan_share_after_fill"].value == 1.0
    assert result.asset_materializations_for_node("sos_map")


def test_corrupt_cog_on_disk_fails_the_standalone_check(env, tmp_path):
    """A COG truncated after it was written: the re-validation check catches it."""
    copy = tmp_path / "data"
    shutil.copytree(env["root"] / "sos_map" / T0, copy / "sos_map" / T0)
    shutil.copy(copy / "sos_map" / T0 / f"{REF[1]}.tif", copy / "sos_map" / T0 / f"{REF[0]}.tif")
    bad = copy / "sos_map" / T0 / f"{REF[1]}.tif"
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    # run on its own (no partition): every file of the asset on disk
    result = env["go"](AssetSelection.checks(sos_cogs_on_disk), data_root=copy)
    assert result.success  # not blocking: nothing downstream in this run
    (e,) = result.get_asset_check_evaluations()
    assert not e.passed and e.severity == AssetCheckSeverity.ERROR and e.partition is None
    assert e.metadata["files"].value == 2 and e.metadata["invalid"].value == 1
    assert list(e.metadata["invalid_files"].value) == [str(bad)]


def test_week_layers_leaves_an_invalid_cog_unpublished(env, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(env["root"] / "sos_map" / T0, root / "sos_map" / T0)
    shutil.copytree(env["root"] / "weekly_cube" / T0, root / "weekly_cube" / T0)
    (root / "sos_map" / T1).mkdir(parents=True)
    bad = root / "sos_map" / T1 / f"{REF[1]}.tif"
    bad.write_bytes(b"II*\x00" + b"\x00" * 200)  # a TIFF header and nothing else
    # week_layers only publishes coverage COGs: the coverage_map asset counts them
    assert not env["go"]([week_layers], REF[1], data_root=root).asset_materializations_for_node(
        "week_layers")[0].metadata["coverage_available"].value
    assert not (root / "coverage_map").exists()
    cov_run = env["go"]([coverage_map], f"{T0}|{REF[1]}", data_root=root)
    cov_checks = _checks(cov_run)
    assert set(cov_checks) == {("coverage_map", "cog_valid"),
                               ("coverage_map", "coverage_cogs_on_disk")}
    assert all(c.passed for c in cov_checks.values())
    assert cov_checks[("coverage_map", "cog_valid")].blocking
    cov_md = cov_run.asset_materializations_for_node("coverage_map")[0].metadata
    assert cov_md["path"].value == str(root / "coverage_map" / T0 / f"{REF[1]}.tif")
    assert parse_qs(urlparse(cov_md["map"].value).fragment)["layer"] == ["coverage"]
    result = env["go"]([week_layers], REF[1], data_root=root)
    assert result.success
    (e,) = result.get_asset_check_evaluations()
    assert e.check_name == "published_cogs_valid" and not e.passed
    assert list(e.metadata["invalid_files"].value) == [str(bad)]
    assert e.metadata["tiles_without_sos"].value == [T1]
    assert e.metadata["tiles_without_coverage"].value == [T1]
    manifest = WeekManifest.read(root / "week_layers" / f"{REF[1]}.json")
    assert set(manifest.tiles) == {T0}  # only the valid tile is served
    assert manifest.layers_missing == {"sos": f"invalid COG: {T1}",
                                       "coverage": f"coverage_map not materialized: {T1}"}
    md = result.asset_materializations_for_node("week_layers")[0].metadata
    assert parse_qs(urlparse(md["map_sos"].value).fragment)["layer"] == ["sos"]
    assert "map_crop" not in md  # no crop layer this week
    # the STAC items follow the manifest: the valid tile's SOS, nothing for the invalid one
    assert md["stac_items"].value == {"cropassets-crop": [],
                                      "cropassets-sos": [f"sos-{T0}-{REF[1]}"],
                                      "cropassets-coverage": [f"coverage-{T0}-{REF[1]}"]}
    # coverage from the real weekly cubes of weeks 1..2: season = sum of the weeks' counts
    import numpy as np
    import rasterio

    from cropassets.core.cube.coverage import read_cube_counts

    counts = [read_cube_counts(root / "weekly_cube" / T0 / f"{w}.zarr") for w in REF[:2]]
    assert manifest.layers.coverage is True
    with rasterio.open(root / str(manifest.tiles[T0].coverage)) as ds:
        cov = ds.read()
        assert ds.tags()["radar_present"] == str(bool(counts[1][1].any())).lower()
    np.testing.assert_array_equal(cov[0], counts[0][0].astype(int) + counts[1][0])
    np.testing.assert_array_equal(cov[1:], counts[1])
    assert manifest.coverage_range == [0, int(cov[0].max())]
    assert cov_md["max_clear_optical_season"].value == int(cov[0].max())
    assert cov_md["radar_present"].value == bool(counts[1][1].any())
    assert sorted(p.name for p in (root / "stac" / "cropassets-sos").glob("*.json")) == [
        "collection.json", f"sos-{T0}-{REF[1]}.json"]


def test_blocking_cog_check_on_a_plain_geotiff(env, monkeypatch, tmp_path):
    """sos_map writing a non-COG: the in-asset check fails and fails the run (blocking)."""
    import rasterio
    from rasterio.enums import Resampling

    import cropassets.assets.sos as sos_module

    root = tmp_path / "data"
    for week in REF[:2]:  # SOS of week 2 reads the cubes of weeks 1 and 2
        cube = f"weekly_cube/{T0}/{week}.zarr"
        shutil.copytree(env["root"] / cube, root / cube)

    def plain_tiff(path, data, crs, transform, nodata, **_):
        """A GeoTIFF with overviews appended after the image data: not a COG layout."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with rasterio.open(path, "w", driver="GTiff", width=data.shape[1],
                           height=data.shape[0], count=1, dtype=data.dtype, crs=crs,
                           transform=transform, nodata=nodata) as dst:
            dst.write(data, 1)
        with rasterio.open(path, "r+") as dst:
            dst.build_overviews([2, 4], Resampling.nearest)

    monkeypatch.setattr(sos_module, "write_cog", plain_tiff)
    result = env["go"]([sos_map], f"{T0}|{REF[1]}", data_root=root, raise_on_error=False)
    assert not result.success
    cog = _checks(result)[("sos_map", "cog_valid")]
    assert not cog.passed and cog.blocking
    assert any(p.startswith("COG:") for p in cog.metadata["problems"].value)


def test_coverage_map_needs_the_cubes_of_weeks_1_to_w(env, tmp_path):
    """Week 2 without the week-1 cube: the asset fails naming it, and writes nothing."""
    root = tmp_path / "data"
    cube = f"weekly_cube/{T0}/{REF[1]}.zarr"
    shutil.copytree(env["root"] / cube, root / cube)
    result = env["go"]([coverage_map], f"{T0}|{REF[1]}", data_root=root, raise_on_error=False)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    error = failure.step_failure_data.error
    assert error.cause.cls_name == "FileNotFoundError" and f"{REF[0]}.zarr" in error.cause.message
    assert not (root / "coverage_map").exists()


def test_corrupt_coverage_cog_fails_its_standalone_check(env, tmp_path):
    root = tmp_path / "data"
    for w in REF[:1]:
        cube = f"weekly_cube/{T0}/{w}.zarr"
        shutil.copytree(env["root"] / cube, root / cube)
    assert env["go"]([coverage_map], f"{T0}|{REF[0]}", data_root=root).success
    path = root / "coverage_map" / T0 / f"{REF[0]}.tif"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    result = env["go"](AssetSelection.checks(coverage_cogs_on_disk), data_root=root)
    (e,) = result.get_asset_check_evaluations()
    assert not e.passed and list(e.metadata["invalid_files"].value) == [str(path)]
