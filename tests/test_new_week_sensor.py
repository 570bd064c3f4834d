"""The new-week sensor: which week it requests, and when it waits."""

from __future__ import annotations

import shutil
from datetime import date, timedelta

import pytest
from catalog_edit import publish_withheld, withhold_week
from dagster import AssetKey, DagsterInstance, SkipReason, build_sensor_context

from cropassets.core.season_progress import Ingested, next_week, stale_weeks
from cropassets.core.seasons import Season, all_weeks
from cropassets.definitions import defs
from cropassets.partitions import SEASONS, TILES
from cropassets.resources.stac_catalog import StacCatalog
from cropassets.sensors import (
    WEEK_TAG,
    new_week_sensor,
    refresh_partitions,
    week_asset_partitions,
)

SEASON = Season("2025", date(2025, 5, 5), 6, "current")
WEEKS = all_weeks([SEASON])


def test_next_week_in_order_and_its_reasons():
    def always(_):
        return True

    later = date(2026, 1, 1)
    assert next_week(WEEKS, set(), always, later).week == WEEKS[0]
    assert next_week(WEEKS, {WEEKS[0].key, WEEKS[2].key}, always, later).week == WEEKS[1]
    step = next_week(WEEKS, {w.key for w in WEEKS[:3]}, lambda w: w.week_of_season != 4, later)
    assert step.week is None and "no scenes for week 4 (2025-05-26)" in step.reason
    step = next_week(WEEKS, set(), always, WEEKS[0].start + timedelta(days=3))
    assert step.week is None and "not over until 2025-05-12" in step.reason
    assert next_week(WEEKS, {w.key for w in WEEKS}, always, later).reason.startswith("every")


def test_week_asset_partitions_skip_models_before_week_3():
    w1 = {(k.asset_key.to_user_string(), k.partition_key) for k in week_asset_partitions(WEEKS[0])}
    assert ("week_layers", WEEKS[0].key) in w1 and ("raw_scenes", f"T00|{WEEKS[0].key}") in w1
    assert not any(a in ("crop_map", "week_model") for a, _ in w1)
    # coverage is counted every week, model or not, before week_layers publishes it
    assert {("coverage_map", f"{t}|{WEEKS[0].key}") for t in TILES} <= w1
    w3 = {(k.asset_key.to_user_string(), k.partition_key) for k in week_asset_partitions(WEEKS[2])}
    assert {("week_model", WEEKS[2].key)} | {("crop_map", f"{t}|{WEEKS[2].key}")
                                             for t in TILES} <= w3


@pytest.fixture
def catalog(tmp_path):
    import os

    stac = tmp_path / "stac"
    shutil.copytree(os.path.join(os.environ["CROPASSETS_WORLD"], "stac"), stac,
                    ignore=shutil.ignore_patterns("api"))
    return stac


def test_sensor_requests_first_week_then_waits_for_scenes(catalog):
    current = next(s for s in SEASONS if s.role == "current")
    first = all_weeks([current])[0]
    assert withhold_week(catalog, first.start) > 0
    stac = StacCatalog(local_stac_dir=str(catalog))
    with DagsterInstance.ephemeral() as instance:
        ctx = build_sensor_context(instance=instance, repository_def=defs.get_repository_def(),
                                   resources={"stac_catalog": stac})
        result = new_week_sensor(ctx)
        assert isinstance(result, SkipReason)
        assert result.skip_message == (f"season {current.id}: no scenes for week 1 "
                                       f"({first.key}) in the catalog yet")
        assert publish_withheld(catalog) > 0
        ctx = build_sensor_context(instance=instance, repository_def=defs.get_repository_def(),
                                   resources={"stac_catalog": stac})
        tick = new_week_sensor.evaluate_tick(ctx)  # what the daemon runs, validation included
        assert len(tick.run_requests) == 1
        request = tick.run_requests[0]
        assert request.tags[WEEK_TAG] == first.key
        subset = request.asset_graph_subset
        assert subset.get_partitions_subset(AssetKey("raw_scenes")).get_partition_keys() \
            and set(subset.get_partitions_subset(AssetKey("sos_map"))
                    .get_partition_keys()) == {f"{t}|{first.key}" for t in TILES}
        assert AssetKey("crop_map") not in subset.asset_keys
        assert AssetKey("season_series") not in subset.asset_keys
        assert set(subset.get_partitions_subset(AssetKey("coverage_map"))
                   .get_partition_keys()) == {f"{t}|{first.key}" for t in TILES}


def test_stale_weeks_incomplete_or_late_within_the_lookback():
    later = date(2026, 1, 1)
    published = {w.key for w in WEEKS}
    full = {w.key: {"T00": Ingested(3, 0), "T01": Ingested(2, 0)} for w in WEEKS}

    def catalog(counts):
        return lambda w: counts.get(w.key, {"T00": 3, "T01": 2})

    assert stale_weeks(WEEKS, published, full, catalog({}), later) == []
    skipped = {**full, WEEKS[4].key: {"T00": Ingested(2, 1), "T01": Ingested(2, 0)}}
    [(week, why)] = stale_weeks(WEEKS, published, skipped, catalog({}), later)
    assert week == WEEKS[4] and "incomplete" in why and "T00" in why
    late = catalog({WEEKS[3].key: {"T00": 3, "T01": 4}})
    [(week, why)] = stale_weeks(WEEKS, published, full, late, later)
    assert week == WEEKS[3] and "arrived after" in why and "T01" in why
    # outside the look-back (the 2 most recent published weeks): left alone
    assert stale_weeks(WEEKS, published, full, late, later, lookback=2) == []
    # unpublished weeks are the new-week rule's business, not this one's
    assert stale_weeks(WEEKS, published - {WEEKS[3].key}, full, late, later) == []


def test_sensor_refreshes_a_published_week_whose_catalog_gained_scenes(catalog):
    """Every week published; the catalog now lists one more scene of the last week than
    raw_scenes loaded on one tile: the sensor re-ingests that week (nothing later to redo)."""
    from dagster import AssetMaterialization

    current = next(s for s in SEASONS if s.role == "current")
    weeks = all_weeks([current])
    stac = StacCatalog(local_stac_dir=str(catalog))
    with DagsterInstance.ephemeral() as instance:
        for w in weeks:
            instance.report_runless_asset_event(AssetMaterialization(
                asset_key="week_layers", partition=w.key))
            for i, tile in enumerate(TILES.values()):
                s2, s1 = stac.search_week(tile, w)
                late = w == weeks[-1] and i == 0 and len(s2) > 0
                instance.report_runless_asset_event(AssetMaterialization(
                    asset_key="raw_scenes", partition=f"{tile.id}|{w.key}",
                    metadata={"s2_scenes": len(s2) - int(late), "s1_scenes": len(s1),
                              "skipped_scenes": []}))
        ctx = build_sensor_context(instance=instance, repository_def=defs.get_repository_def(),
                                   resources={"stac_catalog": stac})
        tick = new_week_sensor.evaluate_tick(ctx)
        assert len(tick.run_requests) == 1
        request = tick.run_requests[0]
        assert request.tags[WEEK_TAG] == weeks[-1].key
        assert "arrived after it was published" in request.tags["cropassets/refresh"]
        subset = request.asset_graph_subset
        assert set(subset.get_partitions_subset(AssetKey("raw_scenes")).get_partition_keys()) \
            == {f"{t}|{weeks[-1].key}" for t in TILES}
        # the check runs at most hourly: the next tick asks for nothing more
        ctx = build_sensor_context(instance=instance, repository_def=defs.get_repository_def(),
                                   resources={"stac_catalog": stac}, cursor=tick.cursor)
        assert not new_week_sensor.evaluate_tick(ctx).run_requests


def test_refresh_partitions_redo_what_later_weeks_read():
    parts = {(k.asset_key.to_user_string(), k.partition_key)
             for k in refresh_partitions(WEEKS[1], [WEEKS[2], WEEKS[3]])}
    assert ("raw_scenes", f"T00|{WEEKS[1].key}") in parts
    assert ("raw_scenes", f"T00|{WEEKS[2].key}") not in parts  # later cubes stay
    assert {("sos_map", f"T00|{WEEKS[3].key}"), ("crop_map", f"T00|{WEEKS[2].key}"),
            ("week_layers", WEEKS[3].key)} <= parts
    assert not any(a == "season_series" for a, _ in parts)
    # coverage of later weeks counts the refreshed cube: counted again, then republished
    assert {("coverage_map", f"{t}|{w.key}") for t in TILES for w in WEEKS[1:4]} <= parts
