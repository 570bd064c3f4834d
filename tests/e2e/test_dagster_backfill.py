"""End to end (slow): a daemon backfill through the real webserver's GraphQL API.

A fresh SQLite instance (``deploy/dagster.yaml``) and a fresh data root; ``dagster-webserver``
and ``dagster-daemon`` run the code location on the test world. One backfill over the first
two weeks of the current season, every tile, for raw_scenes -> weekly_cube -> sos_map,
launched through GraphQL; then the same backfill again, launched
with the ``cropassets backfill`` command, which must rewrite identical COGs.

The chain assets carry a single-run backfill policy, so Dagster runs the whole chain of one
tile for the week range in ONE run (raw_scenes, weekly_cube, sos_map over
partition range ``<tile>|<week 1>...<tile>|<week 2>``): 2 runs per backfill here, where one
run per partition made 8 (the season-to-date mapping split the chain in two). Each run is
a subprocess that imports the code location; the backfill daemon ticks every 30 s (fixed).
The runs execute their steps in process (one process per run, not one per step) and share
one STAC API served by the test.
"""

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
from dagster_services import (
    latest_materializations,
    launch_backfill,
    materialized_partitions,
    running_dagster,
    wait_backfill,
)

from cropassets.core.stac.server import serve
from cropassets.partitions import SEASONS, TILES
from cropassets.settings import REPO_ROOT, load_settings

pytestmark = [pytest.mark.slow, pytest.mark.services]

CHAIN = ["raw_scenes", "weekly_cube", "sos_map"]
CURRENT = next(s for s in SEASONS if s.role == "current")
WEEKS = [w.isoformat() for w in CURRENT.week_starts()[:2]]
TILE_IDS = sorted(TILES)
PARTITION_RANGE = (f"{TILE_IDS[0]}|{WEEKS[0]}", f"{TILE_IDS[-1]}|{WEEKS[-1]}")
EXPECTED = {f"{t}|{w}" for t in TILE_IDS for w in WEEKS}
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}
"""Run config of every backfill run: steps in the run's process, not one subprocess each."""
BACKFILL_TIMEOUT = 600


@pytest.fixture(scope="module")
def dagster(tmp_path_factory):
    """Webserver + daemon on a fresh SQLite home and data root; the instance, read here."""
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copy(REPO_ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    data = tmp_path_factory.mktemp("data")
    # one STAC API for every run (a configured URL, as deployed) instead of one per run process
    with serve(load_settings().world_dir / "stac") as stac, \
            running_dagster(home, env={"CROPASSETS_DATA": str(data),
                                       "CROPASSETS_STAC_URL": stac.url,
                                       # the new-week sensor would launch backfills of its own
                                       "CROPASSETS_SENSOR": "off"}) as services, \
            pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", str(home))
        instance = DagsterInstance.get()
        try:
            yield {"services": services, "instance": instance, "data": data}
        finally:
            instance.dispose()


def _backfill(dagster, via_cli: bool = False) -> dict:
    """Run the chain's backfill to completion; its runs and the materializations it made.

    Launched through GraphQL ``launchPartitionBackfill``, or with ``via_cli`` through the
    ``cropassets backfill`` command (the same mutation, its selection built from --weeks).
    """
    instance = dagster["instance"]
    cursor = instance.event_log_storage.get_maximum_record_id()
    url = dagster["services"].graphql_url
    t0 = time.monotonic()
    if via_cli:
        done = subprocess.run(
            [sys.executable, "-m", "cropassets.cli", "backfill", *CHAIN,
             "--weeks", f"{WEEKS[0]}...{WEEKS[-1]}", "--url", dagster["services"].base_url,
             "--in-process", "--title", "test chain backfill (CLI)"],
            capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        backfill_id = done.stdout.strip()
        assert f"/runs/b/{backfill_id}" in done.stderr
    else:
        backfill_id = launch_backfill(url, CHAIN, partition_range=PARTITION_RANGE,
                                      run_config=IN_PROCESS, title="test chain backfill")
    status = wait_backfill(url, backfill_id, timeout=BACKFILL_TIMEOUT)
    runs = instance.get_runs(filters=RunsFilter(tags={"dagster/backfill": backfill_id}))
    print(f"backfill {backfill_id}: {status} after {time.monotonic() - t0:.0f} s, "
          f"{len(runs)} runs")  # shown with -s / -rP
    failed = [(r.run_id, r.tags.get("dagster/partition"), r.status.value)
              for r in runs if r.status != DagsterRunStatus.SUCCESS]
    if status != "COMPLETED_SUCCESS" or failed or not runs:
        pytest.fail(f"backfill {backfill_id}: {status}; runs not successful: {failed}\n"
                    f"{dagster['services'].log_tails(80)}")
    records = {a: latest_materializations(instance, a, after_storage_id=cursor) for a in CHAIN}
    cogs = {k: _cog(dagster["data"], k).read_bytes() for k in EXPECTED}
    return {"id": backfill_id, "runs": runs, "records": records, "cogs": cogs}


def _cog(data: Path, partition: str) -> Path:
    tile, week = partition.split("|")
    return data / "sos_map" / tile / f"{week}.tif"


@pytest.fixture(scope="module")
def first(dagster):
    return _backfill(dagster)


def test_every_partition_of_the_range_is_materialized(dagster, first):
    for asset in CHAIN:
        assert materialized_partitions(dagster["instance"], asset) == EXPECTED, asset
        assert set(first["records"][asset]) == EXPECTED, asset
    # single-run policy: one run per tile over the week range, every chain asset in it
    runs = first["runs"]
    assert len(runs) == len(TILE_IDS), [r.tags for r in runs]
    ranges = {(r.tags["dagster/asset_partition_range_start"],
               r.tags["dagster/asset_partition_range_end"]) for r in runs}
    assert ranges == {(f"{t}|{WEEKS[0]}", f"{t}|{WEEKS[-1]}") for t in TILE_IDS}
    for r in runs:
        assert {k.to_user_string() for k in r.asset_selection} == set(CHAIN), r.run_id


def _assert_dependency_order(records: dict) -> None:
    """Each materialization comes after those it read (event-log storage ids)."""
    sid = {a: {k: r.storage_id for k, r in recs.items()} for a, recs in records.items()}
    for tile in TILE_IDS:
        for i, week in enumerate(WEEKS):
            key = f"{tile}|{week}"
            assert sid["weekly_cube"][key] > sid["raw_scenes"][key], key
            # sos_map of week w reads the cubes of weeks 1..w of its tile
            for earlier in WEEKS[:i + 1]:
                assert sid["sos_map"][key] > sid["weekly_cube"][f"{tile}|{earlier}"], \
                    (key, earlier)


def test_runs_ran_in_dependency_order(first):
    _assert_dependency_order(first["records"])


def test_sos_cogs_exist(dagster, first):
    for key in EXPECTED:
        path = _cog(dagster["data"], key)
        assert path.is_file() and path.stat().st_size > 0, path
        assert first["cogs"][key][:4] in (b"II*\x00", b"MM\x00*", b"II+\x00"), path


def test_same_backfill_again_rewrites_identical_cogs(dagster, first):
    mtimes = {k: _cog(dagster["data"], k).stat().st_mtime_ns for k in EXPECTED}
    second = _backfill(dagster, via_cli=True)
    assert second["id"] != first["id"]
    # every partition was materialized again, in order, and its COG written anew
    for asset in CHAIN:
        assert set(second["records"][asset]) == EXPECTED, asset
    _assert_dependency_order(second["records"])
    assert all(_cog(dagster["data"], k).stat().st_mtime_ns > mtimes[k] for k in EXPECTED)
    changed = sorted(k for k in EXPECTED if second["cogs"][k] != first["cogs"][k])
    assert not changed, f"SOS COGs differ after the same backfill: {changed}"
