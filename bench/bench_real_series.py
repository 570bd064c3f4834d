"""Benchmark: the library's classifier on real labelled crop series, against two baselines.

For each real dev set in ``../shared/realdata`` (see its README.md; override the folder with
the environment variable ``CROPASSETS_REALDATA``; the data is read in place, never copied)
and for several sequence lengths ``k`` from about a quarter of the season to the full season,
three models are trained on the first ``k`` steps of the training series and scored on the
test series:

- ``library``: :func:`cropassets.ml.train.train` (CWT scalograms + CNN2D, library defaults)
  then :func:`cropassets.ml.predict.predict`, behind the one adapter
  :func:`fit_predict_library` (adapt it when the library's API changes). Its validation
  split for early stopping is drawn from the training fold only.
- ``rf``: :func:`cropassets.ml.baseline.random_forest_baseline` (the library's own baseline:
  truncate, gap-fill + smooth with the library's preprocessing, flatten, random forest with
  balanced class weights), fitted on ALL groups of the training fold and scored on the test
  fold (passed to it as its "validation" fields; nothing is fitted on them).
- ``tempcnn``: the TempCNN of Pelletier et al. 2019 on the smoothed series themselves
  (``bench/tempcnn.py``), early-stopped on 20 % of the training fold's groups.

Splits: the set's own train/test split where it has one, else 5-fold cross-validation,
StratifiedKFold when every sample is its own group, StratifiedGroupKFold (grouped and
class-balanced) when group ids repeat. Folds are identical for all models. Samples without
a group id use their index as group.

Metrics per (set, k, model): overall accuracy and macro-F1 (mean and standard deviation over
folds, and pooled over all test predictions, from the summed confusion matrices; a test pixel
without a prediction, or of a class absent from its training fold, counts as an error), fit
time in seconds (mean per fold; for ``rf`` fit + prediction), and forward FLOPs per pixel
(``torch.utils.flop_counter.FlopCounterMode``: for ``library`` one whole
:func:`~cropassets.ml.predict.predict` call on one pixel, i.e. CWT matmul + CNN, and the
CNN alone as the library reports it; for ``tempcnn`` the network; the smoothing, 2·F·k² FLOPs,
is counted for neither; for ``rf`` the mean number of node comparisons per pixel, i.e. the
sum over trees of the mean leaf depth, in place of FLOPs).

Time step, days (only reported by the current library, used by later day-based scales):
from the dates where the file has them (France: dekads, ~10.1; East Africa: monthly,
~30.5); UCR Crop: 46 FORMOSAT-2 images over about one year -> 8 days (assumed, dates not
published); TempCNN example: 149 regular steps resampled from the same kind of year-long
FORMOSAT-2 series -> 2 days (assumed, ~300-day season).

Outputs in ``--out`` (default ``build/bench_results/real_series/``; ``build/`` is
gitignored, ``bench/results`` is not): ``results.md`` (the table), ``results.json`` (config,
set descriptions, per-fold and pooled metrics), ``accuracy_vs_season.png``.

``--quick`` (a smoke-level run, ~10-12 min on 2 busy cores): UCR training set subsampled to
2000 (stratified), 3 folds, and BOTH neural models capped at 150 optimiser steps (the
library's default schedule runs 300-1500), so its library numbers understate the library.

    .venv/bin/python bench/bench_real_series.py --quick
    .venv/bin/python bench/bench_real_series.py [--sets a,b] [--lengths 6] [--folds 5]
        [--seed 0] [--models library,rf,tempcnn] [--max-train N] [--tempcnn-steps 3000]
        [--library-steps N] [--rf-trees 200] [--threads 1] [--out DIR]

``--threads`` (default 1) sets torch's threads and the forest's jobs: on a 2-core machine
shared with other training jobs, 2 torch threads made the library's training 4.7x slower
(thread oversubscription), so timings are single-thread unless asked otherwise.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # the sibling bench/tempcnn.py, also when imported from elsewhere
    sys.path.insert(0, _HERE)

from tempcnn import TempCNNConfig, fit_tempcnn  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "realdata"
DEFAULT_OUT = REPO / "build" / "bench_results" / "real_series"
SETS = (
    "ucr_crop_formosat2",
    "tempcnn_formosat2_example",
    "worldcereal_france_lpis2023_dekadal",
    "worldcereal_eastafrica2017_monthly",
)
MODELS = ("library", "rf", "tempcnn")
ASSUMED_STEP_DAYS = {
    "ucr_crop_formosat2": (8.0, "assumed: 46 FORMOSAT-2 images over ~1 year, dates unpublished"),
    "tempcnn_formosat2_example": (
        2.0, "assumed: 149 regular steps resampled from a ~300-day FORMOSAT-2 series"
    ),
}
TEMPCNN_VAL_FRACTION = 0.2
_LIBRARY_KEYS = ("best_step", "steps_run", "best_epoch", "epochs_run", "val_loss",
                 "n_train_pixels", "n_val_pixels", "precision")


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------


@dataclass
class DevSet:
    """One labelled dev set.

    Attributes:
        name: File name without ``.npz``.
        x: (N, F, T) float32 raw series in feature units, NaN = missing.
        y: (N,) int class index 0..C-1.
        groups: (N,) int group id (field / parcel / location; sample index where absent).
        split: (N,) ``'train'``/``'test'`` or ``None`` (cross-validation).
        class_names: (C,) names.
        feature_names: (F,) names.
        time_step_days: Days per step.
        time_step_source: Where ``time_step_days`` comes from.
        has_groups: Whether the file carries group ids.
        dates: (T,) ``datetime64[D]`` step dates where the file has them, else ``None``.
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    split: np.ndarray | None
    class_names: list[str]
    feature_names: list[str]
    time_step_days: float
    time_step_source: str
    has_groups: bool
    dates: np.ndarray | None = None

    @property
    def n_steps(self) -> int:
        """Season length T in steps."""
        return int(self.x.shape[2])


def data_dir() -> Path:
    """The dev-set folder: ``$CROPASSETS_REALDATA`` or ``<repo>/../shared/realdata``."""
    env = os.environ.get("CROPASSETS_REALDATA")
    return Path(env).expanduser().resolve() if env else DEFAULT_DATA


def load_set(name: str, root: Path) -> DevSet:
    """Read ``root/name.npz`` (no pickle) into a :class:`DevSet`."""
    path = root / f"{name}.npz"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found (set CROPASSETS_REALDATA to the folder)")
    with np.load(path, allow_pickle=False) as z:
        d = {k: z[k] for k in z.files}
    x = d["X"].astype(np.float32, copy=False)
    has_groups = "group_ids" in d
    groups = d["group_ids"].astype(np.int64) if has_groups else np.arange(len(x), dtype=np.int64)
    dates = None
    if "dates" in d:
        dates = d["dates"].astype("datetime64[D]")
        step = float(np.median(np.diff(dates).astype(np.float64)))
        source = f"median spacing of the file's dates ({d['dates'][0]}..{d['dates'][-1]})"
    else:
        step, source = ASSUMED_STEP_DAYS.get(name, (7.0, "assumed: weekly (no dates)"))
    return DevSet(
        name=name,
        x=x,
        y=d["y"].astype(np.int64),
        groups=groups,
        split=d["split"].astype(str) if "split" in d else None,
        class_names=[str(c) for c in d["class_names"]],
        feature_names=[str(f) for f in d["feature_names"]],
        time_step_days=step,
        time_step_source=source,
        has_groups=has_groups,
        dates=dates,
    )


def season_lengths(n_total: int, how_many: int, minimum: int = 3) -> list[int]:
    """``how_many`` lengths from ceil(T/4) to T steps (rounded, unique, each >= ``minimum``)."""
    raw = np.linspace(max(minimum, math.ceil(n_total / 4)), n_total, how_many)
    return sorted({max(minimum, int(round(v))) for v in raw})


@dataclass(frozen=True)
class Fold:
    """Sample indices of one train/test fold (into the set's arrays)."""

    train: np.ndarray
    test: np.ndarray


def make_folds(ds: DevSet, n_folds: int, seed: int) -> tuple[list[Fold], str]:
    """The set's own split, else (stratified / stratified-group) k-fold; and its description."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    if ds.split is not None:
        return [Fold(np.flatnonzero(ds.split == "train"), np.flatnonzero(ds.split == "test"))], (
            "own train/test split"
        )
    if len(np.unique(ds.groups)) == len(ds.groups):
        cv = StratifiedKFold(n_folds, shuffle=True, random_state=seed)
        folds = [Fold(a, b) for a, b in cv.split(ds.x, ds.y)]
        return folds, f"StratifiedKFold({n_folds}, shuffle, seed {seed}); one sample per group"
    cv = StratifiedGroupKFold(n_folds, shuffle=True, random_state=seed)
    folds = [Fold(a, b) for a, b in cv.split(ds.x, ds.y, ds.groups)]
    return folds, f"StratifiedGroupKFold({n_folds}, shuffle, seed {seed}) on group_ids"


def subsample_stratified(idx: np.ndarray, y: np.ndarray, n_max: int, seed: int) -> np.ndarray:
    """At most ``n_max`` of the sample indices ``idx``, stratified by class ``y[idx]`` (sorted)."""
    if n_max <= 0 or len(idx) <= n_max:
        return idx
    from sklearn.model_selection import train_test_split

    keep, _ = train_test_split(idx, train_size=n_max, stratify=y[idx], random_state=seed)
    return np.sort(keep)


def val_group_split(
    y: np.ndarray, groups: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Class-stratified split of the groups into train / validation sample masks.

    For each class (a group's class is its first sample's), its groups are shuffled with
    ``default_rng(seed)`` and ``max(1, round(fraction * n))`` go to validation when the class
    has at least 2 groups.

    Returns:
        ``(train_mask (N,), val_mask (N,))`` bool.
    """
    uniq, first = np.unique(groups, return_index=True)
    gcls = y[first]
    rng = np.random.default_rng(seed)
    val: list[np.ndarray] = []
    for c in np.unique(gcls):
        g = rng.permutation(uniq[gcls == c])
        if len(g) >= 2:
            val.append(g[: max(1, round(fraction * len(g)))])
    val_mask = np.isin(groups, np.concatenate(val) if val else np.zeros(0, np.int64))
    return ~val_mask, val_mask


# --------------------------------------------------------------------------------------
# Models: each returns test predictions (or a confusion matrix) and an info dict
# --------------------------------------------------------------------------------------


def fit_predict_library(
    x_train: np.ndarray,
    y_train: np.ndarray,
    groups_train: np.ndarray,
    x_test: np.ndarray,
    n_steps: int,
    time_step_days: float,
    seed: int,
    max_steps: int | None = None,
    dates: np.ndarray | None = None,
    config_overrides: dict[str, Any] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Train the library's default classifier on one training fold and predict the test fold.

    The ONE place that calls the library's training API (adapt it when that API changes).
    The validation split for early stopping comes from the training fold only
    (:func:`cropassets.ml.splits.split_fields`, stratified by class, library default share).

    Args:
        x_train: (N, F, T >= n_steps) raw training series, NaN = missing.
        y_train: (N,) int labels.
        groups_train: (N,) int field/group ids (the split never cuts a group).
        x_test: (M, F, T >= n_steps) raw test series.
        n_steps: Sequence length k (steps).
        time_step_days: Days per step.
        seed: Seed of the validation split and the training.
        max_steps: Cap on the library's optimiser steps (``None``: the library default;
            only ``--quick`` / ``--library-steps`` set it).
        dates: (T,) step dates where the set has them (dekads, months: irregular in days;
            the library resamples them onto its day grid), else ``None``.
        config_overrides: ``TrainConfig`` or ``SeriesRecipe`` fields to change from the
            library default (to measure a lever; ``--train key=value``).

    Returns:
        ``(pred (M,) int labels, -1 = no prediction, info)`` with ``fit_seconds``,
        ``predict_seconds``, ``flops_per_pixel`` (CWT + CNN, counted on one predict call),
        ``flops_cnn`` (the CNN alone, as the library reports it), ``val_accuracy`` and the
        library's training summary (``best_step``, ``steps_run``, ``epochs_run``, ...,
        whichever its metrics carry).
    """
    from torch.utils.flop_counter import FlopCounterMode

    from cropassets.ml.predict import predict
    from cropassets.ml.recipe import SeriesRecipe
    from cropassets.ml.splits import split_fields
    from cropassets.ml.train import train
    from cropassets.ml.train_config import TrainConfig

    split = split_fields(y_train, groups_train, val_fraction=TrainConfig().val_fraction, seed=seed)
    t0 = time.perf_counter()
    # --train KEY=VALUE: fields of the recipe go to it, the others to the TrainConfig
    recipe_keys = {f.name for f in fields(SeriesRecipe)}
    overrides = dict(config_overrides or {})
    recipe_over = {k: overrides.pop(k) for k in list(overrides) if k in recipe_keys}
    recipe = SeriesRecipe(**{"n_steps": n_steps, "time_step_days": time_step_days,
                             **recipe_over})
    config = TrainConfig(**{**overrides, "seed": seed})
    if max_steps is not None:
        config = replace(config, max_steps=int(max_steps))
    ck = train(x_train, y_train, groups_train, recipe, dates=dates, config=config, split=split,
               device="cpu")
    t1 = time.perf_counter()
    idx, _ = predict(ck, x_test, device="cpu", dates=dates)
    t2 = time.perf_counter()
    codes = np.asarray(ck.class_codes)
    pred = np.where(idx >= 0, codes[np.maximum(idx, 0)], -1)
    counter = FlopCounterMode(display=False)
    with counter:
        predict(ck, x_test[:1], device="cpu", dates=dates)
    return pred, {
        "fit_seconds": t1 - t0,
        "predict_seconds": t2 - t1,
        "flops_per_pixel": int(counter.get_total_flops()),
        "flops_cnn": int(ck.metrics.get("flops_per_sample", 0)),
        "val_accuracy": ck.metrics.get("overall_accuracy"),
        **{k: ck.metrics[k] for k in _LIBRARY_KEYS if k in ck.metrics},
    }


def rf_node_comparisons(forest: Any) -> float:
    """Mean node comparisons per pixel: sum over trees of the sample-weighted mean leaf depth."""
    total = 0.0
    for est in forest.estimators_:
        t = est.tree_
        depth = np.zeros(t.node_count, dtype=np.int64)
        for node in range(t.node_count):  # children always have larger ids than parents
            for child in (t.children_left[node], t.children_right[node]):
                if child >= 0:
                    depth[child] = depth[node] + 1
        leaves = t.children_left < 0
        w = t.n_node_samples[leaves].astype(np.float64)
        total += float((depth[leaves] * w).sum() / w.sum())
    return total


def fit_score_rf(
    x_train: np.ndarray,
    y_train: np.ndarray,
    groups_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    n_steps: int,
    seed: int,
    n_estimators: int,
    n_jobs: int = 2,
) -> tuple[np.ndarray, dict[str, Any]]:
    """The library's random-forest baseline, fitted on the whole training fold.

    :func:`cropassets.ml.baseline.random_forest_baseline` fits on its split's ``train`` fields
    and scores its ``val`` fields; here ``train`` = every training-fold group and ``val`` =
    the test fold (offset group ids), so its validation metrics are the test-fold metrics.
    Only training pixels are fitted on (forest and fill curve).

    Args:
        x_train, y_train, groups_train: Training fold, (N, F, T), (N,), (N,).
        x_test, y_test: Test fold, (M, F, T), (M,).
        n_steps: Sequence length k (steps).
        seed: Forest seed.
        n_estimators: Trees.
        n_jobs: Forest threads.

    Returns:
        ``(confusion (C', C') over the labels in np.unique(concat(y_train, y_test)), info)``;
        test pixels without any observation are not in the confusion matrix.
    """
    from cropassets.ml.baseline import random_forest_baseline
    from cropassets.ml.splits import FieldSplit

    g_test = np.arange(len(x_test), dtype=np.int64) + int(groups_train.max()) + 1
    series = np.concatenate([x_train, x_test])
    labels = np.concatenate([y_train, y_test])
    fids = np.concatenate([groups_train, g_test])
    split = FieldSplit(
        train=np.unique(groups_train), val=np.unique(g_test), test=np.zeros(0, np.int64)
    )
    res = random_forest_baseline(
        series, labels, fids, n_steps, split=split, seed=seed, n_estimators=n_estimators,
        n_jobs=n_jobs,
    )
    return np.asarray(res.metrics["confusion"], dtype=np.int64), {
        "fit_seconds": res.seconds,
        "predict_seconds": None,
        "flops_per_pixel": None,
        "node_comparisons_per_pixel": rf_node_comparisons(res.model),
        "n_estimators": n_estimators,
    }


def fit_predict_tempcnn(
    x_train: np.ndarray,
    y_train: np.ndarray,
    groups_train: np.ndarray,
    x_test: np.ndarray,
    n_steps: int,
    seed: int,
    config: TempCNNConfig,
) -> tuple[np.ndarray, dict[str, Any]]:
    """TempCNN on the training fold (20 % of its groups for early stopping); test predictions.

    Returns:
        ``(pred (M,) int labels, info)`` with ``fit_seconds``, ``predict_seconds``,
        ``flops_per_pixel`` and the TempCNN training summary.
    """
    tr, va = val_group_split(y_train, groups_train, TEMPCNN_VAL_FRACTION, seed)
    fit = fit_tempcnn(x_train[tr], y_train[tr], x_train[va], y_train[va], n_steps, seed=seed,
                      config=config)
    t0 = time.perf_counter()
    pred = fit.predict(x_test)
    info = dict(fit.info)
    info["fit_seconds"] = info.pop("train_seconds")
    info["predict_seconds"] = time.perf_counter() - t0
    return pred.astype(np.int64), info


# --------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------


def confusion_from_pred(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(C, C) counts, rows true, columns predicted; predictions < 0 (no prediction) left out."""
    ok = y_pred >= 0
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (y_true[ok], y_pred[ok]), 1)
    return cm


def scores(cm: np.ndarray, n_true: np.ndarray) -> dict[str, float]:
    """Overall accuracy and macro-F1 from a confusion matrix and the true counts per class.

    ``n_true`` (C,) counts every test pixel of a class, including those missing from ``cm``
    (no prediction), which thus count as errors. Macro-F1 averages the classes present in
    truth or prediction (as :func:`cropassets.ml.metrics.classification_metrics`).
    """
    tp = np.diag(cm).astype(np.float64)
    denom = n_true.astype(np.float64) + cm.sum(axis=0)
    f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
    n = float(n_true.sum())
    return {
        "overall_accuracy": float(tp.sum() / n) if n else math.nan,
        "macro_f1": float(f1[denom > 0].mean()) if (denom > 0).any() else math.nan,
    }


# --------------------------------------------------------------------------------------
# Run
# --------------------------------------------------------------------------------------


@dataclass
class Cell:
    """Results of one (set, length, model), accumulated over folds."""

    set_name: str
    n_steps: int
    fraction: float
    model: str
    n_classes: int
    folds: list[dict[str, Any]] = field(default_factory=list)
    confusion: np.ndarray | None = None
    n_true: np.ndarray | None = None

    def add(self, cm: np.ndarray, n_true: np.ndarray, info: dict[str, Any]) -> dict[str, float]:
        """Record one fold; returns its scores."""
        s = scores(cm, n_true)
        self.folds.append({**s, **info})
        self.confusion = cm if self.confusion is None else self.confusion + cm
        self.n_true = n_true if self.n_true is None else self.n_true + n_true
        return s

    def summary(self) -> dict[str, Any]:
        """Fold means/SDs, pooled scores, mean fit time and cost per pixel."""
        oa = np.array([f["overall_accuracy"] for f in self.folds])
        f1 = np.array([f["macro_f1"] for f in self.folds])
        pooled = scores(self.confusion, self.n_true)  # type: ignore[arg-type]
        flops = [f.get("flops_per_pixel") for f in self.folds]
        comps = [f.get("node_comparisons_per_pixel") for f in self.folds]
        return {
            "set": self.set_name,
            "n_steps": self.n_steps,
            "fraction": self.fraction,
            "model": self.model,
            "n_folds": len(self.folds),
            "oa_mean": float(oa.mean()),
            "oa_sd": float(oa.std()),
            "f1_mean": float(f1.mean()),
            "f1_sd": float(f1.std()),
            "oa_pooled": pooled["overall_accuracy"],
            "f1_pooled": pooled["macro_f1"],
            "fit_seconds": float(np.mean([f["fit_seconds"] for f in self.folds])),
            "flops_per_pixel": None if None in flops else float(np.mean(flops)),
            "node_comparisons_per_pixel": None if None in comps else float(np.mean(comps)),
        }


def run_set(
    ds: DevSet,
    args: argparse.Namespace,
    tcfg: TempCNNConfig,
    say: Callable[[str], None],
) -> tuple[list[Cell], dict[str, Any]]:
    """Every (length, fold, model) of one set; returns its cells and a description."""
    folds, scheme = make_folds(ds, args.folds, args.seed)
    lengths = season_lengths(ds.n_steps, args.lengths)
    n_cls = len(ds.class_names)
    desc = {
        "name": ds.name,
        "shape": list(ds.x.shape),
        "n_classes": n_cls,
        "class_names": ds.class_names,
        "feature_names": ds.feature_names,
        "time_step_days": ds.time_step_days,
        "time_step_source": ds.time_step_source,
        "library_given_dates": ds.dates is not None and not args.no_dates,
        "nan_fraction": float(np.isnan(ds.x).mean()),
        "has_group_ids": ds.has_groups,
        "scheme": scheme,
        "lengths": lengths,
        "folds": [],
    }
    say(f"\n== {ds.name}: X {ds.x.shape} (N, F, T), {n_cls} classes, {scheme}")
    say(f"   features: {', '.join(ds.feature_names)}")
    say(f"   time step: {ds.time_step_days:.2f} days ({ds.time_step_source}); lengths {lengths}")
    prepared: list[Fold] = []
    for i, f in enumerate(folds):
        tr = subsample_stratified(f.train, ds.y, args.max_train, args.seed)
        prepared.append(Fold(tr, f.test))
        desc["folds"].append({"n_train": len(tr), "n_train_available": len(f.train),
                              "n_test": len(f.test)})
        sub = f" (subsampled from {len(f.train)})" if len(tr) < len(f.train) else ""
        say(f"   fold {i}: {len(tr)} train{sub} / {len(f.test)} test samples")
    cells = []
    for k in lengths:
        row = {m: Cell(ds.name, k, k / ds.n_steps, m, n_cls) for m in args.models}
        for i, f in enumerate(prepared):
            xtr, ytr, gtr = ds.x[f.train], ds.y[f.train], ds.groups[f.train]
            xte, yte = ds.x[f.test], ds.y[f.test]
            n_true = np.bincount(yte, minlength=n_cls)
            for m in args.models:
                t0 = time.perf_counter()
                if m == "library":
                    pred, info = fit_predict_library(
                        xtr, ytr, gtr, xte, k, ds.time_step_days, args.seed, args.library_steps,
                        None if args.no_dates else ds.dates, args.train_overrides,
                    )
                    cm = confusion_from_pred(yte, pred, n_cls)
                elif m == "rf":
                    cm_sub, info = fit_score_rf(
                        xtr, ytr, gtr, xte, yte, k, args.seed, args.rf_trees, args.threads
                    )
                    codes = np.unique(np.concatenate([ytr, yte]))
                    cm = np.zeros((n_cls, n_cls), dtype=np.int64)
                    cm[np.ix_(codes, codes)] = cm_sub
                else:
                    pred, info = fit_predict_tempcnn(xtr, ytr, gtr, xte, k, args.seed, tcfg)
                    cm = confusion_from_pred(yte, pred, n_cls)
                s = row[m].add(cm, n_true, info)
                say(
                    f"   k={k:3d} fold {i} {m:8s} OA {s['overall_accuracy']:.3f} "
                    f"F1 {s['macro_f1']:.3f}  fit {info['fit_seconds']:6.1f}s "
                    f"(wall {time.perf_counter() - t0:.1f}s)"
                )
        cells.extend(row.values())
    return cells, desc


# --------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------


def _cost(r: dict[str, Any]) -> str:
    if r["flops_per_pixel"] is not None:
        return f"{r['flops_per_pixel'] / 1e6:.3f} MFLOP"
    if r["node_comparisons_per_pixel"] is not None:
        return f"{r['node_comparisons_per_pixel']:.0f} cmp"
    return "-"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The per-(set, length, model) table as markdown."""
    head = (
        "| set | k | frac | model | OA mean ± sd | OA pooled | macro-F1 mean ± sd | "
        "macro-F1 pooled | fit s/fold | cost/pixel |\n"
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|\n"
    )
    lines = [
        f"| {r['set']} | {r['n_steps']} | {r['fraction']:.2f} | {r['model']} | "
        f"{r['oa_mean']:.3f} ± {r['oa_sd']:.3f} | {r['oa_pooled']:.3f} | "
        f"{r['f1_mean']:.3f} ± {r['f1_sd']:.3f} | {r['f1_pooled']:.3f} | "
        f"{r['fit_seconds']:.1f} | {_cost(r)} |"
        for r in rows
    ]
    return head + "\n".join(lines) + "\n"


def gap_summary(rows: list[dict[str, Any]], a: str, b: str) -> dict[str, Any] | None:
    """Model ``a`` minus model ``b`` in points (fold-mean OA and macro-F1) per (set, k)."""
    by = {(r["set"], r["n_steps"], r["model"]): r for r in rows}
    gaps = []
    for (s, k, m), r in by.items():
        if m == a and (s, k, b) in by:
            o = by[(s, k, b)]
            gaps.append({
                "set": s, "n_steps": k, "fraction": r["fraction"],
                "oa_points": 100 * (r["oa_mean"] - o["oa_mean"]),
                "f1_points": 100 * (r["f1_mean"] - o["f1_mean"]),
            })
    if not gaps:
        return None
    worst = min(gaps, key=lambda g: g["oa_points"])
    return {
        "models": f"{a} - {b}",
        "mean_oa_points": float(np.mean([g["oa_points"] for g in gaps])),
        "mean_f1_points": float(np.mean([g["f1_points"] for g in gaps])),
        "worst": worst,
        "per_cell": gaps,
    }


def summary_text(gaps: list[dict[str, Any]]) -> str:
    """Plain-text lines of the gap summaries."""
    out = []
    for g in gaps:
        w = g["worst"]
        out.append(
            f"{g['models']}: mean over sets and lengths {g['mean_oa_points']:+.1f} OA points, "
            f"{g['mean_f1_points']:+.1f} macro-F1 points; worst: {w['set']} k={w['n_steps']} "
            f"({w['fraction']:.2f} of the season) {w['oa_points']:+.1f} OA points "
            f"({w['f1_points']:+.1f} macro-F1)"
        )
    return "\n".join(out)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Accuracy (fold mean ± sd) against the fraction of the season, one panel per set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = list(dict.fromkeys(r["set"] for r in rows))
    fig, axes = plt.subplots(1, len(sets), figsize=(4.2 * len(sets), 3.6), squeeze=False)
    for ax, s in zip(axes[0], sets, strict=True):
        for m in dict.fromkeys(r["model"] for r in rows):
            rs = sorted((r for r in rows if r["set"] == s and r["model"] == m),
                        key=lambda r: r["n_steps"])
            if not rs:
                continue
            fx = np.array([r["fraction"] for r in rs])
            oa = np.array([r["oa_mean"] for r in rs])
            sd = np.array([r["oa_sd"] for r in rs])
            ax.plot(fx, oa, marker="o", label=m)
            ax.fill_between(fx, oa - sd, oa + sd, alpha=0.15)
        ax.set_title(s, fontsize=9)
        ax.set_xlabel("fraction of the season (k / T)")
        ax.set_ylabel("overall accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def library_source() -> dict[str, Any]:
    """Git HEAD, uncommitted files under cropassets/ and a digest of cropassets/ml/*.py.

    The library may change between runs (or during one); this says which code was measured.
    """
    import hashlib
    import subprocess

    def git(*a: str) -> str:
        try:
            return subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True,
                                  timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    digest = hashlib.sha256()
    for f in sorted((REPO / "cropassets" / "ml").glob("*.py")):
        digest.update(f.name.encode() + b"\0" + f.read_bytes())
    return {
        "head": git("rev-parse", "HEAD"),
        "dirty": git("status", "--porcelain", "--", "cropassets").splitlines(),
        "ml_sha256": digest.hexdigest(),
    }


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (``--quick`` fills in smaller defaults)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", default=",".join(SETS), help="comma-separated set names")
    p.add_argument("--lengths", type=int, default=6, help="how many sequence lengths per set")
    p.add_argument("--folds", type=int, default=None, help="CV folds (default 5, quick 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--models", default=",".join(MODELS), help="subset of library,rf,tempcnn")
    p.add_argument("--max-train", type=int, default=None,
                   help="stratified cap on training samples per fold (default none, quick 2000)")
    p.add_argument("--tempcnn-steps", type=int, default=None,
                   help="TempCNN optimiser-step budget (default 3000, quick 150)")
    p.add_argument("--library-steps", type=int, default=None,
                   help="cap on the library's optimiser steps (default: the library's own; "
                        "quick 150)")
    p.add_argument("--rf-trees", type=int, default=200,
                   help="trees of the RF baseline (default: the library baseline's 200)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads and RF jobs (default 1: on 2 shared cores, 2 threads "
                        "ran the library's training 4.7x slower)")
    p.add_argument("--train", action="append", default=[], metavar="KEY=VALUE",
                   help="a TrainConfig or SeriesRecipe field for the library (a Python "
                        "literal), e.g. refit=True, 'widths=(16, 32)' or series_row=False; "
                        "repeatable")
    p.add_argument("--no-dates", action="store_true",
                   help="give the library no step dates (regular steps of the median spacing)")
    p.add_argument("--quick", action="store_true",
                   help="UCR train subsampled to 2000, 3 folds, library and TempCNN capped at "
                        "150 optimiser steps")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output dir ({DEFAULT_OUT})")
    args = p.parse_args(argv)
    args.train_overrides = {}
    for item in args.train:
        key, _, value = item.partition("=")
        args.train_overrides[key.strip()] = ast.literal_eval(value.strip())
    args.sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    bad = [m for m in args.models if m not in MODELS]
    if bad:
        p.error(f"unknown models {bad}; choose from {list(MODELS)}")
    if args.folds is None:
        args.folds = 3 if args.quick else 5
    if args.max_train is None:
        args.max_train = 2000 if args.quick else 0
    if args.tempcnn_steps is None:
        args.tempcnn_steps = 150 if args.quick else 3000
    if args.library_steps is None and args.quick:
        args.library_steps = 150
    return args


def tempcnn_config(max_steps: int) -> TempCNNConfig:
    """TempCNN settings for a step budget: patience a fifth of it (600 steps of 3000).

    On the small sets the best validation loss came after 25-400 steps (1000-step runs).
    """
    return TempCNNConfig(max_steps=max_steps, patience_steps=max(30, max_steps // 5))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; write results.md, results.json and the plot to ``--out``."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    root = data_dir()
    tcfg = tempcnn_config(args.tempcnn_steps)
    args.out.mkdir(parents=True, exist_ok=True)
    source = library_source()  # at start: the modules are imported from this state
    t_start = time.perf_counter()

    def say(msg: str) -> None:
        print(msg, flush=True)

    say(f"data: {root}; out: {args.out}; models {args.models}; torch threads "
        f"{torch.get_num_threads()}; TempCNN {tcfg}")
    cells: list[Cell] = []
    descs = []
    set_seconds = {}
    for name in args.sets:
        t0 = time.perf_counter()
        c, d = run_set(load_set(name, root), args, tcfg, say)
        set_seconds[name] = time.perf_counter() - t0
        d["wall_seconds"] = set_seconds[name]
        say(f"   {name}: {set_seconds[name]:.0f} s")
        cells.extend(c)
        descs.append(d)
    rows = [c.summary() for c in cells]
    gaps = [g for g in (gap_summary(rows, "library", "rf"),
                        gap_summary(rows, "library", "tempcnn"),
                        gap_summary(rows, "tempcnn", "rf")) if g is not None]
    wall = time.perf_counter() - t_start
    table = markdown_table(rows)
    summ = summary_text(gaps)
    md = (
        f"# Real-series benchmark ({'quick' if args.quick else 'full'})\n\n"
        f"`{' '.join(sys.argv)}`; {wall:.0f} s wall; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}; "
        f"library steps {args.library_steps or 'library default'}, TempCNN steps "
        f"{args.tempcnn_steps}, max train {args.max_train or 'all'}; library at "
        f"{source['head'][:10]}{' + uncommitted changes' if source['dirty'] else ''} "
        f"(cropassets/ml sha256 {source['ml_sha256'][:12]})\n\n"
        + "".join(f"- {d['name']}: {d['scheme']}; time step {d['time_step_days']:.2f} d "
                  f"({d['time_step_source']}); features {', '.join(d['feature_names'])}\n"
                  for d in descs)
        + "\n" + table + "\n## Summary (fold-mean scores, points)\n\n"
        + "\n".join(f"- {line}" for line in summ.splitlines()) + "\n"
    )
    (args.out / "results.md").write_text(md)
    payload = {
        "argv": sys.argv,
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "tempcnn_config": tcfg.__dict__,
        "data_dir": str(root),
        "library_source": source,
        "versions": {"torch": torch.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "wall_seconds": wall,
        "sets": descs,
        "results": rows,
        "folds": [{"set": c.set_name, "n_steps": c.n_steps, "model": c.model,
                   "folds": c.folds, "confusion_pooled": c.confusion} for c in cells],
        "gaps": gaps,
    }
    (args.out / "results.json").write_text(json.dumps(payload, indent=1, default=_json_default))
    plot(rows, args.out / "accuracy_vs_season.png")
    say("\n" + table)
    say(summ)
    say(f"\ntotal {wall:.0f} s; per set: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in set_seconds.items()))
    say(f"wrote {args.out / 'results.md'}, {args.out / 'results.json'}, "
        f"{args.out / 'accuracy_vs_season.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
