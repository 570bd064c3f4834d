"""Start-of-Season maps per tile and week, written as COGs.

The smoothed season series is computed here from the weekly cubes of weeks 1..w, window by
window (:mod:`cropassets.core.timeseries.tile_sos`), and not stored: a new week
stores its cube and its maps, nothing that grows with the season (issue 16); memory holds
one window's series whatever the tile size.
"""

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from affine import Affine
from dagster import (
    AssetExecutionContext,
    AssetIn,
    MaterializeResult,
    MetadataValue,
    Nothing,
    asset,
)

from cropassets.assets._steps import SINGLE_RUN, each_partition
from cropassets.assets._ui import (
    check_result,
    check_spec,
    cogs_on_disk_check,
    skipped_result,
    tiler_link,
)
from cropassets.core import quality
from cropassets.core.publish.cog import write_cog
from cropassets.core.seasons import SeasonWeek, find_week
from cropassets.core.storage import open_zarr
from cropassets.core.timeseries.season_series import season_series_as_stored
from cropassets.core.timeseries.tile_sos import SOS_NODATA, SosParams, sos_days, tile_sos
from cropassets.partitions import SEASON_TO_DATE, SEASONS, split_tile_week, tile_week_partitions
from cropassets.resources.dask_cluster import DaskCluster
from cropassets.resources.data_root import DataRoot
from cropassets.resources.series_settings import SeriesSettings


@asset(
    partitions_def=tile_week_partitions,
    group_name="maps",
    backfill_policy=SINGLE_RUN,
    dagster_type=Nothing,
    ins={"weekly_cube": AssetIn(dagster_type=Nothing, partition_mapping=SEASON_TO_DATE)},
    kinds={"cog"},
    check_specs=[
        check_spec("sos_map", "gap_fill_complete", (
            "After gap-fill, a (feature, pixel) series of weeks 1..w (computed here from "
            "the weekly cubes, not stored) is NaN-free exactly where the season so far was "
            "observed: the weekly composites of weeks 1..w hold a value of the feature, or "
            "count a valid observation of its sensor, in at least one week. A series still "
            "NaN there (the fill failed, or a composite lost the values its counts record), "
            "or a value where nothing was ever observed, fails; pixels never observed this "
            "season are legitimately NaN. Blocking: on failure no SOS is written (a COG "
            "of an earlier run stays as it was) and the step fails, so nothing downstream "
            "reads the holes. Metadata: failed share of the observed series, "
            "never-observed share, NaN share."),
            partitions_def=tile_week_partitions, blocking=True),
        check_spec("sos_map", "cog_valid", (
            "The file on disk is a valid COG (rio-cogeo cog_validate), every block decodes, "
            "uint16 with nodata 0, one band (docs/CONTRACTS.md). Blocking: week_layers "
            "publishes it."), partitions_def=tile_week_partitions, blocking=True),
        check_spec("sos_map", "sos_within_season", (
            "Every SOS date lies between the season start and the last day of this week."),
            partitions_def=tile_week_partitions, blocking=True),
    ],
    description=(
        "Start of Season per pixel from the season's series up to this week, computed here "
        "from the weekly cubes of weeks 1..w (gap-filled linearly along time, edges taking "
        "the nearest observation, smoothed with a zero-phase 3rd-order Butterworth low-pass, "
        "rounded as the int16 series store did; not stored): the day of year "
        "NDVI first crosses base + fraction x amplitude (TIMESAT rule), with the radar/water "
        "transplanting signal of flooded rice. uint16 day of year, nodata 0 where the season "
        "has not started by this week. <data>/sos_map/<tile>/<week>.tif"
    ),
)
def sos_map(context: AssetExecutionContext, data_root: DataRoot,
            series_settings: SeriesSettings, dask_cluster: DaskCluster) -> Iterator[Any]:
    """Compute and write the SOS COG of each tile x week of the step."""
    if not context.has_partition_key_range:  # the mapping must name exactly weeks 1..w
        _, week_key = split_tile_week(context.partition_key)
        upstream = sorted({k.keys_by_dimension["week"]
                           for k in context.asset_partition_keys_for_input("weekly_cube")})
        expected = [w.key for w in find_week(SEASONS, week_key).weeks_to_date()]
        if upstream != expected:
            raise RuntimeError(f"partition mapping gave weeks {upstream}, expected {expected}")
    with dask_cluster.compute_context():  # every dask compute below: threads, or the cluster
        yield from each_partition(context, lambda key: _sos_map(
            key, data_root, series_settings, dask_cluster))


def _sos_map(key: object, data_root: DataRoot, series_settings: SeriesSettings,
             dask_cluster: DaskCluster) -> MaterializeResult:
    """Compute and write the SOS COG of one tile x week from its cubes of weeks 1..w."""
    tile, week_key = split_tile_week(key)
    week = find_week(SEASONS, week_key)
    t0 = time.perf_counter()
    cfg = series_settings
    weeks = [w.key for w in week.weeks_to_date()]
    paths = [data_root.weekly_cube_path(tile, w) for w in weeks]
    # window by window: read, fill, smooth, round, check, SOS (memory: one window's series)
    result = tile_sos(paths, weeks, week.season.start, sos_params(cfg),
                      season_series_as_stored, chunk=cfg.chunk)
    fill = result.fill
    path = data_root.sos_map_path(tile, week_key)
    fill_metadata = {
        "cubes_read": len(weeks),
        "nan_share_after_fill": fill.metadata["nan_share_after_fill"],
        "never_observed_share": fill.metadata["legit_nan_share"],
        "windows": result.windows,
    }
    if not fill.passed:  # a broken series: write nothing (a COG already there stays as it was)
        reason = "the season series failed gap_fill_complete: no SOS written"
        return MaterializeResult(check_results=[
            check_result("gap_fill_complete", fill), skipped_result("cog_valid", reason),
            skipped_result("sos_within_season", reason)], metadata=fill_metadata | {
                "written": False, "seconds": round(time.perf_counter() - t0, 2)})
    grid = open_zarr(paths[0])
    out = result.doy
    write_sos_cog(path, out, str(grid.rio.crs), grid.rio.transform(), week, cfg)
    last_day = week.end - timedelta(days=1)
    started = out != SOS_NODATA
    checks = [check_result("gap_fill_complete", fill),
              check_result("cog_valid", quality.cog_check(path, quality.SOS_COG)),
              check_result("sos_within_season", quality.sos_in_season(
                  out, SOS_NODATA, week.season.start, last_day))]
    return MaterializeResult(check_results=checks, metadata={
        "path": MetadataValue.path(str(path)),
        "started_share": float(started.mean()),
        "median_sos_doy": float(np.median(out[started])) if started.any() else float("nan"),
        "map": tiler_link(week.season.id, week.key, "sos"),
        "weeks": week.week_of_season,
        "no_clear_s2_share": result.no_clear_s2_share,
        **fill_metadata,
        "seconds": round(time.perf_counter() - t0, 2),
        "dask": MetadataValue.json(dask_cluster.describe()),
    })


def sos_params(cfg: SeriesSettings) -> SosParams:
    """The smoothing and SOS rule of the series settings."""
    return SosParams(cutoff=cfg.cutoff, order=cfg.order, fraction=cfg.sos_fraction,
                     min_amplitude=cfg.sos_min_amplitude,
                     radar_min_amplitude_db=cfg.sos_radar_min_amplitude_db)


def write_sos(path: Path, ds: xr.Dataset, series: xr.DataArray, clear_obs: np.ndarray,
              week: SeasonWeek, cfg: SeriesSettings) -> np.ndarray:
    """Write the SOS COG of a whole loaded series at ``path``; returns the uint16 day of year.

    ``ds`` gives the grid, ``series`` the loaded season series (feature, week, y, x),
    ``clear_obs`` the (week, y, x) clear S2 observations.
    """
    out = sos_days(series, clear_obs, week.season.start, sos_params(cfg))
    write_sos_cog(path, out, str(ds.rio.crs), ds.rio.transform(), week, cfg)
    return out


def write_sos_cog(path: Path, doy: np.ndarray, crs: str, transform: Affine, week: SeasonWeek,
                  cfg: SeriesSettings) -> None:
    """Write (y, x) uint16 SOS days of one tile x week as its COG at ``path``."""
    last_day = week.end - timedelta(days=1)
    write_cog(path, doy, crs, transform, SOS_NODATA,
              overview_resampling="nearest", band_descriptions=["sos_doy"],
              tags={"product": "start_of_season", "units": "day of year",
                    "season": week.season.id, "season_start": week.season.start.isoformat(),
                    "week_of_season": week.week_of_season,
                    "last_observation_date": last_day.isoformat(),
                    "sos_fraction": cfg.sos_fraction})


sos_cogs_on_disk = cogs_on_disk_check(sos_map, "sos_map", quality.SOS_COG,
                                      "sos_cogs_on_disk", "SOS COGs")
