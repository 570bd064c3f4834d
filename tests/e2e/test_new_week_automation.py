"""As the season progresses: scenes of the next week arrive in the STAC catalog, the
new-week sensor (run by the real Dagster daemon) launches the week's backfill, and the
week's crop map appears in the tiler."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from catalog_edit import publish_withheld, withhold_week
from dagster_services import running_dagster
from tiler_server import http_get, running_tiler

from cropassets.partitions import SEASONS

pytestmark = [pytest.mark.slow, pytest.mark.services]

REPO = Path(__file__).resolve().parents[2]
REFERENCE = next(s for s in SEASONS if s.role == "reference")
CURRENT = next(s for s in SEASONS if s.role == "current")
NEW = CURRENT.week_starts()[-1]  # the week whose scenes "arrive" during the test
BEFORE = CURRENT.week_starts()[-2]


def _materialize(env: dict[str, str], *args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "cropassets.cli", "materialize", *args],
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]


def test_new_week_scenes_become_a_served_crop_map(tmp_path):
    world = tmp_path / "world"  # a copy whose catalog the test edits (scenes stay shared)
    src = Path(os.environ["CROPASSETS_WORLD"])
    shutil.copytree(src / "stac", world / "stac", ignore=shutil.ignore_patterns("api"))
    shutil.copytree(src / "labels", world / "labels")
    assert withhold_week(world / "stac", NEW) > 0
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    env = dict(os.environ, CROPASSETS_WORLD=str(world), CROPASSETS_DATA=str(tmp_path / "data"),
               DAGSTER_HOME=str(home), CROPASSETS_SENSOR_INTERVAL="5")
    # the season so far, as cheaply as the new week allows: the reference season's samples
    # and models, the current season's weeks 1-5 published (SOS only: no crop maps needed)
    ref = REFERENCE.week_starts()
    _materialize(env, "raw_scenes", "weekly_cube", "sos_map", "--weeks",
                 f"{ref[0].isoformat()}...{BEFORE.isoformat()}")
    _materialize(env, "scalograms", "--weeks", REFERENCE.id)
    _materialize(env, "cnn2d_checkpoint")
    _materialize(env, "week_layers", "--weeks", f"{CURRENT.start.isoformat()}...{BEFORE}")

    with running_tiler(tmp_path / "data") as tiler, running_dagster(home, env) as dagster:
        def weeks() -> dict[str, dict]:
            doc = http_get(f"{tiler}/api/weeks").json()
            return {w["week"]: w for s in doc["seasons"] for w in s["weeks"]}

        assert NEW.isoformat() not in weeks() and weeks()[BEFORE.isoformat()]["layers"]["sos"]
        time.sleep(12)  # two sensor ticks: no scenes for the new week, nothing launched
        assert NEW.isoformat() not in weeks()
        assert publish_withheld(world / "stac") > 0  # the new week's scenes arrive
        deadline = time.monotonic() + 600
        while NEW.isoformat() not in weeks() and time.monotonic() < deadline:
            time.sleep(3)
        row = weeks().get(NEW.isoformat())
        assert row is not None, dagster.log_tails()
        assert row["available"] and row["layers"]["crop"] and row["layers"]["sos"]
        assert row["layers"]["coverage"]  # coverage_map is part of the week's backfill
        tj = http_get(row["tilejson"]["crop"]).json()
        assert tj["tiles"][0].startswith(tiler)
    assert sorted(p.name for p in (tmp_path / "data" / "crop_map").iterdir())
    for tile_dir in (tmp_path / "data" / "crop_map").iterdir():
        assert (tile_dir / f"{NEW.isoformat()}.tif").is_file()
        assert (tmp_path / "data" / "coverage_map" / tile_dir.name
                / f"{NEW.isoformat()}.tif").is_file()
