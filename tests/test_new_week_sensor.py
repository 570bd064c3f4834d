"""The new-week sensor: which week it requests, and when it waits."""

from __future__ import annotations

import shutil
from datetime import date, timedelta

import pytest
from catalog_edit import publish_withheld, withhold_week
from dagster import AssetKey, DagsterInstance, SkipReason, build_sensor_context

from cropassets.core.season_progress import next_week
from cropassets.core.seasons import Season, all_weeks
from cropassets.definitions import defs
from cropassets.partitions import SEASONS, TILES
from cropassets.resources.stac import StacCatalog
from cropassets.sensors import WEEK_TAG, new_week_sensor, week_asset_partitions

SEASON = Season("2025", date(2025, 5, 5), 6, "current")
WEEKS = all_weeks([SEASON])


def test_next_week_in_order_and_its_reasons():
    def always(_):
        return True

    later = date(2026, 1, 1)
    assert next_week(WEEKS, set(), always, later).week == WEEKS[0]
    assert next_week(WEEKS, {WEEKS[0].key, WEEKS[2].key}, always, later).week == WEEKS[1]
    step = next_week(WEEKS, {w.key for w in WEEKS[:3]}, lambda w: w.index != 4, later)
    assert step.week is None and "no scenes for week 4 (2025-05-26)" in step.reason
    step = next_week(WEEKS, set(), always, WEEKS[0].start + timedelta(days=3))
    assert step.week is None and "not over until 2025-05-12" in step.reason
    assert next_week(WEEKS, {w.key for w in WEEKS}, always, later).reason.startswith("every")


def test_week_asset_partitions_skip_models_before_week_3():
    w1 = {(k.asset_key.to_user_string(), k.partition_key) for k in week_asset_partitions(WEEKS[0])}
    assert ("week_layers", WEEKS[0].key) in w1 and ("raw_scenes", f"T00|{WEEKS[0].key}") in w1
    assert not any(a in ("crop_map", "week_model") for a, _ in w1)
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
                                   resources={"stac": stac})
        result = new_week_sensor(ctx)
        assert isinstance(result, SkipReason)
        assert result.skip_message == (f"season {current.id}: no scenes for week 1 "
                                       f"({first.key}) in the catalog yet")
        assert publish_withheld(catalog) > 0
        ctx = build_sensor_context(instance=instance, repository_def=defs.get_repository_def(),
                                   resources={"stac": stac})
        tick = new_week_sensor.evaluate_tick(ctx)  # what the daemon runs, validation included
        assert len(tick.run_requests) == 1
        request = tick.run_requests[0]
        assert request.tags[WEEK_TAG] == first.key
        subset = request.asset_graph_subset
        assert subset.get_partitions_subset(AssetKey("raw_scenes")).get_partition_keys() \
            and set(subset.get_partitions_subset(AssetKey("season_series"))
                    .get_partition_keys()) == {f"{t}|{first.key}" for t in TILES}
        assert AssetKey("crop_map") not in subset.asset_keys
