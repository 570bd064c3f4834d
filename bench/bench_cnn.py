"""Benchmark: CNN2D inference and training throughput, FLOPs and achieved GFLOP/s.

Variants, all on the same random (N, F, S, T) scalogram batch, timed in one run so that
ratios to the eager NCHW fp32 baseline are meaningful (absolute rates are not: CPUs of
this kind differ, see STACK-NOTES "CPUs differ"):

- eager NCHW fp32 (baseline), eager channels_last;
- torch.compile (NCHW and channels_last) if it compiles offline within ``--compile-timeout``
  seconds: compiled variants run in a child process that is killed on timeout;
- bf16 autocast only where ``cropassets.ml.cwt_precision.cpu_prefers_bf16()`` is True;
- training steps (forward + backward + AdamW) eager, channels_last (and compiled);
- the fused path ``cropassets.ml.predict`` on raw series (smoothing + CWT + CNN), reported
  against the CNN forward alone (its ceiling);
- CUDA (fp32, bf16 autocast, training) when a GPU is present.

FLOPs per sample come from ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and
matmuls, 2 FLOPs per multiply-add); training FLOPs are counted on a real training step.
Never asserts times.

    .venv/bin/python bench/bench_cnn.py [--widths 4,8] [--n 8192] [--batch 1024]
        [--steps 28] [--features 5] [--scales 16] [--threads N] [--no-compile]
        [--no-series-row]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np
import torch

from cropassets.ml.cwt import default_scales
from cropassets.ml.cwt_precision import cpu_prefers_bf16
from cropassets.ml.model import CNN2D, ModelConfig, flops_per_sample


def _best(fn: Callable[[], object], repeats: int, sync: Callable[[], None] = lambda: None) -> float:
    """Best wall time of ``repeats`` calls after one warm-up, seconds."""
    fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return min(times)


def _model(args: argparse.Namespace, device: str = "cpu") -> CNN2D:
    torch.manual_seed(0)
    cfg = ModelConfig(args.features, args.classes, tuple(int(w) for w in args.widths.split(",")))
    return CNN2D(cfg).to(device)


def _rows(args: argparse.Namespace) -> int:
    """Input height: S scales plus the series row (cropassets.ml.prepare step 6)."""
    return args.scales + (0 if args.no_series_row else 1)


def _data(args: argparse.Namespace, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.n, args.features, _rows(args), args.steps, generator=g)
    y = torch.randint(0, args.classes, (args.n,), generator=g)
    return x.to(device), y.to(device)


def _infer_fn(model: torch.nn.Module, x: torch.Tensor, batch: int, amp: bool) -> Callable[[], None]:
    dev = x.device.type

    def run() -> None:
        with torch.no_grad(), torch.autocast(dev, dtype=torch.bfloat16, enabled=amp):
            for i in range(0, len(x), batch):
                model(x[i : i + batch])

    return run


def _train_fn(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int, amp: bool
) -> Callable[[], None]:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    dev = x.device.type

    def run() -> None:
        model.train()
        for i in range(0, len(x), batch):
            opt.zero_grad(set_to_none=True)
            with torch.autocast(dev, dtype=torch.bfloat16, enabled=amp):
                loss = loss_fn(model(x[i : i + batch]), y[i : i + batch])
            loss.backward()
            opt.step()

    return run


def _train_flops(args: argparse.Namespace) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    model = _model(args)
    x = torch.zeros(args.train_batch, args.features, _rows(args), args.steps)
    y = torch.zeros(args.train_batch, dtype=torch.long)
    counter = FlopCounterMode(display=False)
    with counter:
        torch.nn.functional.cross_entropy(model(x), y).backward()
    return int(counter.get_total_flops()) // args.train_batch


def _compiled_child(args: argparse.Namespace) -> None:
    """Run in a child process: time compiled variants, print one JSON line."""
    out: dict[str, float] = {}
    x, y = _data(args)
    t0 = time.perf_counter()
    model = _model(args).eval()
    cm = torch.compile(model, dynamic=False)
    _infer_fn(cm, x, args.batch, False)()
    out["compile_s"] = time.perf_counter() - t0
    out["infer_compiled"] = _best(_infer_fn(cm, x, args.batch, False), args.repeats)
    xcl = x.contiguous(memory_format=torch.channels_last)
    mcl = _model(args).eval().to(memory_format=torch.channels_last)
    ccl = torch.compile(mcl, dynamic=False)
    out["infer_compiled_cl"] = _best(_infer_fn(ccl, xcl, args.batch, False), args.repeats)
    if args.bf16:
        out["infer_compiled_bf16"] = _best(_infer_fn(ccl, xcl, args.batch, True), args.repeats)
    tm = torch.compile(_model(args), dynamic=False)
    nt = min(args.n, args.train_n)
    out["train_compiled"] = _best(
        _train_fn(tm, x[:nt], y[:nt], args.train_batch, False), max(2, args.repeats // 2)
    )
    print("RESULT " + json.dumps(out), flush=True)


def _fused(args: argparse.Namespace, model: CNN2D) -> float:
    """Seconds of cropassets.ml.predict on args.n raw series (smoothing + CWT + CNN)."""
    from cropassets.ml.checkpoint import Checkpoint
    from cropassets.ml.recipe import InputStats, SeriesRecipe
    from cropassets.ml.scalogram_stats import ScalogramStats

    scales = default_scales(args.steps, args.scales)
    stats = InputStats(
        ScalogramStats((0.0,) * args.features, (1.0,) * args.features),
        tuple((0.0,) * args.steps for _ in range(args.features)),
        None if args.no_series_row else (0.4,) * args.features,
        None if args.no_series_row else (0.1,) * args.features,
    )
    ck = Checkpoint(
        weights=model.state_dict(), model_config=model.config.to_dict(),
        features=tuple(f"f{i}" for i in range(args.features)),
        recipe=SeriesRecipe(args.steps, cutoff=0.2, order=3, time_step_days=7.0,
                            scales=scales, wavelet="cmor1.5-1.0", stats=stats),
        class_codes=list(range(args.classes)),
        class_names=tuple(str(c) for c in range(args.classes)),
    )
    from cropassets.ml.predict import predict

    rng = np.random.default_rng(0)
    raw = rng.normal(0.4, 0.1, (args.n, args.features, args.steps)).astype(np.float32)
    raw[rng.random(raw.shape) < 0.3] = np.nan
    return _best(lambda: predict(ck, raw, batch_size=args.batch, device="cpu"), args.repeats)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", default="4,8")
    ap.add_argument("--n", type=int, default=8192, help="samples timed for inference")
    ap.add_argument("--train-n", type=int, default=4096, help="samples per timed train pass")
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--train-batch", type=int, default=256)
    ap.add_argument("--features", type=int, default=5)
    ap.add_argument("--scales", type=int, default=16)
    ap.add_argument("--steps", type=int, default=28)
    ap.add_argument("--classes", type=int, default=7)
    ap.add_argument("--no-series-row", action="store_true",
                    help="input (F, S, T) instead of the default (F, S + 1, T)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--compile-timeout", type=float, default=60.0)
    ap.add_argument("--force-bf16", action="store_true", help="time CPU bf16 even if slower")
    ap.add_argument("--compiled-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--bf16", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.compiled_child:
        _compiled_child(args)
        return

    bf16 = args.force_bf16 or cpu_prefers_bf16()
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, CPU capability "
        f"{torch.backends.cpu.get_cpu_capability()}, cpu_prefers_bf16={cpu_prefers_bf16()}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    model = _model(args).eval()
    flops = flops_per_sample(model, args.features, _rows(args), args.steps)
    tflops = _train_flops(args)
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"CNN2D widths {args.widths}: {n_params} parameters, input ({args.features}, "
        f"{_rows(args)}, {args.steps}); forward {flops / 1e6:.3f} MFLOP/sample, training "
        f"step {tflops / 1e6:.3f} MFLOP/sample"
    )
    x, y = _data(args)
    nt = min(args.n, args.train_n)
    rows: list[tuple[str, str, float, int, int]] = []  # (kind, name, seconds, n, flops)

    rows.append(("infer", "eager NCHW fp32", _best(_infer_fn(model, x, args.batch, False),
                                                    args.repeats), args.n, flops))
    xcl = x.contiguous(memory_format=torch.channels_last)
    mcl = _model(args).eval().to(memory_format=torch.channels_last)
    rows.append(("infer", "eager channels_last", _best(_infer_fn(mcl, xcl, args.batch, False),
                                                        args.repeats), args.n, flops))
    if bf16:
        rows.append(("infer", "eager channels_last bf16",
                     _best(_infer_fn(mcl, xcl, args.batch, True), args.repeats), args.n, flops))
    rows.append(("train", "eager NCHW fp32",
                 _best(_train_fn(_model(args), x[:nt], y[:nt], args.train_batch, False),
                       max(2, args.repeats // 2)), nt, tflops))
    mtl = _model(args).to(memory_format=torch.channels_last)
    rows.append(("train", "eager channels_last",
                 _best(_train_fn(mtl, xcl[:nt], y[:nt], args.train_batch, False),
                       max(2, args.repeats // 2)), nt, tflops))
    rows.append(("fused", "predict(): smooth + CWT + CNN, fp32", _fused(args, model), args.n,
                 flops))

    if not args.no_compile:
        cmd = [sys.executable, __file__, "--compiled-child"] + [
            a for a in sys.argv[1:] if a != "--no-compile"
        ] + (["--bf16"] if bf16 else [])
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True,
                                  timeout=args.compile_timeout * 4)
            line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if not line:
                print(f"torch.compile: failed ({(proc.stderr or '').strip()[-300:]})")
            else:
                res = json.loads(line[0][7:])
                print(f"torch.compile: first call (compile) {res['compile_s']:.1f}s")
                if res["compile_s"] > args.compile_timeout:
                    print(f"  compile took more than {args.compile_timeout:.0f}s: not counted")
                else:
                    rows.append(("infer", "compiled NCHW", res["infer_compiled"], args.n, flops))
                    rows.append(("infer", "compiled channels_last", res["infer_compiled_cl"],
                                 args.n, flops))
                    if "infer_compiled_bf16" in res:
                        rows.append(("infer", "compiled channels_last bf16",
                                     res["infer_compiled_bf16"], args.n, flops))
                    rows.append(("train", "compiled NCHW", res["train_compiled"], nt, tflops))
        except subprocess.TimeoutExpired:
            print(f"torch.compile: did not finish within {args.compile_timeout * 4:.0f}s")

    if torch.cuda.is_available():
        sync = torch.cuda.synchronize
        xg, yg = _data(args, "cuda")
        mg = _model(args, "cuda").eval()
        rows.append(("infer", f"CUDA {torch.cuda.get_device_name()} fp32",
                     _best(_infer_fn(mg, xg, args.batch, False), args.repeats, sync),
                     args.n, flops))
        rows.append(("infer", "CUDA bf16 autocast",
                     _best(_infer_fn(mg, xg, args.batch, True), args.repeats, sync),
                     args.n, flops))
        rows.append(("train", "CUDA fp32",
                     _best(_train_fn(_model(args, "cuda"), xg[:nt], yg[:nt], args.train_batch,
                                     False), args.repeats, sync), nt, tflops))
        rows.append(("train", "CUDA bf16 autocast",
                     _best(_train_fn(_model(args, "cuda"), xg[:nt], yg[:nt], args.train_batch,
                                     True), args.repeats, sync), nt, tflops))

    base = {kind: next(r for r in rows if r[0] == kind and r[1] == "eager NCHW fp32")
            for kind in ("infer", "train")}
    base["fused"] = base["infer"]
    print(f"\n{'what':<7} {'variant':<44} {'samples/s':>11} {'GFLOP/s':>8} {'x eager':>8}")
    for kind, name, sec, n, fl in rows:
        rate = n / sec
        b = base[kind]
        ratio = rate / (b[3] / b[2])
        print(f"{kind:<7} {name:<44} {rate:>11,.0f} {rate * fl / 1e9:>8.2f} {ratio:>8.2f}")
    print("(fused: ratio is to the eager NCHW CNN forward alone, its ceiling; GFLOP/s counts "
          "CNN FLOPs only)")


if __name__ == "__main__":
    main()
