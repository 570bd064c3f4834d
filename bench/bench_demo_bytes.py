"""Benchmark: bytes on disk per asset of a materialized data root, before and after issue 16.

    .venv/bin/python bench/bench_demo_bytes.py [--data data] [--tiles config/tiles.json]
        [--seasons config/seasons.json] [--skip-before]

"After" is what the data root holds now, per asset folder (``<data>/<asset>``). "Before" adds
what the removed ``season_series`` asset stored for every tile x week of every season: the
gap-filled, smoothed series of weeks 1..w, written again for every week w. It is computed
with the core calls that asset ran (``stack_cubes`` + ``season_series`` ->
``write_zarr_atomic``) from the weekly cubes in the data root, one partition at a time into a
temporary folder that is measured and deleted, so nothing is left behind. Partitions whose
cubes are missing are counted and skipped. Prints a Markdown table and writes
``build/demo_bytes.json``. Numbers only, no assertion.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]


def _fmt(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB" if n < 2**30 else f"{n / 2**30:,.2f} GiB"


def asset_bytes(data: Path) -> dict[str, int]:
    """Bytes under each top-level folder of the data root (one per asset), sorted by name."""
    from cropassets.core.storage import dir_size

    return {p.name: dir_size(p) for p in sorted(data.iterdir())
            if p.is_dir() and not p.name.startswith(".") and p.name != "demo"}


def season_series_bytes(data: Path, tiles: list[str], seasons: list, chunk: int,
                        cutoff: float, order: int) -> tuple[int, int, int]:
    """Bytes the removed ``season_series`` asset stored; (bytes, partitions, skipped)."""
    from cropassets.core.storage import write_zarr_atomic
    from cropassets.core.timeseries.season_series import season_series, stack_cubes

    total, done, skipped = 0, 0, 0
    tmp = Path(tempfile.mkdtemp(prefix="old-season-series-"))
    try:
        for season in seasons:
            weeks = [d.isoformat() for d in season.week_starts()]
            for tile in tiles:
                paths = [data / "weekly_cube" / tile / f"{w}.zarr" for w in weeks]
                for k in range(1, len(weeks) + 1):
                    if not all(p.exists() for p in paths[:k]):
                        skipped += 1
                        continue
                    cubes = stack_cubes(paths[:k], weeks[:k], chunk=chunk // 2)
                    out, enc = season_series(cubes, cutoff, order)
                    target = tmp / f"{tile}-{weeks[k - 1]}.zarr"
                    total += write_zarr_atomic(out, target, enc)
                    shutil.rmtree(target)
                    done += 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return total, done, skipped


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=REPO / "data")
    ap.add_argument("--tiles", type=Path, default=REPO / "config/tiles.json")
    ap.add_argument("--seasons", type=Path, default=REPO / "config/seasons.json")
    ap.add_argument("--skip-before", action="store_true",
                    help="only measure what is stored now")
    args = ap.parse_args()

    from cropassets.core.seasons import load_seasons
    from cropassets.core.tiles import load_tiles
    from cropassets.resources.series_settings import SeriesSettings

    if not (args.data / "weekly_cube").is_dir():
        sys.exit(f"{args.data} holds no weekly_cube folder: materialize the demo first")
    now = asset_bytes(args.data)
    tiles = list(load_tiles(args.tiles))
    seasons = load_seasons(args.seasons)
    cfg = SeriesSettings()
    result: dict[str, object] = {"data": str(args.data), "after": now}
    if not args.skip_before:
        t0 = time.perf_counter()
        old, n, skipped = season_series_bytes(args.data, tiles, seasons, cfg.chunk,
                                              cfg.cutoff, cfg.order)
        result |= {"season_series_before": old, "season_series_partitions": n,
                   "season_series_skipped": skipped,
                   "season_series_seconds": round(time.perf_counter() - t0, 1)}
    print(f"bytes per asset in {args.data} ({len(tiles)} tiles, {len(seasons)} seasons)\n")
    print("| asset | before issue 16 | after |")
    print("|---|---:|---:|")
    for name, size in now.items():
        print(f"| {name} | {_fmt(size)} | {_fmt(size)} |")
    if "season_series_before" in result:
        old_b = int(result["season_series_before"])  # type: ignore[call-overload]
        print(f"| season_series | {_fmt(old_b)} | not stored |")
        total = sum(now.values())
        print(f"| **total** | **{_fmt(total + old_b)}** | **{_fmt(total)}** |")
        print(f"\nseason_series: {n} partitions computed ({skipped} skipped for missing "
              f"cubes) in {result['season_series_seconds']} s; series / cubes = "
              f"{old_b / max(now.get('weekly_cube', 1), 1):.1f}x")
    out = REPO / "build" / "demo_bytes.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"\n-> {out}")


if __name__ == "__main__":
    main()
