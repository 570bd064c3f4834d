"""Benchmark: fused tile prediction (cubes -> smooth -> CWT -> CNN2D) vs the CNN alone.

Uses the demo's checkpoints (``make demo`` first) and weekly cubes of tile T00 of the
current season, tiled to ``--size``² pixels. Reports

1. throughput of :func:`cropassets.ml.tile_predict.predict_tile` (the ``crop_map`` asset's
   core) at week k = ``--k`` on a 1024² tile, against the ceiling: the CNN2D forward pass
   alone (the fused conv-BN, channels-last inference model) on the same pixels' already
   prepared inputs, and against the plain eager model at the old batch size (8192);
2. the same throughput and the FLOPs per pixel of the network the demo served before issue 12
   (scalogram branch alone, widths (4, 8), no series row or series branch), a checkpoint of
   that architecture fitted in a few steps on the demo's own samples (speed does not depend
   on the weights), so "before" and "after" run in one process on the same pixels;
3. peak RSS growth of ``predict_tile`` at ``--mem-k`` for each ``--mem-sizes`` tile, each in
   a fresh child process: it must not grow with area beyond the two uint8 output arrays.

    .venv/bin/python bench/bench_predict.py [--k 28] [--mem-sizes 1024 4096] [--mem-k 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _proc import proc_status

DATA = Path("data")



def _season_weeks(role: str) -> list[str]:
    """Week keys of the first season of ``role`` in config/seasons.json."""
    from cropassets.core.seasons import load_seasons

    season = next(s for s in load_seasons("config/seasons.json") if s.role == role)
    return [d.isoformat() for d in season.week_starts()]


def make_cubes(size: int, k: int, work: Path) -> list[Path]:
    """Weekly cubes of weeks 1..k at size² pixels: demo T00 cubes tiled (real NaN gaps)."""
    import numpy as np
    import xarray as xr

    from cropassets.core.storage import open_zarr, write_zarr_atomic

    paths = []
    for wk in _season_weeks("current")[:k]:
        src = open_zarr(DATA / "weekly_cube" / "T00" / f"{wk}.zarr")
        feats = src["features"].values
        reps = -(-size // feats.shape[1])
        big = np.tile(feats, (1, reps, reps))[:, :size, :size]
        ds = xr.Dataset({"features": (("feature", "y", "x"), big)},
                        coords={"feature": src["feature"].values})
        p = work / f"{size}" / f"{wk}.zarr"
        write_zarr_atomic(ds.chunk({"y": 1024, "x": 1024}), p)
        paths.append(p)
    return paths


def _warm_up(ckpt) -> None:
    """One small prediction: imports, allocator pools and oneDNN kernels get ready."""
    import numpy as np

    from cropassets.ml.predict import predict

    x = np.random.default_rng(0).normal(0, 1, (4096, len(ckpt.features), ckpt.n_steps))
    predict(ckpt, x.astype(np.float32))


def child_memory(size: int, k: int, work: str) -> None:
    """Peak RSS growth of predict_tile on a size² tile (run in a fresh process)."""
    from cropassets.ml.checkpoint import Checkpoint
    from cropassets.ml.tile_predict import predict_tile

    paths = make_cubes(size, k, Path(work))
    ckpt = Checkpoint.load(DATA / "cnn2d_checkpoint" / f"k{k:02d}.pt")
    _warm_up(ckpt)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    base = proc_status("VmRSS")
    t0 = time.perf_counter()
    cls, _ = predict_tile(paths, ckpt)
    dt = time.perf_counter() - t0
    print(json.dumps({"size": size, "k": k, "seconds": dt, "px_per_s": cls.size / dt,
                      "peak_growth_mib": (proc_status("VmHWM") - base) / 2**20,
                      "outputs_mib": 2 * cls.size / 2**20}))


def throughput(k: int, work: Path) -> None:
    """predict_tile vs CNN forward alone vs eager model on the same 1024² pixels."""
    import numpy as np
    import torch

    from cropassets.ml.checkpoint import Checkpoint
    from cropassets.ml.model import inference_model
    from cropassets.ml.prepare import prepare_tensor
    from cropassets.ml.tile_predict import predict_tile

    paths = make_cubes(1024, k, work)
    ckpt = Checkpoint.load(DATA / "cnn2d_checkpoint" / f"k{k:02d}.pt")
    _warm_up(ckpt)
    t0 = time.perf_counter()
    cls, _ = predict_tile(paths[:k], ckpt)
    fused = cls.size / (time.perf_counter() - t0)

    import zarr

    n = 131072
    series = np.stack([zarr.open_array(p / "features", mode="r")[:, :128, :]
                       for p in paths[:k]], axis=1).reshape(5, k, -1).transpose(2, 0, 1)[:n]
    series = np.ascontiguousarray(series, dtype=np.float32)
    xin, _ = prepare_tensor(series, ckpt.recipe, "cpu")
    fast = inference_model(ckpt.build_model("cpu"), "cpu")
    eager = ckpt.build_model("cpu")

    def run(model, batch: int, channels_last: bool) -> float:
        with torch.inference_mode():
            for rep in range(2):  # first pass warms up
                t = time.perf_counter()
                for s in range(0, n, batch):
                    x = xin[s:s + batch]
                    if channels_last:
                        x = x.contiguous(memory_format=torch.channels_last)
                    model(x)
                if rep:
                    return n / (time.perf_counter() - t)
        raise AssertionError

    ceiling = run(fast, 2048, True)
    eager_rate = run(eager, 8192, False)
    before = _before_issue_12(k)
    t0 = time.perf_counter()
    cls_b, _ = predict_tile(paths[:k], before)
    fused_before = cls_b.size / (time.perf_counter() - t0)
    flops = ckpt.metrics.get("flops_per_sample")
    flops_b = before.metrics.get("flops_per_sample")
    print(f"k={k}, 1024x1024 tile, {torch.get_num_threads()} threads")
    print(f"  served CNN2D: {flops:,} FLOPs/pixel; before issue 12 (scalogram branch only): "
          f"{flops_b:,} ({flops / flops_b:.2f}x)")
    print(f"  fused predict_tile, before: {fused_before:10.0f} px/s")
    print(f"  after / before            : {fused / fused_before:10.2f}")
    print(f"  fused predict_tile        : {fused:10.0f} px/s")
    print(f"  CNN forward alone (fused) : {ceiling:10.0f} px/s  (ceiling)")
    print(f"  CNN forward, eager b=8192 : {eager_rate:10.0f} px/s")
    print(f"  fused / ceiling           : {fused / ceiling:10.2f}")
    print(f"  ceiling / eager           : {ceiling / eager_rate:10.2f}")


def _before_issue_12(k: int):
    """A checkpoint of the pre-issue-12 architecture, fitted in a few steps on demo samples."""
    import numpy as np

    from cropassets.ml.train import train
    from cropassets.ml.train_config import TrainConfig

    week = _season_weeks("reference")[k - 1]
    d = np.load(DATA / "scalograms" / f"{week}.npz")
    names = dict(zip(d["class_codes"].tolist(), d["class_names"].tolist(), strict=True))
    from cropassets.ml.recipe import SeriesRecipe

    cfg = TrainConfig(max_steps=5, min_steps=1, eval_every=5, refit=False, widths=(4, 8))
    return train(d["series"], d["labels"], d["field_ids"], SeriesRecipe(k, series_row=False),
                 class_names=names, features=[str(f) for f in d["features"]], config=cfg)


def main() -> None:
    """Run both measurements."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=28)
    ap.add_argument("--mem-sizes", type=int, nargs="*", default=[1024, 4096])
    ap.add_argument("--mem-k", type=int, default=3)
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child_memory(int(args.child[0]), int(args.child[1]), args.child[2])
        return
    if not (DATA / "cnn2d_checkpoint" / f"k{args.k:02d}.pt").exists():
        sys.exit("no demo checkpoints under data/: run `make demo` first")
    work = Path(tempfile.mkdtemp(prefix="bench-predict-"))
    try:
        throughput(args.k, work)
        print(f"peak memory of predict_tile, k={args.mem_k} (fresh process per size):")
        for size in args.mem_sizes:
            out = subprocess.run([sys.executable, __file__, "--child", str(size),
                                  str(args.mem_k), str(work)], capture_output=True, text=True,
                                 check=True).stdout.strip().splitlines()[-1]
            r = json.loads(out)
            print(f"  {size:5d}^2: {r['seconds']:6.1f} s, {r['px_per_s']:9.0f} px/s, peak RSS "
                  f"growth {r['peak_growth_mib']:7.1f} MiB (outputs {r['outputs_mib']:.1f} MiB)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
