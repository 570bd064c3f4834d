"""Benchmark: one full Sentinel-2 tile (10980 x 10980 px), ingestion -> cube -> series/SOS ->
prediction, stage by stage, each in a fresh process.

Needs the full-tile world (about 20 CPU-minutes, 15 GB of memory and 7 GB of disk to generate once):

    .venv/bin/cropassets demo-world --out /big/disk/ft-world --full-tile
    .venv/bin/python bench/bench_full_tile.py --world /big/disk/ft-world --data /big/disk/ft-data

Ingestion (``raw_scenes``), cube (``weekly_cube``) and series + SOS (``sos_map``) run as
the Dagster assets through ``cropassets materialize`` on a throw-away instance, so what
is measured is what a deployment runs; ingestion and cube for every week 1..w (series of
week w reads all of them), SOS for week w. Prediction runs
:func:`cropassets.ml.tile_predict.predict_tile` (the ``crop_map`` asset's core) over the
whole tile at week w with a CNN2D of the default architecture fitted for a few steps on
random series: throughput does not depend on the weights (there is no reference season in
this world to train on; accuracy is measured on real series by bench_real_series.py).

For each stage: wall seconds, CPU seconds (user + system of the process and its
children), peak resident memory (the largest process's) and megapixels per wall second.
The goal of issue 16: every stage under 8 GB. Prints a table and a JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PEAK_LIMIT_GB = 8.0


def run_stage(cmd: list[str], env: dict[str, str]) -> dict[str, float]:
    """Run ``cmd`` to completion; its wall seconds and combined output (``out``).

    Raises:
        RuntimeError: The command failed (its output tail is in the message).
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    out = proc.communicate()[0]
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{out[-3000:]}")
    return {"wall_s": wall, "out": out}  # type: ignore[dict-item]


def measured(cmd: list[str], env: dict[str, str]) -> dict[str, float]:
    """:func:`run_stage` through a fresh interpreter that reports its children's usage."""
    probe = ("import resource, subprocess, sys, json;"
             "r = subprocess.run(sys.argv[1:]);"
             "u = resource.getrusage(resource.RUSAGE_CHILDREN);"
             "print('USAGE', json.dumps({'cpu_s': u.ru_utime + u.ru_stime,"
             " 'peak_gb': u.ru_maxrss / 2**20, 'rc': r.returncode}))")
    res = run_stage([sys.executable, "-c", probe, *cmd], env)
    line = [ln for ln in str(res["out"]).splitlines() if ln.startswith("USAGE ")][-1]
    usage = json.loads(line[6:])
    if usage["rc"] != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{str(res['out'])[-3000:]}")
    found = [ln for ln in str(res["out"]).splitlines() if ln.startswith("PREDICT ")]
    inner = json.loads(found[-1][8:])["seconds"] if found else None
    return {"wall_s": res["wall_s"], "cpu_s": usage["cpu_s"], "peak_gb": usage["peak_gb"],
            **({"predict_tile_s": inner} if inner is not None else {})}


def stage_env(world: Path, data: Path) -> dict[str, str]:
    """Environment pointing the pipeline at the full-tile world and a fresh data root."""
    env = dict(os.environ)
    env.update(CROPASSETS_WORLD=str(world), CROPASSETS_DATA=str(data),
               CROPASSETS_TILES=str(world / "tiles.json"),
               CROPASSETS_SEASONS=str(world / "seasons.json"),
               DAGSTER_HOME=str(data / ".dagster"), CROPASSETS_SENSOR="off")
    (data / ".dagster").mkdir(parents=True, exist_ok=True)
    return env


def predict_child(data: Path, tile: str, weeks: list[str], rows: int) -> None:
    """In a child process: fit a throw-away CNN2D, predict ``rows`` rows (0: all), print JSON."""
    import numpy as np

    from cropassets.ml.recipe import SeriesRecipe
    from cropassets.ml.tile_predict import cube_features, predict_tile
    from cropassets.ml.train import train
    from cropassets.ml.train_config import TrainConfig

    paths = [data / "weekly_cube" / tile / f"{w}.zarr" for w in weeks]
    features = cube_features(paths[0])
    k = len(weeks)
    rng = np.random.default_rng(0)
    n = 512
    series = rng.normal(0, 1, (n, len(features), k)).astype(np.float32)
    labels = rng.integers(1, 5, n)
    cfg = TrainConfig(max_steps=3, min_steps=1, eval_every=3, refit=False)
    ckpt = train(series, labels, rng.integers(0, 64, n), SeriesRecipe(k),
                 class_names={c: f"class {c}" for c in range(1, 5)}, features=features,
                 config=cfg)
    t0 = time.perf_counter()
    cls, _ = predict_tile(paths, ckpt, rows=(0, rows) if rows else None)
    seconds = time.perf_counter() - t0
    print("PREDICT", json.dumps({"seconds": seconds, "pixels": int(cls.size),
                                 "mapped_share": float((cls != 255).mean())}))


def main() -> None:
    """Run the stages and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world", type=Path, required=True, help="full-tile world folder")
    ap.add_argument("--data", type=Path, required=True, help="data root to write (fresh)")
    ap.add_argument("--skip", nargs="*", default=[], choices=["ingest", "cube", "sos",
                                                              "predict"],
                    help="stages already materialized in --data (not re-measured)")
    ap.add_argument("--predict-rows", type=int, default=2048,
                    help="rows of the tile predicted (0: all; default 2048, a fifth of a "
                         "Sentinel-2 tile: throughput is per pixel)")
    ap.add_argument("--child-predict", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_predict:
        predict_child(args.data, args.child_predict[0], args.child_predict[1:],
                      args.predict_rows)
        return
    world, data = args.world.resolve(), args.data.resolve()
    tiles = json.loads((world / "tiles.json").read_text())["tiles"]
    seasons = json.loads((world / "seasons.json").read_text())["seasons"]
    if len(tiles) != 1:
        sys.exit(f"{world} has {len(tiles)} tiles: generate it with --full-tile")
    tile = tiles[0]["id"]
    from cropassets.core.seasons import load_seasons

    season = [s for s in load_seasons(world / "seasons.json") if s.role == "current"][0]
    weeks = [d.isoformat() for d in season.week_starts()]
    env = stage_env(world, data)
    cli = [str(REPO / ".venv/bin/cropassets"), "materialize"]
    from cropassets.core.tiles import load_tiles

    ny, nx = load_tiles(world / "tiles.json")[tile].shape
    mpx = ny * nx / 1e6
    print(f"tile {tile}: {ny} x {nx} px ({mpx:.1f} Mpx), season {season.id}, "
          f"weeks {weeks[0]}..{weeks[-1]}; {os.cpu_count()} CPUs", flush=True)
    rows: list[dict[str, object]] = []

    def record(stage: str, what: str, r: dict[str, float], px: float) -> None:
        row = {"stage": stage, "what": what, **{k: round(v, 2) for k, v in r.items()},
               "mpx_per_s": round(px / r["wall_s"], 3)}
        rows.append(row)
        print(f"  {stage:8s} {what:22s} wall {r['wall_s']:7.1f} s  cpu {r['cpu_s']:7.1f} s  "
              f"peak {r['peak_gb']:5.2f} GB  {row['mpx_per_s']:6.3f} Mpx/s", flush=True)

    for stage, asset in (("ingest", "raw_scenes"), ("cube", "weekly_cube")):
        if stage in args.skip:
            continue
        for w in weeks:
            record(stage, w, measured([*cli, asset, "--tiles", tile, "--weeks", w], env), mpx)
    if "sos" not in args.skip:
        record("sos", f"weeks 1..{len(weeks)}",
               measured([*cli, "sos_map", "--tiles", tile, "--weeks", weeks[-1]], env), mpx)
    if "predict" not in args.skip:
        n_rows = min(args.predict_rows or ny, ny)
        r = measured([sys.executable, __file__, "--world", str(world), "--data", str(data),
                      "--predict-rows", str(n_rows), "--child-predict", tile, *weeks], env)
        record("predict", f"k={len(weeks)}, {n_rows} rows", r, n_rows * nx / 1e6)
        rate = n_rows * nx / r["predict_tile_s"]
        print(f"  predict_tile alone: {r['predict_tile_s']:.1f} s for {n_rows} x {nx} px, "
              f"{rate / 1e3:.0f} kpx/s: the whole tile in {ny * nx / rate / 60:.1f} min",
              flush=True)
    peak = max(float(r["peak_gb"]) for r in rows) if rows else 0.0
    print(f"largest peak {peak:.2f} GB (limit {PEAK_LIMIT_GB} GB): "
          f"{'OK' if peak < PEAK_LIMIT_GB else 'OVER'}")
    print(json.dumps({"tile": tile, "shape": [ny, nx], "seasons": seasons, "rows": rows}))


if __name__ == "__main__":
    main()
