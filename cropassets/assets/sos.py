"""Start-of-Season maps per tile and week, written as COGs."""

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import numpy as np
from dagster import (
    AssetExecutionContext,
    AssetIn,
    MaterializeResult,
    MetadataValue,
    Nothing,
    asset,
)

from cropassets.assets._steps import SINGLE_RUN, each_partition
from cropassets.assets._ui import check_result, check_spec, cogs_on_disk_check, tiler_link
from cropassets.core import quality
from cropassets.core.publish.cog import write_cog
from cropassets.core.seasons import find_week
from cropassets.core.storage import dataset_to_series, open_zarr
from cropassets.core.timeseries.start_of_season import start_of_season
from cropassets.partitions import SEASONS, split_tile_week, tile_week_partitions
from cropassets.resources.data_root import DataRoot
from cropassets.resources.series_settings import SeriesSettings

SOS_NODATA = 0
"""SOS COG nodata: day of year 0 does not exist (season not started yet, or not a crop)."""


@asset(
    partitions_def=tile_week_partitions,
    group_name="maps",
    backfill_policy=SINGLE_RUN,
    dagster_type=Nothing,
    ins={"season_series": AssetIn(dagster_type=Nothing)},
    kinds={"cog"},
    check_specs=[
        check_spec("sos_map", "cog_valid", (
            "The file on disk is a valid COG (rio-cogeo cog_validate), every block decodes, "
            "uint16 with nodata 0, one band (docs/CONTRACTS.md). Blocking: week_layers "
            "publishes it."), partitions_def=tile_week_partitions, blocking=True),
        check_spec("sos_map", "sos_within_season", (
            "Every SOS date lies between the season start and the last day of this week."),
            partitions_def=tile_week_partitions, blocking=True),
    ],
    description=(
        "Start of Season per pixel from the smoothed series up to this week: the day of year "
        "NDVI first crosses base + fraction x amplitude (TIMESAT rule), with the radar/water "
        "transplanting signal of flooded rice. uint16 day of year, nodata 0 where the season "
        "has not started by this week. <data>/sos_map/<tile>/<week>.tif"
    ),
)
def sos_map(context: AssetExecutionContext, data_root: DataRoot,
            series_settings: SeriesSettings) -> Iterator[Any]:
    """Compute and write the SOS COG of each tile x week of the step."""
    yield from each_partition(context, lambda key: _sos_map(key, data_root, series_settings))


def _sos_map(key: object, data_root: DataRoot, series_settings: SeriesSettings
             ) -> MaterializeResult:
    """Compute and write the SOS COG of one tile x week."""
    tile, week_key = split_tile_week(key)
    week = find_week(SEASONS, week_key)
    t0 = time.perf_counter()
    ds = open_zarr(data_root.season_series_path(tile, week_key))
    cfg = series_settings
    doy = start_of_season(dataset_to_series(ds).load(), week.season.start, cfg.sos_fraction,
                          cfg.sos_min_amplitude, clear_obs=ds["n_obs_s2"].values,
                          radar_min_amplitude_db=series_settings.sos_radar_min_amplitude_db)
    out = np.where(np.isfinite(doy), np.round(doy), SOS_NODATA).astype(np.uint16)
    last_day = week.end - timedelta(days=1)
    path = data_root.sos_map_path(tile, week_key)
    write_cog(path, out, str(ds.rio.crs), ds.rio.transform(), SOS_NODATA,
              overview_resampling="nearest", band_descriptions=["sos_doy"],
              tags={"product": "start_of_season", "units": "day of year",
                    "season": week.season.id, "season_start": week.season.start.isoformat(),
                    "week_of_season": week.week_of_season,
                    "last_observation_date": last_day.isoformat(),
                    "sos_fraction": series_settings.sos_fraction})
    started = out != SOS_NODATA
    checks = [check_result("cog_valid", quality.cog_check(path, quality.SOS_COG)),
              check_result("sos_within_season", quality.sos_in_season(
                  out, SOS_NODATA, week.season.start, last_day))]
    return MaterializeResult(check_results=checks, metadata={
        "path": MetadataValue.path(str(path)),
        "started_share": float(started.mean()),
        "median_sos_doy": float(np.median(out[started])) if started.any() else float("nan"),
        "map": tiler_link(week.season.id, week.key, "sos"),
        "seconds": round(time.perf_counter() - t0, 2),
    })


sos_cogs_on_disk = cogs_on_disk_check(sos_map, "sos_map", quality.SOS_COG,
                                      "sos_cogs_on_disk", "SOS COGs")
