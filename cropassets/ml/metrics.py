"""Classification metrics shared by the CNN, the baseline and the incremental analysis."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["classification_metrics"]


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str]
) -> dict[str, Any]:
    """Overall accuracy, macro-F1, per-class F1 and the confusion matrix, per pixel.

    Args:
        y_true: (N,) true class indices in ``0..C-1``.
        y_pred: (N,) predicted class indices; ``-1`` (nodata) counts as wrong.
        class_names: C class names.

    Returns:
        Plain-type dict: ``n`` (pixels), ``n_nodata``, ``overall_accuracy``, ``macro_f1``
        (mean F1 over classes present in ``y_true`` or ``y_pred``), ``per_class_f1``
        (name → F1, NaN-free: a class absent from both gets 0.0 and is left out of the
        macro mean), ``confusion`` (C x C list, rows true, columns predicted; nodata not
        counted).
    """
    yt = np.asarray(y_true, dtype=np.int64)
    yp = np.asarray(y_pred, dtype=np.int64)
    c = len(class_names)
    ok = yp >= 0
    cm = np.zeros((c, c), dtype=np.int64)
    np.add.at(cm, (yt[ok], yp[ok]), 1)
    tp = np.diag(cm).astype(np.float64)
    n_true = np.bincount(yt, minlength=c).astype(np.float64)  # nodata counts as a miss
    n_pred = cm.sum(axis=0).astype(np.float64)
    denom = n_true + n_pred
    f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
    present = denom > 0
    n = int(yt.size)
    return {
        "n": n,
        "n_nodata": int((~ok).sum()),
        "overall_accuracy": float(tp.sum() / n) if n else float("nan"),
        "macro_f1": float(f1[present].mean()) if present.any() else float("nan"),
        "per_class_f1": {str(name): float(v) for name, v in zip(class_names, f1, strict=True)},
        "confusion": cm.tolist(),
    }
