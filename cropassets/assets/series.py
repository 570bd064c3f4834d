"""Weekly cubes: one composite per tile and week.

The gap-filled, smoothed season series is not an asset: it is computed from the cubes of
weeks 1..w where it is used (``sos_map``, ``crop_map``, ``scalograms``), so a new week
stores one cube and nothing else.
"""

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
from cropassets.core.storage import open_zarr
from cropassets.partitions import split_tile_week, tile_week_partitions
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
    # dask-backed: the checks read one feature at a time, chunk by chunk (opened without
    # dask, xarray caches a whole variable on first access: 7.7 GB for a 10980² tile)
    cube = open_zarr(path, dask=True)
    feats = cube["features"]
    nan_share = {f: float(np.isnan(feats[i].values).mean()) for i, f in enumerate(cfg.features)}
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
