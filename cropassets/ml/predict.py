"""Apply a checkpoint to raw series, streaming pixels in batches.

Each batch goes through the checkpoint's own preprocessing, its fitted
:class:`~cropassets.ml.recipe.SeriesRecipe` (truncate to its ``n_steps``, gap-fill +
smooth, resample dated steps onto its day grid, CWT at its scales, its normalisation), then
the CNN; scalograms exist for one batch at a time only, so memory stays flat however many
pixels come in.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any, Literal

import numpy as np
import torch

from cropassets.core.timeseries.timeaxis import day_offsets
from cropassets.ml.checkpoint import Checkpoint
from cropassets.ml.device import autocast_context, select_device
from cropassets.ml.metrics import classification_metrics
from cropassets.ml.model import inference_model
from cropassets.ml.prepare import prepare_tensor, valid_pixels

__all__ = ["NODATA", "check_steps", "evaluate", "predict", "predict_proba"]

NODATA = -1
"""Class index of pixels without any observation in the prefix (confidence 0.0)."""


def _batches(
    checkpoint: Checkpoint,
    series_raw: np.ndarray,
    batch_size: int,
    device: torch.device | str | None,
    features: Sequence[str] | None,
    precision: Literal["auto", "fp32"],
    presmoothed: bool | None,
    dates: Sequence[Any] | np.ndarray | None = None,
) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
    """Softmax probabilities of every batch's valid pixels: ``(pixel indices, (n, C))``."""
    x = np.asarray(series_raw)
    if x.ndim != 3:
        raise ValueError(f"series must be (N, F, T), got shape {x.shape}")
    if features is not None:
        checkpoint.check_compatible(features=features)
    check_steps(checkpoint, dates, x.shape[2])
    if x.shape[1] != len(checkpoint.features):
        raise ValueError(
            f"series has {x.shape[1]} features but the checkpoint was trained on "
            f"{len(checkpoint.features)}: {list(checkpoint.features)}"
        )
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    dev = select_device() if device is None else torch.device(device)
    k = checkpoint.n_steps
    stats = checkpoint.input_stats
    if stats.n_steps != k:
        raise ValueError(f"checkpoint stats are for {stats.n_steps} steps, not {k}")
    model = inference_model(checkpoint.build_model(dev), dev)
    channels_last = dev.type == "cpu"
    recipe = checkpoint.recipe
    if presmoothed is not None and bool(presmoothed) != recipe.presmoothed:
        recipe = replace(recipe, presmoothed=bool(presmoothed))
    n = x.shape[0]
    amp = autocast_context(dev) if precision == "auto" else None
    for start in range(0, n, int(batch_size)):
        sl = slice(start, min(start + int(batch_size), n))
        chunk = x[sl, :, :k]  # truncate before anything else (rule 1)
        ok = valid_pixels(chunk, k)
        if not ok.any():
            continue
        xin, _ = prepare_tensor(chunk[ok], recipe, dev)
        if channels_last:
            xin = xin.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            if amp is None:
                logits = model(xin)
            else:
                with autocast_context(dev):
                    logits = model(xin)
            prob = torch.softmax(logits.float(), dim=1)
        yield np.flatnonzero(ok) + start, prob


def check_steps(checkpoint: Checkpoint, dates: Sequence[Any] | np.ndarray | None,
                n_series_steps: int) -> None:
    """Refuse series whose step dates differ from the checkpoint's trained steps.

    ``dates`` (one per step of the series, ``n_series_steps`` of them) are checked against
    the trained day offsets; without dates a series is taken to have the trained steps,
    except for a checkpoint trained on irregular dated steps, which needs them.

    Raises:
        ValueError: On a date count other than the series' steps, steps that do not
            match, or missing dates for an irregular checkpoint.
    """
    if dates is not None:
        checkpoint.check_compatible(dates=day_offsets(dates, n_steps=n_series_steps))
    elif checkpoint.irregular_steps:
        raise ValueError(
            "the checkpoint was trained on dated, irregular steps (day offsets "
            f"{np.round(checkpoint.day_offsets, 1).tolist()}): pass the series' dates= so "
            "that they can be checked and resampled the same way"
        )


def predict(
    checkpoint: Checkpoint,
    series_raw: np.ndarray,
    batch_size: int = 2048,
    device: torch.device | str | None = None,
    *,
    features: Sequence[str] | None = None,
    precision: Literal["auto", "fp32"] = "fp32",
    presmoothed: bool | None = None,
    dates: Sequence[Any] | np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Class and confidence per pixel.

    Args:
        checkpoint: A trained :class:`Checkpoint`.
        series_raw: (N, F, T >= checkpoint.n_steps) raw series, NaN = no observation; only
            the first ``checkpoint.n_steps`` steps are read (the week-k map uses only
            observations up to week k).
        batch_size: Pixels per batch (scalograms are held for one batch only); 2048 keeps
            a batch's scalograms in cache on CPU (faster than 8192 by ~2x).
        device: Torch device (default: CUDA when available, else CPU).
        features: Feature names of ``series_raw``; when given they must equal the
            checkpoint's list (names and order), else ValueError.
        precision: ``"fp32"`` (default, the precision training used on CPU) or ``"auto"``
            (the CNN under :func:`~cropassets.ml.device.autocast_context`: bf16 on CUDA,
            and on CPUs where it measures faster). The preprocessing is always fp32.
        presmoothed: Series already smoothed on their first ``n_steps`` steps; ``None``
            follows the checkpoint (what training saw).
        dates: (T,) date of each step of ``series_raw``; the first k must sit at the
            checkpoint's trained day offsets (:func:`check_steps`). Required for a
            checkpoint trained on irregular dated steps.

    Returns:
        ``(class_index (N,) int64, confidence (N,) float32)``: index into
        ``checkpoint.class_names`` / ``class_codes`` and the softmax probability of that
        class, in [0, 1]; ``(-1, 0.0)`` for pixels with no observation in any feature.

    Raises:
        ValueError: If the feature count or list differs from the checkpoint's, the
            series is shorter than ``checkpoint.n_steps``, or its dates differ.
    """
    x = np.asarray(series_raw)
    n = x.shape[0] if x.ndim else 0
    cls = np.full(n, NODATA, dtype=np.int64)
    conf = np.zeros(n, dtype=np.float32)
    for idx, prob in _batches(checkpoint, x, batch_size, device, features,
                              precision, presmoothed, dates):
        p, c = prob.max(dim=1)
        cls[idx] = c.cpu().numpy()
        conf[idx] = p.cpu().numpy()
    return cls, conf


def predict_proba(
    checkpoint: Checkpoint,
    series_raw: np.ndarray,
    batch_size: int = 2048,
    device: torch.device | str | None = None,
    *,
    features: Sequence[str] | None = None,
    precision: Literal["auto", "fp32"] = "fp32",
    presmoothed: bool | None = None,
    dates: Sequence[Any] | np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Softmax probabilities of every class per pixel (arguments as :func:`predict`).

    Returns:
        ``(probabilities (N, C) float32, valid (N,) bool)``; rows of pixels without any
        observation in the prefix are 0 and ``valid`` is False there. The argmax of a row
        and its value are :func:`predict`'s class and confidence.
    """
    x = np.asarray(series_raw)
    n = x.shape[0] if x.ndim else 0
    out = np.zeros((n, len(checkpoint.class_codes)), dtype=np.float32)
    valid = np.zeros(n, dtype=bool)
    for idx, prob in _batches(checkpoint, x, batch_size, device, features,
                              precision, presmoothed, dates):
        out[idx] = prob.cpu().numpy()
        valid[idx] = True
    return out, valid


def evaluate(
    checkpoint: Checkpoint,
    series_raw: np.ndarray,
    labels: np.ndarray,
    batch_size: int = 8192,
    device: torch.device | str | None = None,
    dates: Sequence[Any] | np.ndarray | None = None,
) -> dict[str, Any]:
    """Metrics of a checkpoint on labelled pixels (e.g. the current season's labels).

    Pixels whose label is not among ``checkpoint.class_codes`` are left out and counted
    in ``n_unknown_label``; nodata predictions count as errors.

    Args:
        checkpoint: A trained :class:`Checkpoint`.
        series_raw: (N, F, T) raw series.
        labels: (N,) class labels in the checkpoint's coding.
        batch_size: Prediction batch size.
        device: Torch device.
        dates: (T,) step dates, as for :func:`predict`.

    Returns:
        :func:`~cropassets.ml.metrics.classification_metrics` plus ``n_unknown_label``.
    """
    y = np.asarray(labels)
    codes = np.asarray(checkpoint.class_codes)
    known = np.isin(y, codes)
    y_idx = np.searchsorted(np.sort(codes), y[known])
    order = np.argsort(codes)
    y_idx = order[y_idx]
    pred, _ = predict(checkpoint, np.asarray(series_raw)[known], batch_size, device,
                      dates=dates)
    m = classification_metrics(y_idx, pred, checkpoint.class_names)
    m["n_unknown_label"] = int((~known).sum())
    return m
