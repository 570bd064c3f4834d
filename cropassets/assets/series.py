"""Weekly cubes and season series: composites per week, gap-filled and smoothed series."""

import time

import numpy as np
from dagster import (
    AssetExecutionContext,
    AssetIn,
    DimensionPartitionMapping,
    IdentityPartitionMapping,
    MaterializeResult,
    MetadataValue,
    MultiPartitionMapping,
    Nothing,
    StaticPartitionMapping,
    asset,
)

from cropassets.core.composite import write_weekly_composite
from cropassets.core.seasons import all_weeks, find_week
from cropassets.core.series import season_series as build_series
from cropassets.core.series import stack_cubes
from cropassets.core.storage import dataset_to_series, open_zarr, write_zarr_atomic
from cropassets.partitions import SEASONS, tile_week_partitions
from cropassets.resources.processing import SeriesSettings
from cropassets.resources.storage import DataRoot


def _weeks_up_to_mapping() -> StaticPartitionMapping:
    """Upstream week u -> every downstream week w >= u of the same season."""
    by_upstream: dict[str, list[str]] = {}
    for w in all_weeks(SEASONS):
        later = [x.key for x in all_weeks([w.season]) if x.index >= w.index]
        by_upstream[w.key] = later
    return StaticPartitionMapping(by_upstream)


SEASON_TO_DATE = MultiPartitionMapping({
    "tile": DimensionPartitionMapping("tile", IdentityPartitionMapping()),
    "week": DimensionPartitionMapping("week", _weeks_up_to_mapping()),
})
"""Season series of week w reads the weekly cubes of weeks 1..w of its season, same tile."""


@asset(
    partitions_def=tile_week_partitions,
    group_name="series",
    ins={"raw_scenes": AssetIn(dagster_type=Nothing)},
    kinds={"zarr"},
    description=(
        "One composite per tile and week: SCL-masked (cloud, shadow, cirrus, snow, nodata, "
        "plus a buffer) NDVI and LSWI medians of clear S2 observations, Lee-filtered S1 VV/VH "
        "in dB and their ratio; valid-observation counts; NaN where nothing clear was seen. "
        "Dims (feature, y, x)."
    ),
)
def weekly_cube(context: AssetExecutionContext, data_root: DataRoot,
                series_settings: SeriesSettings) -> MaterializeResult:
    """Composite one tile x week of raw scenes."""
    keys = context.partition_key.keys_by_dimension
    raw = open_zarr(data_root.partition_path("raw_scenes", keys["tile"], keys["week"]),
                    dask=True)
    cfg = series_settings
    path = data_root.partition_path("weekly_cube", keys["tile"], keys["week"])
    nbytes = write_weekly_composite(raw, path, tuple(cfg.features), cfg.cloud_buffer_px,
                                    cfg.lee_window, cfg.s1_enl, chunk=cfg.chunk)
    cube = open_zarr(path).load()
    feats = cube["features"].values
    nan_share = {f: float(np.isnan(feats[i]).mean()) for i, f in enumerate(cfg.features)}
    return MaterializeResult(metadata={
        "path": MetadataValue.path(str(path)),
        "nan_share": MetadataValue.json(nan_share),
        "clear_share_s2": float((cube["n_obs"].values[0] > 0).mean()),
        "mean_s2_obs": float(cube["n_obs"].values[0].mean()),
        "s2_scenes": int(raw.sizes["s2_time"]),
        "s1_scenes": int(raw.sizes["s1_time"]),
        "bytes": nbytes,
    })


@asset(
    partitions_def=tile_week_partitions,
    group_name="series",
    ins={"weekly_cube": AssetIn(dagster_type=Nothing, partition_mapping=SEASON_TO_DATE)},
    kinds={"zarr"},
    description=(
        "The season's series up to this week: weekly cubes of weeks 1..w (truncated first), "
        "gap-filled linearly along time (edges take the nearest observation) and smoothed "
        "with a zero-phase 3rd-order Butterworth low-pass. Dims (feature, week, y, x)."
    ),
)
def season_series(context: AssetExecutionContext, data_root: DataRoot,
                  series_settings: SeriesSettings) -> MaterializeResult:
    """Build the smoothed series of one tile from its season start to this week."""
    keys = context.partition_key.keys_by_dimension
    week = find_week(SEASONS, keys["week"])
    upstream = sorted({k.keys_by_dimension["week"]
                       for k in context.asset_partition_keys_for_input("weekly_cube")})
    expected = [w.key for w in all_weeks([week.season]) if w.index <= week.index]
    if upstream != expected:
        raise RuntimeError(f"partition mapping gave weeks {upstream}, expected {expected}")
    t0 = time.perf_counter()
    paths = [data_root.partition_path("weekly_cube", keys["tile"], w) for w in expected]
    cubes = stack_cubes(paths, expected, chunk=series_settings.chunk // 2)
    out, enc = build_series(cubes, series_settings.cutoff, series_settings.order)
    out.attrs.update(season=week.season.id, season_start=week.season.start.isoformat(),
                     week_of_season=week.index, cutoff=series_settings.cutoff,
                     order=series_settings.order)
    path = data_root.partition_path("season_series", keys["tile"], keys["week"])
    nbytes = write_zarr_atomic(out, path, enc)
    written = open_zarr(path, dask=True)
    return MaterializeResult(metadata={
        "path": MetadataValue.path(str(path)),
        "weeks": week.index,
        "no_clear_s2_share": float((written["n_obs_s2"] == 0).mean().compute()),
        "nan_share_after_fill": float(dataset_to_series(written).isnull().mean().compute()),
        "seconds": round(time.perf_counter() - t0, 2),
        "bytes": nbytes,
    })
