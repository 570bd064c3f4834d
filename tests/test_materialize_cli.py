"""The CLI loop: partitions and ranges it runs, bad weeks, pool slots of dead runs."""

import os
import signal
import subprocess
import sys

import pytest
from dagster import AssetKey, DagsterInstance, DagsterRun, DagsterRunStatus, asset, materialize

from cropassets.materialize import PID_TAG, release_dead_cli_slots, was_interrupted


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_dead_run_slot_is_freed_and_live_one_kept(tmp_path):
    with DagsterInstance.local_temp(str(tmp_path)) as instance:
        storage = instance.event_log_storage
        storage.set_concurrency_slots("gpu", 1)
        dead = instance.add_run(DagsterRun(job_name="j", run_id="dead0001",
                                           status=DagsterRunStatus.STARTED,
                                           tags={PID_TAG: str(_dead_pid())}))
        live = instance.add_run(DagsterRun(job_name="j", run_id="live0001",
                                           status=DagsterRunStatus.STARTED,
                                           tags={PID_TAG: str(os.getpid())}))
        assert storage.claim_concurrency_slot("gpu", dead.run_id, "train").is_claimed
        storage.claim_concurrency_slot("gpu", live.run_id, "train")  # queued behind it
        assert storage.get_concurrency_info("gpu").pending_step_count == 1
        assert release_dead_cli_slots(instance) == [dead.run_id]
        assert instance.get_run_by_id(dead.run_id).status == DagsterRunStatus.FAILURE
        info = storage.get_concurrency_info("gpu")
        assert {s.run_id for s in info.claimed_slots} <= {live.run_id}
        assert release_dead_cli_slots(instance) == []


def test_cli_materializes_partitions_and_names_a_bad_week(tmp_path):
    from cropassets.partitions import SEASONS, TILES
    from cropassets.settings import load_settings

    tile, week = next(iter(TILES)), SEASONS[0].start.isoformat()
    env = dict(os.environ, CROPASSETS_DATA=str(tmp_path / "data"),
               DAGSTER_HOME=str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    cmd = [sys.executable, "-m", "cropassets.cli", "materialize", "raw_scenes",
           "--tiles", tile, "--weeks", f"{week}...{week}"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "[materialize] raw_scenes 1/1 partitions" in done.stderr
    assert (tmp_path / "data/raw_scenes" / tile / f"{week}.zarr").is_dir()
    again = subprocess.run(cmd + ["--missing"], env=env, capture_output=True, text=True,
                           timeout=300)
    assert "nothing to do" in again.stderr
    bad = subprocess.run(cmd[:-1] + ["2023-01-02"], env=env, capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode == 2 and "'2023-01-02' lies outside every season" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert load_settings(env).data_root == tmp_path / "data"


def test_week_selection_by_season_and_current():
    from cropassets.core.seasons import all_weeks
    from cropassets.materialize import select_weeks
    from cropassets.partitions import SEASONS

    current = [s for s in SEASONS if s.role == "current"]
    assert select_weeks("current") == [w.key for w in all_weeks(current)]
    assert select_weeks(SEASONS[0].id) == [w.key for w in all_weeks([SEASONS[0]])]
    first, last = select_weeks(SEASONS[0].id)[0], select_weeks(SEASONS[0].id)[-1]
    assert select_weeks(f"{first}...{last}") == select_weeks(SEASONS[0].id)


def test_key_ranges_split_at_gaps_and_tiles():
    from cropassets.materialize import key_ranges

    order = ["A|1", "A|2", "A|3", "B|1", "B|2", "B|3"]
    assert key_ranges(["B|2", "A|1", "A|2", "B|3"], order) == [["A|1", "A|2"], ["B|2", "B|3"]]
    assert key_ranges(["A|1", "A|3"], order) == [["A|1"], ["A|3"]]
    # A|3 and B|1 are adjacent in the definition's order: one range spans both tiles
    assert key_ranges(order, order) == [order]
    with pytest.raises(ValueError, match="C|1"):
        key_ranges(["C|1"], order)


def test_cli_runs_single_run_assets_as_one_run_per_range(tmp_path):
    """Two weeks of the chain on one tile: one run (range tags), both weeks materialized."""
    from cropassets.partitions import SEASONS, TILES

    tile = sorted(TILES)[0]
    weeks = [w.isoformat() for w in SEASONS[0].week_starts()[:2]]
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, CROPASSETS_DATA=str(tmp_path / "data"), DAGSTER_HOME=str(home))
    cmd = [sys.executable, "-m", "cropassets.cli", "materialize", "raw_scenes", "weekly_cube",
           "--tiles", tile, "--weeks", f"{weeks[0]}...{weeks[1]}"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "[materialize] raw_scenes+weekly_cube 2/2 partitions" in done.stderr
    with DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
        assert len(runs) == 1
        assert runs[0].tags["dagster/asset_partition_range_start"] == f"{tile}|{weeks[0]}"
        assert runs[0].tags["dagster/asset_partition_range_end"] == f"{tile}|{weeks[1]}"
        for asset in ("raw_scenes", "weekly_cube"):
            assert set(instance.get_materialized_partitions(AssetKey(asset))) == {
                f"{tile}|{w}" for w in weeks}


def test_cli_names_an_unknown_asset():
    done = subprocess.run([sys.executable, "-m", "cropassets.cli", "materialize", "raw_scen"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "unknown assets ['raw_scen']" in done.stderr and "Traceback" not in done.stderr
    assert "BetaWarning" not in done.stderr


def test_a_run_stopped_by_ctrl_c_is_told_from_a_failed_one():
    """Dagster records a Ctrl-C'd in-process run as failed without raising; the loop must
    tell it from an asset error so that it stops instead of starting the next run."""
    @asset
    def interrupted() -> int:
        os.kill(os.getpid(), signal.SIGINT)
        raise AssertionError("the signal should have stopped the step before this line")

    @asset
    def broken() -> int:
        raise ValueError("bad input")

    with DagsterInstance.ephemeral() as instance:
        stopped = materialize([interrupted], instance=instance, raise_on_error=False)
        failed = materialize([broken], instance=instance, raise_on_error=False)
    assert not stopped.success and not failed.success
    assert was_interrupted(stopped)
    assert not was_interrupted(failed)
