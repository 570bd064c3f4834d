"""Benchmark: gap-fill + zero-phase Butterworth smoothing of per-pixel time series.

Part 1 (speed): ``smooth_series`` on ``--pixels`` series x ``--weeks`` weeks (float32, ~20 %
NaN in runs of 1-4 weeks) against a baseline run in the same process on the same array: the
same gap-fill (``gapfill_linear``) followed by ``scipy.signal.filtfilt`` with the same
coefficients, pad type and pad length. Prints both times, the ratio and the max abs
difference. Each side runs ``--repeat`` times (alternating); medians and minima are shown.

Part 2 (memory): ``smooth_dataarray`` on a lazily generated dask-backed cube of dims
(feature=4, week=20, y, x), chunked ``--chunk`` x ``--chunk`` in space, reduced to a sum so
nothing full-size is held. A ``--small`` and a ``--size`` cube each run in a fresh child
process; peak RSS growth (peak RSS during the compute, from /proc ``VmHWM`` after resetting it,
minus RSS before computing) should not grow with area. (Not ``ru_maxrss``: on Linux a child
inherits its parent's peak through exec, which here would be part 1's peak.)

    .venv/bin/python bench/bench_smoothing.py [--pixels 1000000] [--size 4096] [--small 1024]
        [--chunk 512] [--repeat 3] [--workers 2]

Ratios are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
from scipy import signal

from cropassets.core.timeseries.gapfill import gapfill_linear
from cropassets.core.timeseries.smoothing import (
    butterworth_coefficients,
    padlen_for,
    smooth_dataarray,
    smooth_series,
)

CUTOFF = 0.25
NAN_FRACTION = 0.2
RUN_START_P = 0.088  # runs of 1-4 weeks starting with this probability cover ~20 %


def cloud_gaps(x: np.ndarray, rng: np.random.Generator, axis: int = -1) -> np.ndarray:
    """Set NaN runs of 1-4 steps along ``axis`` in place (about 20 % of values); return x."""
    xm = np.moveaxis(x, axis, -1)
    u = rng.random(xm.shape, dtype=np.float32)
    start = u < RUN_START_P
    length = (u * np.float32(4 / RUN_START_P)).astype(np.int8)  # 0..3 where start
    mask = start.copy()
    for k in range(1, 4):
        mask[..., k:] |= start[..., :-k] & (length[..., :-k] >= k)
    xm[mask] = np.nan
    return x


def _median_min(times: list[float]) -> str:
    return f"median {statistics.median(times):.3f} s (min {min(times):.3f} s)"


def bench_speed(pixels: int, weeks: int, repeat: int) -> None:
    rng = np.random.default_rng(0)
    t = np.arange(weeks, dtype=np.float32)
    # smooth seasonal curve + noise, e.g. NDVI-like values around 0.2..0.8
    phase = rng.random((pixels, 1), dtype=np.float32) * weeks
    x = 0.5 + 0.3 * np.sin(2 * np.pi * (t + phase) / weeks, dtype=np.float32)
    x += 0.05 * rng.standard_normal(x.shape, dtype=np.float32)
    cloud_gaps(x, rng)
    print(
        f"part 1: {pixels:,} series x {weeks} weeks float32, "
        f"NaN fraction {np.isnan(x).mean():.3f} (target {NAN_FRACTION}), "
        f"all-NaN series {int(np.isnan(x).all(axis=1).sum())}, cutoff {CUTOFF} cyc/week"
    )
    b, a = butterworth_coefficients(CUTOFF)
    padlen = padlen_for(weeks)

    def baseline(arr: np.ndarray) -> tuple[np.ndarray, float, float]:
        t0 = time.perf_counter()
        filled = gapfill_linear(arr)
        t1 = time.perf_counter()
        out = signal.filtfilt(b, a, filled, axis=-1, padtype="odd", padlen=padlen)
        return out, t1 - t0, time.perf_counter() - t1

    baseline(x[:10_000])  # warm-up: imports, caches, BLAS threads
    smooth_series(x[:10_000], CUTOFF)
    t_gap, t_filt, t_base, t_ours, t_nogap = [], [], [], [], []
    ref = ours = None
    filled = gapfill_linear(x)  # NaN-free input: smooth_series then costs ~only the matmul
    for _ in range(repeat):
        del ref, ours
        ref, tg, tf = baseline(x)
        t_gap.append(tg)
        t_filt.append(tf)
        t_base.append(tg + tf)
        t0 = time.perf_counter()
        ours = smooth_series(x, CUTOFF)
        t_ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        smooth_series(filled, CUTOFF)
        t_nogap.append(time.perf_counter() - t0)
    diff = np.abs(ours.astype(np.float64) - ref)
    same_nan = bool(np.array_equal(np.isnan(ours), np.isnan(ref)))
    print(f"  baseline gapfill_linear + filtfilt: {_median_min(t_base)}")
    print(f"    of which gapfill_linear {_median_min(t_gap)}, filtfilt {_median_min(t_filt)}")
    print(f"  smooth_series (gap-fill + T x T matmul, blocked): {_median_min(t_ours)}")
    print(
        f"    smooth_series on the already gap-filled array: {_median_min(t_nogap)} "
        f"-> filtfilt / that: "
        f"{statistics.median(t_filt) / statistics.median(t_nogap):.0f}x (smoothing step alone)"
    )
    print(
        f"  speed ratio baseline / smooth_series: median "
        f"{statistics.median(t_base) / statistics.median(t_ours):.1f}x, "
        f"best-vs-best {min(t_base) / min(t_ours):.1f}x "
        f"(filtfilt alone / smooth_series: "
        f"{statistics.median(t_filt) / statistics.median(t_ours):.1f}x; target >= 20x)"
    )
    print(
        f"  max abs difference {np.nanmax(diff):.2e} (data scale ~1), "
        f"NaN positions identical: {same_nan}"
    )


def _status_bytes(field: str) -> int | None:
    """``VmRSS`` / ``VmHWM`` of this process from /proc (Linux), bytes; None elsewhere."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset the peak-RSS mark to the current RSS (Linux >= 4.0); False if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _make_chunk(shape: tuple[int, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape, dtype=np.float32)
    return cloud_gaps(x, rng, axis=1)


def cube_child(size: int, chunk: int, workers: int) -> None:
    """Run in a fresh process: smooth a (4, 20, size, size) dask cube, print JSON stats."""
    import dask
    import dask.array as dsa
    import xarray as xr

    features, weeks = 4, 20

    # Random generation would dominate the run time, so every chunk is a fresh copy of one
    # of a few pre-generated templates (a new 80 MiB array per chunk, as a real load gives).
    templates = [_make_chunk((features, weeks, chunk, chunk), seed=k) for k in range(3)]

    def block(block_info=None):
        info = block_info[None]
        iy, ix = info["chunk-location"][2:]
        tpl = templates[(iy * 7 + ix) % len(templates)]
        return tpl[tuple(slice(0, s) for s in info["chunk-shape"])].copy()

    chunks = ((features,), (weeks,), _split(size, chunk), _split(size, chunk))
    data = dsa.map_blocks(
        block, chunks=chunks, dtype=np.float32, meta=np.empty((0, 0, 0, 0), np.float32)
    )
    cube = xr.DataArray(data, dims=("feature", "week", "y", "x"), name="composite")
    smooth_series(templates[0], CUTOFF, axis=1)  # warm-up outside the measured window
    total = dsa.nansum(smooth_dataarray(cube, "week", cutoff=CUTOFF).data, dtype=np.float64)
    rss0 = _status_bytes("VmRSS")
    exact = _reset_peak_rss() and rss0 is not None
    if not exact:  # fall back to the process-lifetime peak (includes anything before)
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0 = time.perf_counter()
    with dask.config.set(scheduler="threads", num_workers=workers):
        value = float(total.compute())
    wall = time.perf_counter() - t0
    peak = _status_bytes("VmHWM") if exact else None
    if peak is None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        json.dumps(
            {
                "size": size,
                "wall_s": wall,
                "rss_before": rss0,
                "peak_rss": peak,
                "series": features * size * size,
                "checksum": value,
            }
        )
    )


def _split(n: int, chunk: int) -> tuple[int, ...]:
    return (chunk,) * (n // chunk) + ((n % chunk,) if n % chunk else ())


def bench_memory(sizes: list[int], chunk: int, workers: int) -> None:
    chunk_mib = 4 * 20 * chunk * chunk * 4 / 2**20
    print(
        f"part 2: dask cube (feature=4, week=20, y, x) float32, chunks 4x20x{chunk}x{chunk} "
        f"({chunk_mib:.0f} MiB), {workers} threads, reduced with nansum"
    )
    results = []
    for size in sizes:
        cmd = [
            sys.executable,
            __file__,
            "--_cube",
            str(size),
            "--chunk",
            str(chunk),
            "--workers",
            str(workers),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        growth = r["peak_rss"] - r["rss_before"]
        results.append((size, growth))
        cube_mib = r["series"] * 20 * 4 / 2**20
        print(
            f"  {size}x{size}: cube {cube_mib:,.0f} MiB, {r['wall_s']:.1f} s "
            f"({r['series'] / r['wall_s'] / 1e6:.1f} M series/s), RSS before "
            f"{r['rss_before'] / 2**20:.0f} MiB, peak {r['peak_rss'] / 2**20:.0f} MiB, "
            f"growth {growth / 2**20:.0f} MiB"
        )
    if len(results) == 2:
        (s0, g0), (s1, g1) = results
        print(f"  area ratio {(s1 / s0) ** 2:.0f}x, peak-RSS-growth ratio {g1 / g0:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pixels", type=int, default=1_000_000)
    ap.add_argument("--weeks", type=int, default=52)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--size", type=int, default=4096, help="large cube edge, px (0: skip)")
    ap.add_argument("--small", type=int, default=1024, help="reference cube edge, px")
    ap.add_argument("--chunk", type=int, default=512)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--_cube", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._cube:
        cube_child(args._cube, args.chunk, args.workers)
        return
    if args.pixels:
        bench_speed(args.pixels, args.weeks, args.repeat)
    if args.size:
        bench_memory([args.small, args.size], args.chunk, args.workers)


if __name__ == "__main__":
    main()
