"""Incremental analysis: accuracy against sequence length, CNN beside a baseline, and the knee.

For every length ``k`` a CNN2D is trained on the first ``k`` steps of the reference series
(:func:`cropassets.ml.train.train`) and a random forest on the same smoothed prefix
(:func:`cropassets.ml.baseline.random_forest_baseline`), both on one field split computed
once. Each is scored on the validation fields of the reference data and, when a ``test``
season is given (a different year, DESIGN rule 4), on its labelled pixels. The knee
(:func:`cropassets.ml.knee.find_knee`) is taken on the CNN's validation accuracy; when the
baseline is as good or better, the report says so in plain words.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cropassets.core.storage import write_bytes_atomic
from cropassets.ml.baseline import random_forest_baseline
from cropassets.ml.checkpoint import Checkpoint, asdict_safe, library_versions
from cropassets.ml.cwt import DEFAULT_WAVELET
from cropassets.ml.knee import KneeResult, find_knee
from cropassets.ml.predict import evaluate
from cropassets.ml.recipe import DEFAULT_CUTOFF, DEFAULT_ORDER, MIN_STEPS, SeriesRecipe
from cropassets.ml.splits import split_fields
from cropassets.ml.train import resolve_classes, train
from cropassets.ml.train_config import TrainConfig

__all__ = ["IncrementalReport", "LengthResult", "incremental_analysis", "plot"]

_KEEP = ("overall_accuracy", "macro_f1", "per_class_f1", "confusion", "n", "n_nodata")


def _slim(m: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if m is None else {k: m[k] for k in _KEEP if k in m}


@dataclass
class LengthResult:
    """Scores at one sequence length.

    Attributes:
        n_steps: Sequence length k, steps.
        cnn: CNN metrics on the reference validation fields.
        cnn_test: CNN metrics on the test season (or ``None``).
        rf: Baseline metrics on the same validation fields (or ``None`` if skipped).
        rf_test: Baseline metrics on the test season (or ``None``).
        flops_per_sample: CNN forward FLOPs per pixel.
        best_step: Optimiser step whose weights were kept.
        cnn_seconds: CNN training wall time.
        rf_seconds: Baseline wall time.
    """

    n_steps: int
    cnn: dict[str, Any]
    cnn_test: dict[str, Any] | None
    rf: dict[str, Any] | None
    rf_test: dict[str, Any] | None
    flops_per_sample: int
    best_step: int
    cnn_seconds: float
    rf_seconds: float


@dataclass
class IncrementalReport:
    """Accuracy against sequence length for the CNN and the baseline, and the knee.

    Attributes:
        results: One :class:`LengthResult` per length, ascending.
        knee: Knee of the CNN's validation ``knee_metric``.
        knee_baseline: Knee of the baseline's validation curve (``None`` without it).
        statements: Plain-language findings (who wins where, the knee).
        time_step_days: Days per step.
        features: Feature names.
        class_names: Class names.
        class_codes: Class labels.
        split: Field ids of the train/val sets.
        knee_metric: Metric the knee was taken on.
        seed: Seed used.
        versions: Library versions.
        checkpoints: Trained checkpoints by length (kept only on request; not serialised).
    """

    results: list[LengthResult]
    knee: KneeResult
    knee_baseline: KneeResult | None
    statements: list[str]
    time_step_days: float
    features: tuple[str, ...]
    class_names: tuple[str, ...]
    class_codes: list[Any]
    split: dict[str, list[int]]
    knee_metric: str
    seed: int
    versions: dict[str, str]
    checkpoints: dict[int, Checkpoint] = field(default_factory=dict, repr=False)

    @property
    def lengths(self) -> list[int]:
        """Sequence lengths analysed, steps."""
        return [r.n_steps for r in self.results]

    def curve(self, model: str = "cnn", metric: str = "overall_accuracy") -> list[float]:
        """One metric per length for ``model`` in {cnn, cnn_test, rf, rf_test} (NaN if absent)."""
        out = []
        for r in self.results:
            m = getattr(r, model)
            out.append(float("nan") if m is None else float(m[metric]))
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain-type form (without checkpoints)."""
        return asdict_safe({
            "time_step_days": self.time_step_days,
            "features": self.features,
            "class_names": self.class_names,
            "class_codes": self.class_codes,
            "knee_metric": self.knee_metric,
            "seed": self.seed,
            "versions": self.versions,
            "statements": self.statements,
            "knee": self.knee.to_dict(),
            "knee_baseline": None if self.knee_baseline is None else self.knee_baseline.to_dict(),
            "results": [r.__dict__ for r in self.results],
            "split": self.split,
        })

    def to_json(self, path: str | Path | None = None, indent: int | None = 1) -> str:
        """JSON text of :meth:`to_dict`; also written (atomically) to ``path`` if given."""
        text = json.dumps(self.to_dict(), indent=indent, allow_nan=True)
        if path is not None:
            write_bytes_atomic(Path(path), text.encode())
        return text


def _statements(
    results: list[LengthResult], knee: KneeResult, metric: str, has_rf: bool, days: float
) -> list[str]:
    out = [
        f"Minimum sequence length: {knee.length_steps} steps ({knee.length_weeks:.1f} weeks, "
        f"{knee.length_months:.1f} months at {days:g} days per step), CNN validation "
        f"{metric} {knee.accuracy:.3f} against {knee.full_accuracy:.3f} at the longest length "
        f"({knee.rule}: {knee.explanation})."
    ]
    if not has_rf:
        return out
    for which, label in (("", "validation fields"), ("_test", "the test season")):
        cnn = [getattr(r, "cnn" + which) for r in results]
        rf = [getattr(r, "rf" + which) for r in results]
        if any(m is None for m in cnn + rf):
            continue
        diff = [b[metric] - c[metric] for c, b in zip(cnn, rf, strict=True)]
        wins = [r.n_steps for r, d in zip(results, diff, strict=True) if d > 0]
        last, c_last, b_last = results[-1].n_steps, cnn[-1][metric], rf[-1][metric]
        if wins:
            out.append(
                f"The random-forest baseline beats the CNN on {label} at "
                f"{len(wins)} of {len(results)} lengths (steps {wins}; by up to "
                f"{max(diff):.3f}, mean difference RF - CNN over all lengths "
                f"{float(np.mean(diff)):+.3f})."
            )
        else:
            out.append(f"The CNN is at least as good as the baseline on {label} at every length.")
        verdict = "beats" if b_last > c_last else "does not beat"
        out.append(
            f"At {last} steps on {label} the baseline {verdict} the CNN: {metric} "
            f"RF {b_last:.3f} vs CNN {c_last:.3f}."
        )
    return out


def incremental_analysis(
    series: np.ndarray,
    labels: np.ndarray,
    field_ids: np.ndarray,
    lengths: Sequence[int] | None = None,
    *,
    test: tuple[np.ndarray, np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray] | None = None,
    class_names: Sequence[str] | dict[Any, str] | None = None,
    features: Sequence[str] | None = None,
    dates: Sequence[Any] | np.ndarray | None = None,
    test_dates: Sequence[Any] | np.ndarray | None = None,
    time_step_days: float | None = None,
    cutoff: float = DEFAULT_CUTOFF,
    order: int = DEFAULT_ORDER,
    wavelet: str = DEFAULT_WAVELET,
    presmoothed: bool = False,
    config: TrainConfig | None = None,
    baseline: bool = True,
    rf_estimators: int = 200,
    knee_metric: str = "overall_accuracy",
    tolerance: float = 0.02,
    device: torch.device | str | None = None,
    keep_checkpoints: bool = False,
    checkpoint_dir: str | Path | None = None,
    log: Callable[[str], None] | None = None,
) -> IncrementalReport:
    """Train one CNN (and one baseline) per sequence length and find the knee.

    Every length k trains with the recipe ``SeriesRecipe(k, cutoff=cutoff, order=order,
    wavelet=wavelet, presmoothed=presmoothed, time_step_days=time_step_days)`` (default
    scales of each length) and the one ``config``.

    Args:
        series: (N, F, T) raw reference series, NaN = no observation.
        labels: (N,) class labels.
        field_ids: (N,) field ids.
        lengths: Sequence lengths in steps (default every length from 3 to T).
        test: ``(series, labels[, field_ids])`` of another season (held-back labels).
        class_names: As for :func:`~cropassets.ml.train.train`.
        features: Feature names.
        dates: (T,) step dates of ``series`` (see :func:`~cropassets.ml.train.train`).
        test_dates: (T,) step dates of the test season (default ``dates``).
        time_step_days: Days per grid step (default: the median spacing of ``dates``,
            else 7).
        cutoff: Butterworth cutoff, cycles per step.
        order: Butterworth order.
        wavelet: pywt wavelet.
        presmoothed: Series already smoothed on each prefix (rarely true for a whole
            analysis: one array cannot be smoothed on every prefix at once; see
            :func:`cropassets.ml.prepare.smoothed_prefix`).
        config: CNN training settings; ``config.seed`` also seeds the split and the
            forests.
        baseline: Also fit the random-forest baseline.
        rf_estimators: Trees of the baseline.
        knee_metric: ``"overall_accuracy"`` or ``"macro_f1"``.
        tolerance: Knee tolerance (see :func:`~cropassets.ml.knee.find_knee`).
        device: Torch device.
        keep_checkpoints: Keep every checkpoint in ``report.checkpoints``.
        checkpoint_dir: Save every checkpoint there as ``cnn2d_k{k:03d}.pt``.
        log: Progress callback.

    Returns:
        An :class:`IncrementalReport`.
    """
    cfg = config or TrainConfig()
    seed = cfg.seed
    say = log or (lambda _msg: None)
    x = np.asarray(series)
    t_total = x.shape[2]
    ks = sorted({int(k) for k in (range(MIN_STEPS, t_total + 1) if lengths is None else lengths)})
    if not ks or ks[0] < MIN_STEPS or ks[-1] > t_total:
        raise ValueError(f"lengths must lie in {MIN_STEPS}..{t_total}, got {ks}")
    _, codes, names = resolve_classes(np.asarray(labels), class_names)
    split = split_fields(labels, field_ids, val_fraction=cfg.val_fraction, seed=seed,
                         class_names=names)
    results: list[LengthResult] = []
    kept: dict[int, Checkpoint] = {}
    feats: tuple[str, ...] = ()
    for k in ks:
        t0 = time.perf_counter()
        recipe = SeriesRecipe(k, cutoff=cutoff, order=order, wavelet=wavelet,
                              presmoothed=presmoothed, time_step_days=time_step_days)
        ck = train(x, labels, field_ids, recipe, class_names=class_names, features=features,
                   dates=dates, config=cfg, split=split, device=device, log=log)
        feats = ck.features
        cnn_s = time.perf_counter() - t0
        cnn_test = None
        if test is not None:
            cnn_test = evaluate(ck, test[0], test[1], device=device,
                                dates=dates if test_dates is None else test_dates)
        rf = rf_test = None
        rf_s = 0.0
        if baseline:
            b = random_forest_baseline(
                x, labels, field_ids, k, split=split, class_names=class_names,
                cutoff=cutoff, order=order, seed=seed, n_estimators=rf_estimators,
                max_pixels_per_field=cfg.max_pixels_per_field, presmoothed=presmoothed,
                test=None if test is None else (test[0], test[1]),
            )
            rf, rf_test, rf_s = b.metrics, b.test_metrics, b.seconds
        res = LengthResult(
            n_steps=k,
            cnn=_slim(ck.metrics) or {},
            cnn_test=_slim(cnn_test),
            rf=_slim(rf),
            rf_test=_slim(rf_test),
            flops_per_sample=int(ck.metrics["flops_per_sample"]),
            best_step=int(ck.metrics["best_step"]),
            cnn_seconds=cnn_s,
            rf_seconds=rf_s,
        )
        results.append(res)
        msg = f"k={k}: CNN val {res.cnn['overall_accuracy']:.3f}"
        if rf:
            msg += f", RF val {rf['overall_accuracy']:.3f}"
        if cnn_test:
            msg += f", CNN test {cnn_test['overall_accuracy']:.3f}"
        if rf_test:
            msg += f", RF test {rf_test['overall_accuracy']:.3f}"
        say(msg + f" ({cnn_s:.1f}s + {rf_s:.1f}s)")
        if keep_checkpoints:
            kept[k] = ck
        if checkpoint_dir is not None:
            ck.save(Path(checkpoint_dir) / f"cnn2d_k{k:03d}.pt")
    time_step_days = ck.time_step_days  # the grid step training used (dates' when not given)
    knee = find_knee(ks, [r.cnn[knee_metric] for r in results], time_step_days=time_step_days,
                     tolerance=tolerance)
    knee_rf = None
    if baseline:
        knee_rf = find_knee(ks, [r.rf[knee_metric] for r in results if r.rf],
                            time_step_days=time_step_days, tolerance=tolerance)
    report = IncrementalReport(
        results=results,
        knee=knee,
        knee_baseline=knee_rf,
        statements=_statements(results, knee, knee_metric, baseline, time_step_days),
        time_step_days=float(time_step_days),
        features=feats,
        class_names=names,
        class_codes=codes,
        split={k: v for k, v in split.to_dict().items() if v},
        knee_metric=knee_metric,
        seed=int(seed),
        versions=library_versions(),
        checkpoints=kept,
    )
    for s in report.statements:
        say(s)
    return report


def plot(report: IncrementalReport, out_png: str | Path, *, dpi: int = 90) -> Path:
    """Small PNG of accuracy against length for the CNN and the baseline, knee marked.

    Validation curves are solid, test-season curves dashed. Written atomically with
    matplotlib's Agg backend (no global pyplot state).

    Returns:
        The path written.
    """
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    metric = report.knee_metric
    ks = report.lengths
    fig = Figure(figsize=(6.0, 3.6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    styles = {
        "cnn": ("CNN2D, validation fields", "C0", "-"),
        "rf": ("random forest, validation fields", "C1", "-"),
        "cnn_test": ("CNN2D, test season", "C0", "--"),
        "rf_test": ("random forest, test season", "C1", "--"),
    }
    for key, (label, colour, ls) in styles.items():
        y = report.curve(key, metric)
        if not np.all(np.isnan(y)):
            ax.plot(ks, y, ls, color=colour, marker="o", ms=3, lw=1.2, label=label)
    kn = report.knee
    ax.axvline(kn.length_steps, color="k", lw=0.8, ls=":")
    ax.annotate(
        f"knee {kn.length_steps} steps\n({kn.length_weeks:.1f} wk, {kn.length_months:.1f} mo)",
        xy=(kn.length_steps, kn.accuracy), xytext=(5, -30), textcoords="offset points",
        fontsize=7,
    )
    ax.set_xlabel(f"sequence length (steps of {report.time_step_days:g} days)")
    ax.set_ylabel(metric.replace("_", " "))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    dest = Path(out_png)
    write_bytes_atomic(dest, buf.getvalue())
    return dest
