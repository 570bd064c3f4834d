"""The new-week sensor: when the STAC catalog has scenes of the next week, publish it.

Each tick looks at the current season(s): the first week whose ``week_layers`` partition is
not materialized is requested once it is over and the catalog holds a scene of it. The
request is a Dagster asset backfill over that week for every tile (raw_scenes -> ... ->
crop_map, and week_model / week_layers), so the backfill daemon runs the chain in
dependency order across the tile x week and week partitions, and the backfill shows in the
UI. One week at a time: while a backfill of this sensor is in flight, ticks skip.
"""

import json
import os
from datetime import UTC, datetime

from dagster import (
    AssetKey,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)
from dagster._core.definitions.assets.graph.asset_graph_subset import AssetGraphSubset
from dagster._core.definitions.events import AssetKeyPartitionKey
from dagster._core.execution.backfill import BulkActionsFilter, BulkActionStatus

from cropassets.core.season_progress import next_week
from cropassets.core.seasons import SeasonWeek, all_weeks
from cropassets.partitions import MIN_WEEKS, SEASONS, TILES
from cropassets.resources.stac import StacCatalog

WEEK_TAG = "cropassets/week"
"""Tag of the backfills this sensor launches: the week key."""
TILE_WEEK_CHAIN = ("raw_scenes", "weekly_cube", "season_series", "sos_map")
"""Tile x week assets every week gets (crop_map too from week 3 on)."""
IN_FLIGHT = (BulkActionStatus.REQUESTED, BulkActionStatus.CANCELING, BulkActionStatus.FAILING)
INTERVAL_S = int(os.environ.get("CROPASSETS_SENSOR_INTERVAL", "120"))
"""Seconds between ticks (CROPASSETS_SENSOR_INTERVAL)."""
DEFAULT_STATUS = (DefaultSensorStatus.STOPPED
                  if os.environ.get("CROPASSETS_SENSOR", "on").lower() in ("off", "0", "false")
                  else DefaultSensorStatus.RUNNING)
"""Running unless CROPASSETS_SENSOR=off (it can always be toggled in the UI)."""


def week_asset_partitions(week: SeasonWeek) -> set[AssetKeyPartitionKey]:
    """Every asset partition that publishing ``week`` materializes."""
    tile_assets = TILE_WEEK_CHAIN + (("crop_map",) if week.index >= MIN_WEEKS else ())
    week_assets = (("week_model",) if week.index >= MIN_WEEKS else ()) + ("week_layers",)
    out = {AssetKeyPartitionKey(AssetKey(a), f"{t}|{week.key}") for a in tile_assets
           for t in TILES}
    out |= {AssetKeyPartitionKey(AssetKey(a), week.key) for a in week_assets}
    return out


def _has_scenes(stac: StacCatalog, week: SeasonWeek) -> bool:
    return any(any(stac.search_week(tile, week)) for tile in TILES.values())


@sensor(
    asset_selection=list(TILE_WEEK_CHAIN) + ["crop_map", "week_model", "week_layers"],
    minimum_interval_seconds=INTERVAL_S,
    default_status=DEFAULT_STATUS,
    description=(
        "Watches the STAC catalog: when the next week of the current season is over and has "
        "scenes, launches a backfill of that week for every tile through to the crop map and "
        "the week layers the tiler serves. One week at a time, in order."
    ),
)
def new_week_sensor(context: SensorEvaluationContext, stac: StacCatalog):
    """Request the next publishable week of the current season as one backfill."""
    active = context.instance.get_backfills(
        filters=BulkActionsFilter(statuses=list(IN_FLIGHT)), limit=50)
    mine = [b for b in active if WEEK_TAG in b.tags]
    if mine:
        return SkipReason(f"backfill {mine[0].backfill_id} of week {mine[0].tags[WEEK_TAG]} "
                          "is still running")
    published = context.instance.get_materialized_partitions(AssetKey("week_layers"))
    cursor = json.loads(context.cursor or "{}")
    today = datetime.now(UTC).date()
    reasons = []
    for season in (s for s in SEASONS if s.role == "current"):
        step = next_week(all_weeks([season]), published, lambda w: _has_scenes(stac, w), today)
        if step.week is None:
            reasons.append(f"season {season.id}: {step.reason}")
            continue
        week = step.week
        if cursor.get("requested") == week.key and cursor.get("attempts", 0) >= 2:
            return SkipReason(f"week {week.key} was requested twice without being published; "
                              "see its backfills in the UI and re-launch it from there")
        attempts = cursor.get("attempts", 0) + 1 if cursor.get("requested") == week.key else 1
        context.update_cursor(json.dumps({"requested": week.key, "attempts": attempts}))
        subset = AssetGraphSubset.from_asset_partition_set(
            week_asset_partitions(week), context.repository_def.asset_graph)
        return RunRequest.for_asset_graph_subset(subset, tags={WEEK_TAG: week.key})
    return SkipReason("; ".join(reasons) or "no current season is configured")
