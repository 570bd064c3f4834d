"""`cropassets backfill`: the partition selection it sends, and what bad input gets.

A backfill launched through it on the real webserver + daemon is tested in
tests/e2e/test_dagster_backfill.py (the second backfill there goes through this command).
"""

import os
import socket
import subprocess
import sys

import pytest

from cropassets.backfill import BackfillRequestError, partitions_by_assets
from cropassets.materialize import select_weeks
from cropassets.partitions import SEASONS, TILES, sequence_partitions

CURRENT = select_weeks("current")
TILE_IDS = list(TILES)


def _ranges(sel, asset):
    (entry,) = [e for e in sel if e["assetKey"]["path"] == [asset]]
    return [(r["start"], r["end"]) for r in entry["partitions"]["ranges"]]


def test_all_tiles_is_one_range_per_asset():
    sel = partitions_by_assets(["raw_scenes", "sos_map", "week_layers"], None, CURRENT)
    # a range of multi keys is the product of the per-dimension ranges (Dagster's reading)
    want = [(f"{TILE_IDS[0]}|{CURRENT[0]}", f"{TILE_IDS[-1]}|{CURRENT[-1]}")]
    assert _ranges(sel, "raw_scenes") == want == _ranges(sel, "sos_map")
    assert _ranges(sel, "week_layers") == [(CURRENT[0], CURRENT[-1])]


def test_some_tiles_get_one_range_each():
    weeks = CURRENT[1:3]
    sel = partitions_by_assets(["weekly_cube"], [TILE_IDS[-1]], weeks)
    assert _ranges(sel, "weekly_cube") == [(f"{TILE_IDS[-1]}|{weeks[0]}",
                                            f"{TILE_IDS[-1]}|{weeks[-1]}")]


def test_checkpoints_get_every_week_of_season():
    sel = partitions_by_assets(["cnn2d_checkpoint"], None, CURRENT)
    keys = sequence_partitions.get_partition_keys()
    assert _ranges(sel, "cnn2d_checkpoint") == [(keys[0], keys[-1])]


@pytest.mark.parametrize("assets,tiles,message", [
    (["raw_scene"], None, "unknown assets ['raw_scene']"),
    (["raw_scenes"], ["T99"], "unknown tiles ['T99']"),
    (["knee_report"], None, "'knee_report' is not partitioned"),
])
def test_bad_selection_is_named(assets, tiles, message):
    with pytest.raises(BackfillRequestError, match=message.replace("[", r"\[").replace(
            "]", r"\]")):
        partitions_by_assets(assets, tiles, CURRENT)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "cropassets.cli", "backfill", *args],
                          capture_output=True, text=True, timeout=120, env=dict(os.environ))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_without_a_webserver_says_so():
    url = f"http://127.0.0.1:{_closed_port()}"
    done = _cli("raw_scenes", "--url", url)
    assert done.returncode == 2
    assert f"no Dagster webserver at {url}" in done.stderr and "Traceback" not in done.stderr


def test_cli_names_a_week_outside_every_season():
    done = _cli("raw_scenes", "--weeks", "2023-01-02", "--url", "http://127.0.0.1:9")
    assert done.returncode == 2
    assert "'2023-01-02' lies outside every season" in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_names_an_unknown_asset():
    done = _cli("raw_scene", "--weeks", SEASONS[0].id, "--url", "http://127.0.0.1:9")
    assert done.returncode == 2 and "unknown assets ['raw_scene']" in done.stderr
