"""Benchmark: demo-world generation and one tile x week of raw_scenes.

Prints wall times and, for the week load, the ratio against a baseline run in the same
process: reading the same assets' native pixels with plain rasterio (no warp, no scaling).

    .venv/bin/python bench/bench_ingest.py [--size 512] [--tiles 4] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import rasterio

from cropassets.core.seasons import all_weeks, load_seasons
from cropassets.core.stac.catalog_profiles import DEMO
from cropassets.core.stac.scenes import load_week
from cropassets.core.stac.search import search_items
from cropassets.core.stac.server import serve
from cropassets.core.tiles import load_tiles
from cropassets.world.generate import generate_world


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--tiles", type=int, default=4)
    ap.add_argument("--keep", default="", help="reuse/keep the world in this folder")
    args = ap.parse_args()
    root = Path(args.keep or tempfile.mkdtemp(prefix="bench-world-"))
    fresh = not (root / "world.json").exists()

    t0 = time.perf_counter()
    generate_world(root, seed=42, size=args.size, tiles=args.tiles)
    t_gen = time.perf_counter() - t0
    manifest = json.loads((root / "world.json").read_text())
    print(f"world generation ({args.tiles} tiles x {args.size}^2, "
          f"{'fresh' if fresh else 'cached'}): {t_gen:.1f} s, {_du(root) / 2**20:.0f} MiB, "
          f"counts={manifest.get('counts')}")

    tiles = load_tiles(root / "tiles.json")
    tile = next(iter(tiles.values()))
    weeks = all_weeks(load_seasons(root / "seasons.json"))
    week = weeks[len(weeks) // 4]
    with serve(root / "stac") as server:
        t0 = time.perf_counter()
        start, end = week.interval_utc()
        s2 = search_items(server.url, [DEMO.s2_collection], tile.bbox_wgs84(), start, end,
                          max_cloud_cover=90)
        s1 = search_items(server.url, [DEMO.s1_collection], tile.bbox_wgs84(), start, end)
        t_search = time.perf_counter() - t0
    t0 = time.perf_counter()
    ds, _ = load_week(s2, s1, tile, DEMO)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    for item in s2 + s1:
        for key in (*DEMO.s2_assets.values(), *DEMO.s1_assets.values()):
            if key in item["assets"]:
                with rasterio.open(item["assets"][key]["href"]) as src:
                    src.read(1)
    t_base = time.perf_counter() - t0
    print(f"raw_scenes {tile.id} {week.key}: {len(s2)} S2 + {len(s1)} S1 scenes; "
          f"STAC search {t_search * 1e3:.0f} ms; load onto grid {t_load:.2f} s; "
          f"plain full-scene rasterio read {t_base:.2f} s; ratio load/read {t_load / t_base:.2f}")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
