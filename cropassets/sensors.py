"""The new-week sensor: when the STAC catalog has scenes of the next week, publish it.

Each tick looks at the current season(s): the first week whose ``week_layers`` partition is
not materialized is requested once it is over and the catalog holds a scene of it. The
request is a Dagster asset backfill over that week for every tile (raw_scenes -> ... ->
sos_map, coverage_map and crop_map, and week_model / week_layers), so the backfill daemon
runs the chain in dependency order across the tile x week and week partitions, and the
backfill shows in the UI. One week at a time: while a backfill of this sensor is in flight,
ticks skip. When no new week is due, the most recent published weeks
(``CROPASSETS_SENSOR_LOOKBACK``, 4) are checked at most hourly
(``CROPASSETS_SENSOR_REFRESH`` s): a week ingested with skipped scenes, or whose catalog now
lists more scenes than were ingested (late arrivals), is ingested again with the later
weeks' SOS and crop maps, coverage and layers that read it (at most twice per week).
"""

import json
from datetime import UTC, datetime

from dagster import (
    AssetKey,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from cropassets.core.season_progress import (
    Ingested,
    next_week,
    recent_published,
    stale_weeks,
)
from cropassets.core.seasons import SeasonWeek, all_weeks
from cropassets.dagster_internals import (
    AssetGraphSubset,
    AssetKeyPartitionKey,
    BulkActionsFilter,
    BulkActionStatus,
)
from cropassets.partitions import MIN_WEEKS, SEASONS, TILES
from cropassets.resources.stac_catalog import StacCatalog
from cropassets.settings import load_settings

WEEK_TAG = "cropassets/week"
"""Tag of the backfills this sensor launches: the week key."""
TILE_WEEK_CHAIN = ("raw_scenes", "weekly_cube", "sos_map", "coverage_map")
"""Tile x week assets every week gets (crop_map too from week 3 on)."""
IN_FLIGHT = (BulkActionStatus.REQUESTED, BulkActionStatus.CANCELING, BulkActionStatus.FAILING)
_SETTINGS = load_settings()
INTERVAL_S = _SETTINGS.sensor_interval_s
"""Seconds between ticks (CROPASSETS_SENSOR_INTERVAL)."""
LOOKBACK_WEEKS = _SETTINGS.sensor_lookback_weeks
"""Recent published weeks checked for skipped scenes and late arrivals."""
REFRESH_S = _SETTINGS.sensor_refresh_s
"""Seconds between two late-arrival checks (each searches the catalog per tile and week)."""
MAX_REFRESHES = 2
"""Times one week is ingested again before the sensor leaves it to a person."""
REFRESH_CHAIN = ("sos_map", "coverage_map", "crop_map")
"""Tile x week assets of later weeks that read a refreshed week's cube."""
DEFAULT_STATUS = (DefaultSensorStatus.RUNNING if _SETTINGS.sensor_on
                  else DefaultSensorStatus.STOPPED)
"""Running unless CROPASSETS_SENSOR=off (it can always be toggled in the UI)."""


def week_asset_partitions(week: SeasonWeek) -> set[AssetKeyPartitionKey]:
    """Every asset partition that publishing ``week`` materializes."""
    tile_assets = TILE_WEEK_CHAIN + (("crop_map",) if week.week_of_season >= MIN_WEEKS else ())
    week_assets = (("week_model",) if week.week_of_season >= MIN_WEEKS else ()) + ("week_layers",)
    out = {AssetKeyPartitionKey(AssetKey(a), f"{t}|{week.key}") for a in tile_assets
           for t in TILES}
    out |= {AssetKeyPartitionKey(AssetKey(a), week.key) for a in week_assets}
    return out


def refresh_partitions(week: SeasonWeek, later: list[SeasonWeek]) -> set[AssetKeyPartitionKey]:
    """A published week ingested again, and what of its later published weeks reads it."""
    out = week_asset_partitions(week)
    for w in later:
        out |= {AssetKeyPartitionKey(AssetKey(a), f"{t}|{w.key}") for t in TILES
                for a in REFRESH_CHAIN if a != "crop_map" or w.week_of_season >= MIN_WEEKS}
        out.add(AssetKeyPartitionKey(AssetKey("week_layers"), w.key))
    return out


def _ingested(instance, weeks: list[SeasonWeek]) -> dict[str, dict[str, Ingested]]:
    """Latest raw_scenes record of each tile-week: scenes loaded and skipped."""
    from dagster import AssetRecordsFilter

    keys = [f"{t}|{w.key}" for w in weeks for t in TILES]
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey("raw_scenes"), asset_partitions=keys),
        limit=4 * len(keys) + 10).records  # newest first
    out: dict[str, dict[str, Ingested]] = {}
    for rec in records:
        mat = rec.asset_materialization
        tile, week = str(mat.partition).split("|")
        if tile in out.get(week, {}):
            continue
        md = mat.metadata
        loaded = sum(int(md[k].value) for k in ("s2_scenes", "s1_scenes") if k in md)
        skipped = len(md["skipped_scenes"].value) if "skipped_scenes" in md else 0
        out.setdefault(week, {})[tile] = Ingested(loaded, skipped)
    return out


def _catalog_scenes(stac_catalog: StacCatalog, week: SeasonWeek) -> dict[str, int]:
    return {t.id: sum(len(items) for items in stac_catalog.search_week(t, week))
            for t in TILES.values()}


def _has_scenes(stac_catalog: StacCatalog, week: SeasonWeek) -> bool:
    return any(any(stac_catalog.search_week(tile, week)) for tile in TILES.values())


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
def new_week_sensor(context: SensorEvaluationContext, stac_catalog: StacCatalog):
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
        weeks = all_weeks([season])
        step = next_week(weeks, published, lambda w: _has_scenes(stac_catalog, w), today)
        if step.week is None:
            reasons.append(f"season {season.id}: {step.reason}")
            refresh = _refresh_request(context, stac_catalog, weeks, published, cursor, today)
            if refresh is not None:
                return refresh
            continue
        week = step.week
        if cursor.get("requested") == week.key and cursor.get("attempts", 0) >= 2:
            return SkipReason(f"week {week.key} was requested twice without being published; "
                              "see its backfills in the UI and re-launch it from there")
        attempts = cursor.get("attempts", 0) + 1 if cursor.get("requested") == week.key else 1
        context.update_cursor(json.dumps(cursor | {"requested": week.key, "attempts": attempts}))
        subset = AssetGraphSubset.from_asset_partition_set(
            week_asset_partitions(week), context.repository_def.asset_graph)
        return RunRequest.for_asset_graph_subset(subset, tags={WEEK_TAG: week.key})
    return SkipReason("; ".join(reasons) or "no current season is configured")


def _refresh_request(context: SensorEvaluationContext, stac_catalog: StacCatalog,
                     weeks: list[SeasonWeek], published: set[str], cursor: dict,
                     today) -> RunRequest | None:
    """A backfill re-ingesting the oldest stale recent week (and what reads it), if any.

    Checked at most every ``REFRESH_S`` seconds; a week is refreshed at most
    ``MAX_REFRESHES`` times (a scene that keeps failing is then left to a person).
    """
    now = datetime.now(UTC).timestamp()
    if now - float(cursor.get("refresh_checked", 0)) < REFRESH_S:
        return None
    cursor["refresh_checked"] = now
    done = cursor.setdefault("refreshed", {})
    recent = recent_published(weeks, published, today, LOOKBACK_WEEKS)
    stale = [(w, why) for w, why in stale_weeks(
        weeks, published, _ingested(context.instance, recent),
        lambda w: _catalog_scenes(stac_catalog, w), today, LOOKBACK_WEEKS)
        if done.get(w.key, 0) < MAX_REFRESHES]
    if stale:
        done[stale[0][0].key] = done.get(stale[0][0].key, 0) + 1
    context.update_cursor(json.dumps(cursor))
    if not stale:
        return None
    week, why = stale[0]
    context.log.info(f"refreshing {why}")
    later = [w for w in weeks if w.key in published and w.week_of_season > week.week_of_season]
    subset = AssetGraphSubset.from_asset_partition_set(
        refresh_partitions(week, later), context.repository_def.asset_graph)
    return RunRequest.for_asset_graph_subset(subset, tags={WEEK_TAG: week.key,
                                                           "cropassets/refresh": why[:200]})
