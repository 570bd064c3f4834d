"""Benchmark: CWT magnitude scalograms as one matmul (cwt_magnitude) against pywt.cwt.

Both sides transform the same batch of N pixels x F features x T steps at S scales. pywt
is timed in several honest forms (2-D array with axis=-1 by "conv" and by "fft", float64
and float32, and the per-series 1-D loop) on a subset of the series, and the fastest form
is the baseline; its rate is per series, so the subset is scaled, not extrapolated in
time. Prints series/s (one series = one pixel's one feature), ratios and the max error
relative to the peak magnitude. Never asserts times: compare ratios from one run only.

torch runs multi-threaded and suffers most from other load on the machine (its OpenMP
threads wait for each other), so a 1-thread ratio is printed too, and the load average.
Producing the (N, F, S, T) output touches fresh memory (~143 MB at the defaults): setting
THP_MEM_ALLOC_ENABLE=1 (torch's transparent-huge-page allocation) cuts that page-fault
cost several-fold where THP is in "madvise" mode; the run prints whether it was set.

    .venv/bin/python bench/bench_cwt.py [--n 20000] [--features 4] [--steps 28]
        [--scales 16] [--pywt-series 4000] [--force-bf16]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np
import pywt
import torch

from cropassets.ml.cwt import DEFAULT_WAVELET, cwt_matrix, default_scales
from cropassets.ml.cwt_precision import _cpu_has_bf16, cpu_prefers_bf16
from cropassets.ml.scalograms import cwt_magnitude


def _best(fn: Callable[[], object], repeats: int) -> float:
    """Best wall time of ``repeats`` calls, in seconds."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _series(n: int, f: int, t: int, seed: int = 0) -> np.ndarray:
    """NDVI-like smooth seasonal curves plus noise, (n, f, t) float64."""
    rng = np.random.default_rng(seed)
    steps = np.arange(t)
    peak = rng.uniform(0.3 * t, 0.7 * t, size=(n, f, 1))
    width = rng.uniform(0.1 * t, 0.3 * t, size=(n, f, 1))
    base = 0.2 + 0.6 * np.exp(-(((steps - peak) / width) ** 2))
    return base + rng.normal(0, 0.03, size=(n, f, t))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000, help="pixels N")
    ap.add_argument("--features", type=int, default=4, help="features F")
    ap.add_argument("--steps", type=int, default=28, help="time steps T")
    ap.add_argument("--scales", type=int, default=16, help="scales S")
    ap.add_argument("--pywt-series", type=int, default=4000, help="series pywt transforms")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--force-bf16", action="store_true", help="time bf16 even if not preferred")
    args = ap.parse_args()

    n, f, t = args.n, args.features, args.steps
    scales = default_scales(t, args.scales)
    x64 = _series(n, f, t)
    x32 = x64.astype(np.float32)
    rows = n * f
    sub = min(args.pywt_series, rows)
    x_sub = x64.reshape(rows, t)[:sub]

    threads = torch.get_num_threads()
    print(
        f"torch {torch.__version__}, cpu capability {torch.backends.cpu.get_cpu_capability()}"
        f", avx512-bf16 {_cpu_has_bf16()}, threads {threads}, "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs, "
        f"THP_MEM_ALLOC_ENABLE={os.environ.get('THP_MEM_ALLOC_ENABLE', 'unset')}"
    )
    print(
        f"batch: N={n} pixels x F={f} features = {rows} series, T={t} steps, "
        f"S={len(scales)} scales {scales[0]:.3g}..{scales[-1]:.3g}, wavelet {DEFAULT_WAVELET}"
    )

    t0 = time.perf_counter()
    cwt_matrix(t, scales)
    print(f"one-off matrix build (cached): {1e3 * (time.perf_counter() - t0):.1f} ms")

    # --- pywt: the fastest honest form on a subset, reported per series -----------------
    loop_n = min(sub, 500)
    forms: dict[str, tuple[int, Callable[[], object]]] = {
        "2-D conv f64": (sub, lambda: pywt.cwt(x_sub, scales, DEFAULT_WAVELET, axis=-1)),
        "2-D fft  f64": (
            sub,
            lambda: pywt.cwt(x_sub, scales, DEFAULT_WAVELET, method="fft", axis=-1),
        ),
        "2-D fft  f32": (
            sub,
            lambda: pywt.cwt(
                x_sub.astype(np.float32), scales, DEFAULT_WAVELET, method="fft", axis=-1
            ),
        ),
        "1-D loop conv": (
            loop_n,
            lambda: [pywt.cwt(row, scales, DEFAULT_WAVELET) for row in x_sub[:loop_n]],
        ),
    }
    print(
        f"pywt {pywt.__version__} on a subset ({sub} of {rows} series; 1-D loop on "
        f"{loop_n}), scaled per series:"
    )
    rates = {}
    for name, (count, fn) in forms.items():
        rates[name] = count / _best(fn, max(1, args.repeats - 1))
        print(f"  pywt {name}: {rates[name]:12,.0f} series/s")
    base_name = max(rates, key=rates.__getitem__)
    base = rates[base_name]
    print(f"  baseline = fastest pywt form: {base_name}")

    ref = np.moveaxis(np.abs(pywt.cwt(x_sub, scales, DEFAULT_WAVELET, axis=-1)[0]), 0, -2)
    peak = ref.max()

    # --- cwt_magnitude -------------------------------------------------------------------
    xt = torch.from_numpy(x32)
    cwt_magnitude(xt[:64], scales)  # warm-up
    fp32_rate = rows / _best(lambda: cwt_magnitude(xt, scales), args.repeats)
    sub_out = cwt_magnitude(x_sub[:, None, :], scales)[:, 0]
    err32 = np.abs(sub_out - ref).max() / peak
    print(
        f"cwt_magnitude fp32: {fp32_rate:12,.0f} series/s  = {fp32_rate / base:7.1f}x pywt "
        f"({base_name}); max error {err32:.2e} of peak (contract: >= 20x, <= 1e-4)"
    )

    if threads > 1:  # pywt runs on one core: the per-core ratio, less sensitive to load
        torch.set_num_threads(1)
        one_rate = rows / _best(lambda: cwt_magnitude(xt, scales), args.repeats)
        torch.set_num_threads(threads)
        print(
            f"cwt_magnitude fp32, 1 thread: {one_rate:12,.0f} series/s  = "
            f"{one_rate / base:7.1f}x pywt (per-core ratio; pywt is single-threaded)"
        )

    prefers = cpu_prefers_bf16()
    print(f"cpu_prefers_bf16(): {prefers}")
    if prefers or args.force_bf16:
        bf = torch.bfloat16
        cwt_magnitude(xt[:64], scales, dtype=bf)
        bf_rate = rows / _best(lambda: cwt_magnitude(xt, scales, dtype=bf), args.repeats)
        bf_out = cwt_magnitude(x_sub[:, None, :], scales, dtype=bf)[:, 0]
        err16 = np.abs(bf_out - ref).max() / peak
        print(
            f"cwt_magnitude bf16: {bf_rate:12,.0f} series/s  = {bf_rate / base:7.1f}x pywt, "
            f"{bf_rate / fp32_rate:.2f}x fp32; max error {err16:.2e} of peak"
        )
    else:
        print("bf16 skipped (not preferred on this CPU; --force-bf16 to time it)")


if __name__ == "__main__":
    main()
