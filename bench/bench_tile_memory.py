"""Benchmark: weekly_cube + the season series of one large tile in chunks, peak memory vs area.

Builds a raw-scenes partition of ``--size``² pixels by tiling a real demo partition (lazily,
with dask), then in a fresh child process per size runs the same core calls the assets run
(``write_weekly_composite`` -> Zarr for ``--weeks`` weeks, then ``stack_cubes`` +
``season_series`` -> Zarr; the pipeline no longer stores the series, ``sos_map`` computes
it in memory, but writing it forces the same chunked computation) and reports wall time and
peak RSS growth (``VmHWM`` after a reset, minus RSS before). Memory must not grow with
tile area: from 3072² on every size has interior blocks (whose halo touches 9 stored
chunks), so 3072² and 4096² must match; 1024² (one block, no halo) is the small-tile floor.

    .venv/bin/python bench/bench_tile_memory.py [--sizes 1024 4096] [--weeks 4] [--chunk 1024]
"""

from __future__ import annotations

import argparse
import glob
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _proc import proc_status


def child(size: int, weeks: int, chunk: int, work: str) -> None:
    import dask
    import dask.array as da
    import numpy as np

    from cropassets.core.cube.composite import write_weekly_composite
    from cropassets.core.storage import open_zarr, raw_scenes_encoding, write_zarr_atomic
    from cropassets.core.timeseries.season_series import season_series, stack_cubes

    src = sorted(glob.glob("data/raw_scenes/T00/2024-0[6-7]-*.zarr"))[0]
    small = open_zarr(src).load()
    reps = size // small.sizes["y"]
    tiled = small.copy()
    tiled = tiled.drop_vars(["y", "x"])
    big = {}
    for name, var in small.data_vars.items():
        arr = da.from_array(var.values, chunks=(-1, 512, 512))
        big[name] = (var.dims, da.tile(arr, (1, reps, reps)).rechunk((-1, chunk, chunk)))
    import xarray as xr

    raw = xr.Dataset(big, coords={k: v for k, v in small.coords.items()
                                  if k not in ("x", "y", "spatial_ref")})
    raw = raw.assign_coords(y=np.arange(size)[::-1] * 10.0, x=np.arange(size) * 10.0)
    work_p = Path(work)
    raw_path = work_p / "raw.zarr"
    write_zarr_atomic(raw, raw_path, raw_scenes_encoding(raw))
    lazy = open_zarr(raw_path)
    rss0 = proc_status("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    t0 = time.perf_counter()
    with dask.config.set(scheduler="threads", num_workers=2):
        cube_paths = []
        for w in range(weeks):
            p = work_p / f"cube{w}.zarr"
            write_weekly_composite(lazy, p, chunk=chunk)
            cube_paths.append(p)
        t_cube = time.perf_counter() - t0
        peak_cube = proc_status("VmHWM")
        cubes = stack_cubes(cube_paths, [f"w{w}" for w in range(weeks)], chunk=chunk // 2)
        out, enc = season_series(cubes, cutoff=0.2)
        write_zarr_atomic(out, work_p / "series.zarr", enc)
    wall = time.perf_counter() - t0
    peak = proc_status("VmHWM")
    print(json.dumps({"size": size, "weeks": weeks, "cube_s": t_cube, "total_s": wall,
                      "rss_before_mib": rss0 / 2**20,
                      "cube_peak_growth_mib": (peak_cube - rss0) / 2**20,
                      "peak_growth_mib": (peak - rss0) / 2**20,
                      "pixels": size * size}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1024, 3072, 4096])
    ap.add_argument("--weeks", type=int, default=4)
    ap.add_argument("--chunk", type=int, default=1024)
    ap.add_argument("--child", type=int, default=0)
    ap.add_argument("--work", default="")
    args = ap.parse_args()
    if args.child:
        child(args.child, args.weeks, args.chunk, args.work)
        return
    results = []
    for size in args.sizes:
        work = tempfile.mkdtemp(prefix=f"bench-tile-{size}-")
        try:
            out = subprocess.run([sys.executable, __file__, "--child", str(size), "--weeks",
                                  str(args.weeks), "--chunk", str(args.chunk), "--work", work],
                                 capture_output=True, text=True, check=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        res = json.loads(out.stdout.strip().splitlines()[-1])
        results.append(res)
        print(f"{size}x{size}: weekly_cube x{res['weeks']} {res['cube_s']:.1f} s, + season_series "
              f"total {res['total_s']:.1f} s, peak RSS growth {res['peak_growth_mib']:.0f} MiB "
              f"(after the cubes {res['cube_peak_growth_mib']:.0f} MiB) "
              f"({res['pixels'] / res['total_s'] / 1e6:.2f} Mpx/s)")
    if len(results) > 1:
        a, b = results[0], results[-1]
        print(f"area x{b['pixels'] / a['pixels']:.0f} -> peak memory growth "
              f"x{b['peak_growth_mib'] / max(a['peak_growth_mib'], 1):.2f}")


if __name__ == "__main__":
    main()
