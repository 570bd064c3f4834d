"""A random-forest baseline on the same smoothed series and the same field splits.

What the scalograms and the CNN add is only visible beside a simple model trained on the
same information: the first ``k`` steps of every feature, truncated first and gap-filled +
smoothed exactly as for the CNN (:func:`cropassets.ml.prepare.smoothed_prefix`, with the
fill curve fitted on the training fields), flattened to F·k values per pixel, classified
by scikit-learn's ``RandomForestClassifier`` (fixed seed, ``n_jobs=2``, class weights
balanced like the CNN's loss).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.ensemble import RandomForestClassifier

from cropassets.ml.metrics import classification_metrics
from cropassets.ml.prepare import DEFAULT_CUTOFF, DEFAULT_ORDER, smoothed_prefix, valid_pixels
from cropassets.ml.splits import FieldSplit, split_fields
from cropassets.ml.train import cap_pixels_per_field, resolve_classes

__all__ = ["BaselineResult", "random_forest_baseline"]


@dataclass
class BaselineResult:
    """Metrics of the baseline for one sequence length.

    Attributes:
        n_steps: Sequence length k.
        metrics: Validation-field metrics (same keys as the CNN checkpoint's).
        test_metrics: Metrics on the ``test`` set, or ``None``.
        seconds: Fit + predict wall time.
        model: The fitted forest (not serialised by reports).
    """

    n_steps: int
    metrics: dict[str, Any]
    test_metrics: dict[str, Any] | None = None
    seconds: float = 0.0
    model: RandomForestClassifier | None = field(default=None, repr=False)


def random_forest_baseline(
    series: np.ndarray,
    labels: np.ndarray,
    field_ids: np.ndarray,
    n_steps: int,
    *,
    split: FieldSplit | None = None,
    class_names: Sequence[str] | dict[Any, str] | None = None,
    cutoff: float = DEFAULT_CUTOFF,
    order: int = DEFAULT_ORDER,
    seed: int = 0,
    val_fraction: float = 0.25,
    n_estimators: int = 200,
    n_jobs: int = 2,
    max_pixels_per_field: int | None = None,
    presmoothed: bool = False,
    test: tuple[np.ndarray, np.ndarray] | None = None,
) -> BaselineResult:
    """Fit the forest on the training fields and score validation (and test) pixels.

    Args:
        series: (N, F, T >= n_steps) raw reference series, NaN = no observation.
        labels: (N,) class labels.
        field_ids: (N,) field ids.
        n_steps: Sequence length k.
        split: The CNN's field split (default: :func:`split_fields` with ``seed`` and
            ``val_fraction``, which is what :func:`~cropassets.ml.train.train` uses).
        class_names: As for :func:`~cropassets.ml.train.train`.
        cutoff: Butterworth cutoff, cycles per step.
        order: Butterworth order.
        seed: Forest seed (and split seed when ``split`` is None).
        val_fraction: Validation share when the split is computed here.
        n_estimators: Trees.
        n_jobs: Worker processes/threads of the forest.
        max_pixels_per_field: Cap on training pixels per field, chosen as
            :func:`~cropassets.ml.train.train` chooses them for the same ``seed`` (the
            default matches ``TrainConfig.max_pixels_per_field``, so both models fit on
            the same pixels).
        presmoothed: Series already smoothed on their first ``n_steps`` steps (as for
            :func:`~cropassets.ml.train.train`); applies to ``test`` too.
        test: ``(series, labels)`` of another season; labels unknown to training are
            left out; pixels without any observation count as errors (nodata).

    Returns:
        A :class:`BaselineResult`.
    """
    t0 = time.perf_counter()
    x = np.asarray(series)
    y_idx, codes, names = resolve_classes(np.asarray(labels), class_names)
    fid = np.asarray(field_ids)
    if split is None:
        split = split_fields(labels, fid, val_fraction=val_fraction, seed=seed,
                             class_names=names)
    tr, va, _ = split.masks(fid)
    valid = valid_pixels(x, n_steps)
    tr &= valid
    va &= valid
    tr = cap_pixels_per_field(tr, fid, max_pixels_per_field, seed)
    x_tr, fill = smoothed_prefix(x[tr], n_steps, cutoff, order, None, presmoothed)
    x_va, _ = smoothed_prefix(x[va], n_steps, cutoff, order, fill, presmoothed)
    rf = RandomForestClassifier(
        n_estimators=n_estimators,
        random_state=seed,
        n_jobs=n_jobs,
        class_weight="balanced",
    )
    rf.fit(x_tr.reshape(len(x_tr), -1), y_idx[tr])
    pred = rf.predict(x_va.reshape(len(x_va), -1))
    metrics = classification_metrics(y_idx[va], pred, names)
    test_metrics = None
    if test is not None:
        xt = np.asarray(test[0])
        yt = np.asarray(test[1])
        code_arr = np.asarray(codes)
        known = np.isin(yt, code_arr)
        yt_idx = np.argsort(code_arr)[np.searchsorted(np.sort(code_arr), yt[known])]
        xt = xt[known]
        ok = valid_pixels(xt, n_steps)
        pt = np.full(len(xt), -1, dtype=np.int64)
        if ok.any():
            sm, _ = smoothed_prefix(xt[ok], n_steps, cutoff, order, fill, presmoothed)
            pt[ok] = rf.predict(sm.reshape(len(sm), -1))
        test_metrics = classification_metrics(yt_idx, pt, names)
        test_metrics["n_unknown_label"] = int((~known).sum())
    return BaselineResult(
        n_steps=int(n_steps),
        metrics=metrics,
        test_metrics=test_metrics,
        seconds=time.perf_counter() - t0,
        model=rf,
    )
