"""Weekly cubes and season series: composites per week, gap-filled and smoothed series."""

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
from dagster import (
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetIn,
    MaterializeResult,
    MetadataValue,
    Nothing,
    asset,
)

from cropassets.assets._steps import SINGLE_RUN, each_partition
from cropassets.assets._ui import check_result, check_spec
from cropassets.core import quality
from cropassets.core.cube.composite import write_weekly_composite
from cropassets.core.seasons import find_week
from cropassets.core.storage import dataset_to_series, open_zarr, write_zarr_atomic
from cropassets.core.timeseries.season_series import season_series as build_series
from cropassets.core.timeseries.season_series import stack_cubes
from cropassets.partitions import SEASON_TO_DATE, SEASONS, split_tile_week, tile_week_partitions
from cropassets.resources.dask_cluster import DaskCluster
from cropassets.resources.data_root import DataRoot
from cropassets.resources.series_settings import SeriesSettings


@asset(
    partitions_def=tile_week_partitions,
    group_name="series",
    backfill_policy=SINGLE_RUN,
    dagster_type=Nothing,
    ins={"raw_scenes": AssetIn(dagster_type=Nothing)},
    kinds={"zarr"},
    check_specs=[
        check_spec("weekly_cube", "clear_observation_share", (
            "Share of the tile's pixels with at least one clear S2 observation this week; "
            f"warns below {quality.MIN_CLEAR_SHARE}."), partitions_def=tile_week_partitions),
        check_spec("weekly_cube", "value_ranges", (
            "Every finite composite value within its plausible range (NDVI, LSWI in [-1, 1]; "
            "VV, VH in [-40, 10] dB; VH-VV in [-30, 20] dB), no infinities; NaN (nothing "
            "clear) is allowed. Blocking: a series built from out-of-range composites is "
            "garbage. Metadata: min/max and out-of-range counts per feature."),
            partitions_def=tile_week_partitions, blocking=True),
    ],
    description=(
        "One composite per tile and week: SCL-masked (cloud, shadow, cirrus, snow, nodata, "
        "plus a buffer) NDVI and LSWI medians of clear S2 observations, Lee-filtered S1 VV/VH "
        "in dB and their ratio; valid-observation counts; NaN where nothing clear was seen. "
        "Dims (feature, y, x)."
    ),
)
def weekly_cube(context: AssetExecutionContext, data_root: DataRoot,
                series_settings: SeriesSettings, dask_cluster: DaskCluster) -> Iterator[Any]:
    """Composite the raw scenes of each tile x week of the step."""
    yield from each_partition(context, lambda key: _weekly_cube(
        key, data_root, series_settings, dask_cluster))


def _radar_note(status: str | None) -> str:
    """``raw_scenes``' radar status as a check note ("" when radar was loaded)."""
    return "" if status in (None, "loaded") else f"radar {status}"


def _weekly_cube(key: object, data_root: DataRoot, series_settings: SeriesSettings,
                 dask_cluster: DaskCluster) -> MaterializeResult:
    """Composite one tile x week of raw scenes."""
    tile, week = split_tile_week(key)
    raw = open_zarr(data_root.raw_scenes_path(tile, week), dask=True)
    cfg = series_settings
    t0 = time.perf_counter()
    path = data_root.weekly_cube_path(tile, week)
    with dask_cluster.compute_context():  # blocks as dask tasks: threads, or the cluster
        nbytes = write_weekly_composite(raw, path, tuple(cfg.features), cfg.cloud_buffer_px,
                                        cfg.lee_window, cfg.s1_enl, chunk=cfg.chunk)
    cube = open_zarr(path).load()
    feats = cube["features"].values
    nan_share = {f: float(np.isnan(feats[i]).mean()) for i, f in enumerate(cfg.features)}
    n_obs_s2 = cube["n_obs"].sel(sensor="s2").values
    checks = [
        check_result("clear_observation_share", quality.cube_clear_share(n_obs_s2),
                     AssetCheckSeverity.WARN),
        check_result("value_ranges", quality.feature_ranges(
            feats, [str(f) for f in cube["feature"].values],
            absent_reason=_radar_note(raw.attrs.get("radar")))),
    ]
    return MaterializeResult(check_results=checks, metadata={
        "path": MetadataValue.path(str(path)),
        "nan_share": MetadataValue.json(nan_share),
        "clear_share_s2": float((n_obs_s2 > 0).mean()),
        "mean_s2_obs": float(n_obs_s2.mean()),
        "s2_scenes": int(raw.sizes["s2_time"]),
        "s1_scenes": int(raw.sizes["s1_time"]),
        "radar": str(raw.attrs.get("radar", "not recorded")),
        "bytes": nbytes,
        "dask": MetadataValue.json(dask_cluster.describe()),
        "seconds": round(time.perf_counter() - t0, 2),
    })


@asset(
    partitions_def=tile_week_partitions,
    group_name="series",
    backfill_policy=SINGLE_RUN,
    dagster_type=Nothing,
    ins={"weekly_cube": AssetIn(dagster_type=Nothing, partition_mapping=SEASON_TO_DATE)},
    kinds={"zarr"},
    check_specs=[check_spec("season_series", "gap_fill_complete", (
        "After gap-fill, a (feature, pixel) series is NaN-free exactly where the season so "
        "far was observed: the weekly composites of weeks 1..w hold a value of the feature, "
        "or count a valid observation of its sensor, in at least one week. A series still "
        "NaN there (the fill failed, or a composite lost the values its counts record), or "
        "a value where nothing was ever observed, fails; pixels never observed this season "
        "are legitimately NaN. Blocking: SOS and maps of this week would read the holes. "
        "Metadata: failed share of the observed series, never-observed share, NaN share."),
        partitions_def=tile_week_partitions, blocking=True)],
    description=(
        "The season's series up to this week: weekly cubes of weeks 1..w (truncated first), "
        "gap-filled linearly along time (edges take the nearest observation) and smoothed "
        "with a zero-phase 3rd-order Butterworth low-pass. Dims (feature, week, y, x)."
    ),
)
def season_series(context: AssetExecutionContext, data_root: DataRoot,
                  series_settings: SeriesSettings, dask_cluster: DaskCluster
                  ) -> Iterator[Any]:
    """Build the smoothed series of each tile x week of the step, in week order."""
    if not context.has_partition_key_range:  # the mapping must name exactly weeks 1..w
        _, week_key = split_tile_week(context.partition_key)
        upstream = sorted({k.keys_by_dimension["week"]
                           for k in context.asset_partition_keys_for_input("weekly_cube")})
        expected = [w.key for w in find_week(SEASONS, week_key).weeks_to_date()]
        if upstream != expected:
            raise RuntimeError(f"partition mapping gave weeks {upstream}, expected {expected}")
    with dask_cluster.compute_context():  # every dask compute below: threads, or the cluster
        yield from each_partition(context, lambda key: _season_series(
            key, data_root, series_settings, dask_cluster))


def _season_series(key: object, data_root: DataRoot, series_settings: SeriesSettings,
                   dask_cluster: DaskCluster) -> MaterializeResult:
    """The smoothed series of one tile x week (weeks 1..w of its season)."""
    tile, week_key = split_tile_week(key)
    week = find_week(SEASONS, week_key)
    expected = [w.key for w in week.weeks_to_date()]
    t0 = time.perf_counter()
    paths = [data_root.weekly_cube_path(tile, w) for w in expected]
    cubes = stack_cubes(paths, expected, chunk=series_settings.chunk // 2)
    out, enc = build_series(cubes, series_settings.cutoff, series_settings.order)
    out.attrs.update(season=week.season.id, season_start=week.season.start.isoformat(),
                     week_of_season=week.week_of_season, cutoff=series_settings.cutoff,
                     order=series_settings.order)
    path = data_root.season_series_path(tile, week_key)
    nbytes = write_zarr_atomic(out, path, enc)
    written = open_zarr(path, dask=True)
    fill = quality.gap_fill_check(dataset_to_series(written), cubes["features"], cubes["n_obs"])
    return MaterializeResult(check_results=[check_result("gap_fill_complete", fill)], metadata={
        "path": MetadataValue.path(str(path)),
        "weeks": week.week_of_season,
        "no_clear_s2_share": float((written["n_obs_s2"] == 0).mean().compute()),
        "nan_share_after_fill": fill.metadata["nan_share_after_fill"],
        "never_observed_share": fill.metadata["legit_nan_share"],
        "seconds": round(time.perf_counter() - t0, 2),
        "bytes": nbytes,
        "dask": MetadataValue.json(dask_cluster.describe()),
    })
