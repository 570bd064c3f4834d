"""Ingestion assets: STAC search and loading of each week's scenes onto each tile."""

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import xarray as xr
from dagster import (
    AssetCheckSeverity,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    Nothing,
    asset,
)

from cropassets.assets._steps import SINGLE_RUN, each_partition
from cropassets.assets._ui import check_result, check_spec
from cropassets.core import quality
from cropassets.core.seasons import find_week
from cropassets.core.stac.scenes import SkippedScene, radar_status
from cropassets.core.stac.week_writer import write_week
from cropassets.core.tiles import get_tile
from cropassets.partitions import SEASONS, TILES, split_tile_week, tile_week_partitions
from cropassets.resources.data_root import DataRoot
from cropassets.resources.stac_catalog import StacCatalog

CLOUDY_SCL = (3, 8, 9, 10)
"""Scene-classification codes counted as cloud or shadow (shadow, medium/high cloud, cirrus)."""


@asset(
    partitions_def=tile_week_partitions,
    group_name="ingest",
    backfill_policy=SINGLE_RUN,
    dagster_type=Nothing,
    kinds={"zarr", "stac"},
    check_specs=[
        check_spec("raw_scenes", "scene_count", (
            "Scenes of the week on the tile; warns below the minimum counts "
            f"(Sentinel-2: {quality.MIN_S2_SCENES}, Sentinel-1: {quality.MIN_S1_SCENES}, "
            "since a 12-day orbit misses whole weeks)."),
            partitions_def=tile_week_partitions),
        check_spec("raw_scenes", "cloud_free_share", (
            "Share of valid S2 pixel-observations (SCL > 0) of the week that are clear "
            f"(SCL 4-7); warns below {quality.MIN_CLEAR_SHARE} or when nothing valid was "
            "seen. Metadata: share per scene."), partitions_def=tile_week_partitions),
    ],
    description=(
        "Every Sentinel-2 L2A and Sentinel-1 scene acquired in the week that intersects the "
        "tile, read onto the tile grid (reprojected/resampled where the scene differs), S2 "
        "scale/offset applied from item metadata, SCL band and scene ids kept. Stored as "
        "<data>/raw_scenes/<tile>/<week>.zarr with dims (s2_time|s1_time, y, x)."
    ),
)
def raw_scenes(context: AssetExecutionContext, stac_catalog: StacCatalog, data_root: DataRoot
               ) -> Iterator[Any]:
    """Search, load and store the raw scenes of each tile x week of the step."""
    yield from each_partition(
        context, lambda key: _raw_scenes(context, key, stac_catalog, data_root))


def _raw_scenes(context: AssetExecutionContext, key: object, stac_catalog: StacCatalog,
                data_root: DataRoot) -> MaterializeResult:
    """Search, load and store one tile x week of raw scenes."""
    tile_id, week_key = split_tile_week(key)
    tile = get_tile(TILES, tile_id)
    week = find_week(SEASONS, week_key)
    t0 = time.perf_counter()
    s2_items, s1_items = stac_catalog.search_week(tile, week)
    t_search = time.perf_counter() - t0
    context.log.info(f"{tile.id} {week.key}: {len(s2_items)} S2 and {len(s1_items)} S1 items")
    profile = stac_catalog.catalog_profile()

    def attrs(ds: xr.Dataset, skipped: list[SkippedScene]) -> dict[str, Any]:
        radar = radar_status(profile, len(s1_items), ds.sizes["s1_time"])
        return {"week": week.key, "season": week.season.id,
                "week_of_season": week.week_of_season, "radar": radar,
                "skipped_scenes": len(skipped)}

    path = data_root.raw_scenes_path(tile.id, week.key)
    written = write_week(s2_items, s1_items, tile, profile, path, attrs)
    skipped = written.skipped
    for s in skipped:
        context.log.warning(f"skipped scene {s.scene_id}: {s.reason}")
    radar = radar_status(profile, len(s1_items), len(written.s1_ids))
    if radar != "loaded":
        context.log.warning(f"{tile.id} {week.key}: made without radar ({radar})")
    nbytes = written.nbytes
    n_s2, n_s1 = len(written.s2_ids), len(written.s1_ids)
    scl = written.scl
    valid = scl > 0
    cloud_frac = float(np.isin(scl, CLOUDY_SCL)[valid].mean()) if valid.any() else float("nan")
    warn = AssetCheckSeverity.WARN
    checks = [
        check_result("scene_count", quality.scene_count(
            n_s2, n_s1, min_s1=quality.MIN_S1_SCENES if profile.s1_collection else 0), warn),
        check_result("cloud_free_share", quality.raw_clear_share(
            scl, scene_ids=written.s2_ids), warn),
    ]
    return MaterializeResult(check_results=checks, metadata={
        "path": MetadataValue.path(str(path)),
        "season": week.season.id,
        "week_of_season": week.week_of_season,
        "s2_scenes": n_s2,
        "s1_scenes": n_s1,
        "empty": n_s2 + n_s1 == 0,
        "radar": radar,
        "optical_only": radar != "loaded",
        "complete": not skipped,  # False: a scene failed to load (the sensor retries the week)
        "s2_cloud_shadow_fraction": cloud_frac,
        "s2_scene_ids": MetadataValue.json(written.s2_ids),
        "s1_scene_ids": MetadataValue.json(written.s1_ids),
        "skipped_scenes": MetadataValue.json([{"id": s.scene_id, "reason": s.reason}
                                              for s in skipped]),
        "bytes": nbytes,
        "strips": written.strips,
        "search_seconds": round(t_search, 3),
        "total_seconds": round(time.perf_counter() - t0, 3),
    })
