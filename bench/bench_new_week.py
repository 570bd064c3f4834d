"""Benchmark: the cost of one new week against a whole-season backfill of the same tile.

    .venv/bin/python bench/bench_new_week.py [--size 256] [--weeks 28] [--repeat 2]

Generates a world of one tile (``--size``² px, seed 7) and one current season of ``--weeks``
weeks, then, in this process, with ``dagster.materialize`` on a temporary instance:

1. **backfill**: every tile x week asset of the tile (``raw_scenes``, ``weekly_cube``,
   ``sos_map``, ``coverage_map``) over the whole season, as ONE run over the partition range
   (what a Dagster backfill of the single-run chain launches per tile);
2. **new week**: the same assets for the last week only, one partition run (the work the
   new-week sensor asks for per tile; materialized again on top of the backfill, which is the
   same work as the first time), best of ``--repeat``.

``crop_map`` is left out: it needs a trained checkpoint for the week (reference season,
scalograms, CNN training: minutes), and it already read the cubes of weeks 1..w before.

Prints both wall times and their ratio (goal of issue 16: at most 0.1), the cubes the new
week reads (its read window), and the bytes on disk per asset after the backfill. The
``season_series`` asset that stored the whole smoothed series again every week is gone;
what it would have stored is computed with the same core calls it ran (``stack_cubes`` +
``season_series`` -> ``write_zarr_atomic`` of weeks 1..w, for every w) into a temporary
folder, summed, and deleted again; its time for the last week is printed too. Numbers only:
no assertion on time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

ASSETS = ("raw_scenes", "weekly_cube", "sos_map", "coverage_map")


def _mib(n: int) -> str:
    return f"{n / 2**20:8.1f} MiB"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--weeks", type=int, default=28)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-new-week-"))
    try:
        run(work, args.size, args.weeks, args.repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, size: int, n_weeks: int, repeat: int) -> None:
    from cropassets.world.generate import generate_world

    t0 = time.perf_counter()
    seasons = [{"id": "2025", "start": "2025-05-05", "weeks": n_weeks, "role": "current"}]
    world = generate_world(work / "world", seed=7, size=size, tiles=1, seasons=seasons)
    print(f"world: 1 tile of {size}x{size}, {n_weeks} weeks ({time.perf_counter() - t0:.0f} s)")
    os.environ.update({
        "CROPASSETS_DATA": str(work / "data"),
        "CROPASSETS_WORLD": str(world),
        "CROPASSETS_TILES": str(world / "tiles.json"),
        "CROPASSETS_SEASONS": str(world / "seasons.json"),
        "CROPASSETS_STAC_URL": "",
        "CROPASSETS_SENSOR": "off",
    })
    # the code location reads tiles and seasons at import: import only now
    from dagster import DagsterInstance, materialize

    from cropassets.assets.ingest import raw_scenes
    from cropassets.assets.maps import coverage_map
    from cropassets.assets.series import weekly_cube
    from cropassets.assets.sos import sos_map
    from cropassets.core.storage import dir_size, write_zarr_atomic
    from cropassets.core.timeseries.season_series import season_series, stack_cubes
    from cropassets.dagster_internals import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )
    from cropassets.partitions import SEASONS, TILES
    from cropassets.resources import DataRoot, build_resources

    assets = [raw_scenes, weekly_cube, sos_map, coverage_map]
    tile = next(iter(TILES))
    weeks = [d.isoformat() for d in SEASONS[0].week_starts()]
    data = work / "data"
    resources = build_resources() | {"data_root": DataRoot(root=str(data))}
    (work / "home").mkdir()
    with DagsterInstance.local_temp(str(work / "home")) as instance:
        t0 = time.perf_counter()
        result = materialize(assets, instance=instance, resources=resources, tags={
            ASSET_PARTITION_RANGE_START_TAG: f"{tile}|{weeks[0]}",
            ASSET_PARTITION_RANGE_END_TAG: f"{tile}|{weeks[-1]}"})
        backfill_s = time.perf_counter() - t0
        assert result.success
        sizes = {a: dir_size(data / a) for a in ASSETS}
        new_week = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            result = materialize(assets, instance=instance, resources=resources,
                                 partition_key=f"{tile}|{weeks[-1]}")
            new_week.append(time.perf_counter() - t0)
            assert result.success
        steps = {m.asset_key.path[-1]: (m.materialization.metadata.get("seconds")
                                    or m.materialization.metadata.get("total_seconds"))
                 for m in result.get_asset_materialization_events()}

    # what season_series stored: the smoothed series of weeks 1..w, for every week w
    cfg = resources["series_settings"]
    cube_paths = [data / "weekly_cube" / tile / f"{w}.zarr" for w in weeks]
    old = work / "old_season_series"
    old_bytes, old_last_s = 0, 0.0
    for k in range(1, len(weeks) + 1):
        t0 = time.perf_counter()
        cubes = stack_cubes(cube_paths[:k], weeks[:k], chunk=cfg.chunk // 2)
        out, enc = season_series(cubes, cfg.cutoff, cfg.order)
        old_bytes += write_zarr_atomic(out, old / f"{weeks[k - 1]}.zarr", enc)
        old_last_s = time.perf_counter() - t0
        shutil.rmtree(old / f"{weeks[k - 1]}.zarr")

    best = min(new_week)
    print(f"\nwhole-season backfill ({len(weeks)} weeks, one range run): {backfill_s:7.1f} s")
    print(f"one new week (week {len(weeks)}, best of {repeat}):           {best:7.1f} s  "
          f"(all: {', '.join(f'{s:.1f}' for s in new_week)})")
    print(f"ratio new week / backfill: {best / backfill_s:.3f}  (goal <= 0.1)")
    print("  new-week steps, s: " + ", ".join(
        f"{a} {v.value if v is not None else '?'}" for a, v in steps.items()))
    cube_bytes = [dir_size(p) for p in cube_paths]
    print(f"\nread window of week {len(weeks)}: sos_map and coverage_map read the "
          f"{len(weeks)} cubes of weeks 1..{len(weeks)} ({_mib(sum(cube_bytes)).strip()}, "
          f"{_mib(cube_bytes[-1]).strip()} per cube) and no series")
    print(f"\nbytes on disk after the backfill ({len(weeks)} weeks, 1 tile):")
    for a in ASSETS:
        print(f"  {a:<14} {_mib(sizes[a])}")
    print(f"  {'season_series':<14} {_mib(0)}  (now: not stored)")
    print(f"  {'season_series':<14} {_mib(old_bytes)}  (before: the removed asset, computed "
          f"with its core calls; its step for week {len(weeks)} alone took "
          f"{old_last_s:.1f} s)")
    total_new = sum(sizes.values())
    print(f"  total          {_mib(total_new)} now, {_mib(total_new + old_bytes).strip()} before "
          f"(series / cubes: {old_bytes / sizes['weekly_cube']:.1f}x)")


if __name__ == "__main__":
    main()
