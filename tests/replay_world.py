"""A region made of real STAC items whose hrefs point at local COGs, run through the CLI.

Used by the replay tests: real items of ``../shared/real-stac`` keep every field the
catalogs publish; only the hrefs of the assets the pipeline reads are rewritten to COGs of
the same data type and nodata on the item's own UTM grid (tiled, with overviews,
validated by rio-cogeo), covering a small area around the test tile.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine

from cropassets.core.publish.cog import write_cog

ITEMS_DIR = Path(os.environ.get("CROPASSETS_REAL_STAC") or
                 Path(__file__).resolve().parents[2] / "shared" / "real-stac" / "items")
REPO = Path(__file__).resolve().parents[1]


def real_items(pattern: str) -> list[dict[str, Any]]:
    """The real items whose file names match ``pattern`` (sorted by file name)."""
    return [json.loads(p.read_text()) for p in sorted(ITEMS_DIR.glob(pattern))]


def local_asset(path: Path, area: tuple[float, float, float, float], crs: str, res: float,
                dtype: str, nodata: float, fill: float,
                patch: tuple[slice, slice, float] | None = None) -> Path:
    """A COG of constant ``fill`` over ``area`` (minx, miny, maxx, maxy) at ``res`` m, with
    ``patch`` = (rows, cols, value) painted over it and a 4-column nodata strip at its west
    edge."""
    w, h = int((area[2] - area[0]) / res), int((area[3] - area[1]) / res)
    data = np.full((h, w), fill, dtype=dtype)
    if patch is not None:
        data[patch[0], patch[1]] = patch[2]
    data[:, :4] = nodata
    path.parent.mkdir(parents=True, exist_ok=True)
    write_cog(path, data, crs, Affine(res, 0, area[0], 0, -res, area[3]), nodata,
              blocksize=256)
    return path


def rewrite(item: dict[str, Any], hrefs: dict[str, Path], absent: Path) -> dict[str, Any]:
    """A copy of ``item`` with the given asset hrefs, every other asset pointing nowhere."""
    item = json.loads(json.dumps(item))
    for key, asset in item["assets"].items():
        asset["href"] = str(hrefs.get(key, absent / f"{key}.tif"))
    return item


def write_region(root: Path, items: dict[str, list[dict[str, Any]]],
                 tiles: list[dict[str, Any]], seasons: list[dict[str, Any]],
                 profile: str) -> dict[str, str]:
    """World (STAC catalog), config and Dagster home under ``root``; the CLI's env."""
    stac = root / "world" / "stac"
    (stac / "items").mkdir(parents=True)
    collections = []
    for cid, its in items.items():
        if its:
            (stac / "items" / f"{cid}.ndjson").write_text(
                "\n".join(json.dumps(it) for it in its) + "\n")
        collections.append({
            "type": "Collection", "stac_version": "1.0.0", "id": cid, "links": [],
            "description": "real items, hrefs rewritten to local COGs", "license": "other",
            "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]},
                       "temporal": {"interval": [["2015-01-01T00:00:00Z", None]]}}})
    (stac / "collections.json").write_text(json.dumps({"collections": collections}))
    config = root / "config"
    config.mkdir()
    (config / "tiles.json").write_text(json.dumps({"tiles": tiles}))
    (config / "seasons.json").write_text(json.dumps({"seasons": seasons}))
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", home)
    return {**os.environ, "CROPASSETS_WORLD": str(root / "world"),
            "CROPASSETS_DATA": str(root / "data"),
            "CROPASSETS_TILES": str(config / "tiles.json"),
            "CROPASSETS_SEASONS": str(config / "seasons.json"),
            "CROPASSETS_CATALOG_PROFILE": profile, "CROPASSETS_STAC_URL": "",
            "DAGSTER_HOME": str(home), "CROPASSETS_SENSOR": "off"}


def materialize(env: dict[str, str], *args: str) -> None:
    """``cropassets materialize ARGS`` in a child process with ``env``; fails loudly."""
    cli = Path(sys.executable).with_name("cropassets")
    done = subprocess.run([str(cli), "materialize", *args], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def run_one_tile(root: Path, items: dict[str, list[dict[str, Any]]], crs: str,
                 bounds: tuple[float, float, float, float], reference_start: str,
                 current_start: str, weeks: int, profile: str) -> Path:
    """One tile ``R00`` and two seasons (a reference one, then the replayed current one
    id ``2024``): ``raw_scenes`` and ``weekly_cube`` of the current season; the data root."""
    env = write_region(
        root, items, [{"id": "R00", "crs": crs, "bounds": list(bounds), "resolution": 10.0}],
        [{"id": "2023", "start": reference_start, "weeks": weeks, "role": "reference"},
         {"id": "2024", "start": current_start, "weeks": weeks, "role": "current"}], profile)
    materialize(env, "raw_scenes", "weekly_cube", "--weeks", "2024")
    return root / "data"
