"""TempCNN baseline (Pelletier, Webb & Petitjean 2019, Remote Sensing 11(5):523) in PyTorch.

A 1-D convolutional network working directly on the (gap-filled, smoothed) series, used by
``bench/bench_real_series.py`` as a strong published baseline beside the library's CWT +
CNN2D classifier.

Architecture (dims for one batch of N pixels, F features, k steps, C classes)::

    (N, F, k) -> 3 x [Conv1d(k=5, 64 filters, same padding) + BatchNorm + ReLU + Dropout 0.2]
              -> flatten (N, 64 * k) -> Dense 256 + BatchNorm + ReLU + Dropout 0.2
              -> Dense C (logits; softmax in the loss / at prediction)

Preprocessing (identical at fit and predict): truncate the raw series to the first ``k``
steps FIRST (no later observation can leak in), then linear gap-fill + zero-phase Butterworth
smoothing of that prefix
(:func:`cropassets.core.timeseries.smoothing.smooth_series`), a feature series
without any observation in the prefix takes the mean training curve of that feature, then
per-feature standardisation with the training mean/std (over pixels and steps).

Training: Adam (lr 1e-3), plain cross-entropy, mini-batches of 64 pixels in a seeded random
order, a fixed budget of optimiser steps (default 3000) with evaluation on the validation
pixels once per pass over the training pixels (clipped to every 5..50 steps), early stopping
once ``patience_steps`` steps bring no new best validation score, and restore of the best
weights. The score is the validation loss by default (``monitor="accuracy"``: accuracy, ties
broken by the loss). The whole fit runs inside
``torch.random.fork_rng`` with ``torch.use_deterministic_algorithms(True)``: same seed, data,
thread count and machine give identical weights on CPU.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from cropassets.core.timeseries.smoothing import smooth_series

__all__ = ["TempCNN", "TempCNNConfig", "TempCNNFit", "fit_tempcnn", "prefix_series"]


@dataclass(frozen=True)
class TempCNNConfig:
    """Architecture, preprocessing and optimisation settings.

    Attributes:
        filters: Filters of each of the three Conv1d layers.
        kernel: Temporal kernel size (steps).
        hidden: Units of the dense layer.
        dropout: Dropout probability after every block.
        lr: Adam learning rate.
        weight_decay: L2 penalty in Adam (Pelletier et al. use a small L2 term).
        batch_size: Pixels per optimiser step (the whole training set when smaller).
        max_steps: Optimiser-step budget.
        eval_every: Optimiser steps between validation evaluations (``None``: one pass over
            the training pixels, clipped to 5..50 steps).
        patience_steps: Steps without a new best validation score before stopping.
        monitor: ``"loss"`` (validation cross-entropy) or ``"accuracy"`` (validation
            accuracy, ties broken by the loss) selects the kept weights.
        cutoff: Butterworth cutoff, cycles per time step (0.2 = the library default).
        order: Butterworth order.
    """

    filters: int = 64
    kernel: int = 5
    hidden: int = 256
    dropout: float = 0.2
    lr: float = 1e-3
    weight_decay: float = 1e-6
    batch_size: int = 64
    max_steps: int = 3000
    eval_every: int | None = None
    patience_steps: int = 600
    monitor: str = "loss"
    cutoff: float = 0.2
    order: int = 3


class TempCNN(nn.Module):
    """The TempCNN network; see the module docstring for the layout."""

    def __init__(self, n_features: int, n_steps: int, n_classes: int,
                 config: TempCNNConfig | None = None) -> None:
        super().__init__()
        cfg = config or TempCNNConfig()
        layers: list[nn.Module] = []
        c_in = n_features
        for _ in range(3):
            layers += [
                nn.Conv1d(c_in, cfg.filters, cfg.kernel, padding=cfg.kernel // 2),
                nn.BatchNorm1d(cfg.filters),
                nn.ReLU(inplace=True),
                nn.Dropout(cfg.dropout),
            ]
            c_in = cfg.filters
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(cfg.filters * n_steps, cfg.hidden),
            nn.BatchNorm1d(cfg.hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.hidden, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, F, k) standardised series -> (N, C) logits."""
        return self.head(self.features(x))


def prefix_series(
    series_raw: np.ndarray,
    n_steps: int,
    cutoff: float,
    order: int,
    fill: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Truncate to the first ``n_steps`` steps, then gap-fill + smooth; fill empty features.

    Args:
        series_raw: (N, F, T >= n_steps) raw series in feature units, NaN = no observation.
        n_steps: Prefix length k (steps).
        cutoff: Butterworth cutoff, cycles per step.
        order: Butterworth order.
        fill: (F, k) curve for feature series without any observation in the prefix;
            ``None`` fits it as the per-(feature, step) mean of the smoothed training series
            (0 where a feature is never observed).

    Returns:
        ``(smoothed (N, F, k) float32 without NaN, fill (F, k) float32)``.
    """
    x = np.asarray(series_raw)[:, :, :n_steps]  # truncate FIRST: nothing after k is read
    sm = smooth_series(x, cutoff, order, axis=-1)
    missing = np.isnan(sm[:, :, 0])  # only all-NaN series keep NaN after smooth_series
    if fill is None:
        counts = (~missing).sum(axis=0)
        total = np.where(missing[:, :, None], 0.0, sm.astype(np.float64)).sum(axis=0)
        fill = (total / np.maximum(counts, 1)[:, None]).astype(np.float32)
    if missing.any():
        rows, feats = np.nonzero(missing)
        sm[rows, feats] = fill[feats]
    return sm, np.asarray(fill, dtype=np.float32)


@contextlib.contextmanager
def _deterministic(seed: int) -> Iterator[None]:
    """Seeded, deterministic torch inside; the caller's RNG state and flags restored after."""
    prev = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(prev, warn_only=prev_warn)


def flops_per_pixel(model: nn.Module, n_features: int, n_steps: int) -> int:
    """Forward FLOPs of one pixel (FlopCounterMode: convs + matmuls, 2 per multiply-add)."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(1, n_features, n_steps))
    model.train(was_training)
    return int(counter.get_total_flops())


@dataclass
class TempCNNFit:
    """A fitted TempCNN with everything prediction needs.

    Attributes:
        model: The network (eval mode, best validation weights).
        n_steps: Prefix length k (steps).
        classes: (C,) class labels; prediction index i means ``classes[i]``.
        fill: (F, k) fill curve for unobserved feature series (feature units).
        mean: (F,) training mean of the smoothed series per feature (feature units).
        std: (F,) training standard deviation per feature (feature units, floored 1e-6).
        config: The settings used.
        info: Training summary: ``steps_run``, ``best_step``, ``val_loss``,
            ``val_accuracy``, ``train_seconds``, ``flops_per_pixel``, ``n_train``, ``n_val``.
    """

    model: TempCNN
    n_steps: int
    classes: np.ndarray
    fill: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    config: TempCNNConfig
    info: dict[str, Any] = field(default_factory=dict)

    def _inputs(self, series_raw: np.ndarray) -> torch.Tensor:
        sm, _ = prefix_series(series_raw, self.n_steps, self.config.cutoff, self.config.order,
                              self.fill)
        z = (sm - self.mean[None, :, None]) / self.std[None, :, None]
        return torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32))

    def predict_proba(self, series_raw: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """Class probabilities (N, C) for raw series (N, F, T >= k), NaN = no observation."""
        x = self._inputs(series_raw)
        self.model.eval()
        out = []
        with torch.inference_mode():
            for i in range(0, len(x), batch_size):
                out.append(torch.softmax(self.model(x[i : i + batch_size]), dim=1))
        if not out:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        return torch.cat(out).numpy()

    def predict(self, series_raw: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """Predicted labels (N,) (values of ``classes``) for raw series (N, F, T >= k)."""
        proba = self.predict_proba(series_raw, batch_size)
        return self.classes[proba.argmax(axis=1)]


def fit_tempcnn(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    n_steps: int,
    *,
    seed: int = 0,
    config: TempCNNConfig | None = None,
) -> TempCNNFit:
    """Fit a TempCNN on the first ``n_steps`` steps, early-stopped on the validation pixels.

    Args:
        x_train: (N, F, T >= n_steps) raw training series (feature units, NaN = missing).
        y_train: (N,) training labels (any sortable values).
        x_val: (M, F, T >= n_steps) raw validation series (other fields than training).
        y_val: (M,) validation labels; labels unseen in training count as errors.
        n_steps: Prefix length k (steps, >= 1).
        seed: Seed of the initial weights, dropout and batch order.
        config: Settings (default :class:`TempCNNConfig`).

    Returns:
        A :class:`TempCNNFit`.
    """
    cfg = config or TempCNNConfig()
    t0 = time.perf_counter()
    classes, y_idx = np.unique(np.asarray(y_train), return_inverse=True)
    sm_tr, fill = prefix_series(x_train, n_steps, cfg.cutoff, cfg.order, None)
    s64 = sm_tr.astype(np.float64)
    mean = s64.mean(axis=(0, 2)).astype(np.float32)
    std = np.maximum(s64.std(axis=(0, 2)), 1e-6).astype(np.float32)
    n_feat = sm_tr.shape[1]
    xt = torch.from_numpy(((sm_tr - mean[None, :, None]) / std[None, :, None]).astype(np.float32))
    yt = torch.from_numpy(y_idx.astype(np.int64))
    sm_va, _ = prefix_series(x_val, n_steps, cfg.cutoff, cfg.order, fill)
    xv = torch.from_numpy(((sm_va - mean[None, :, None]) / std[None, :, None]).astype(np.float32))
    # validation labels unseen in training: index -100 is ignored by the loss, wrong in accuracy
    pos = np.searchsorted(classes, np.asarray(y_val))
    pos = np.minimum(pos, len(classes) - 1)
    known = classes[pos] == np.asarray(y_val)
    yv = torch.from_numpy(np.where(known, pos, -100).astype(np.int64))
    loss_fn = nn.CrossEntropyLoss(ignore_index=-100)
    batch = max(2, min(cfg.batch_size, len(xt)))
    every = cfg.eval_every or int(np.clip(len(xt) // batch, 5, 50))
    if cfg.monitor not in ("loss", "accuracy"):
        raise ValueError(f"monitor must be 'loss' or 'accuracy', got {cfg.monitor!r}")
    with _deterministic(seed):
        model = TempCNN(n_feat, n_steps, len(classes), cfg)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        gen = torch.Generator().manual_seed(seed)
        best_key: tuple[float, float] = (math.inf, math.inf)
        best_step, best_loss, best_acc = 0, math.inf, math.nan
        best_state = copy.deepcopy(model.state_dict())
        order = torch.randperm(len(xt), generator=gen)
        pos_in_epoch, step = 0, 0
        while step < cfg.max_steps:
            if pos_in_epoch + batch > len(xt):  # new epoch; the short tail batch is dropped
                order = torch.randperm(len(xt), generator=gen)
                pos_in_epoch = 0
            idx = order[pos_in_epoch : pos_in_epoch + batch]
            pos_in_epoch += batch
            model.train()
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            step += 1
            if step % every == 0 or step == cfg.max_steps:
                val_loss, val_acc = _validate(model, xv, yv, loss_fn)
                key = (val_loss, 0.0) if cfg.monitor == "loss" else (-val_acc, val_loss)
                if key < best_key and (cfg.monitor != "loss" or val_loss < best_loss - 1e-6):
                    best_key, best_step, best_loss, best_acc = key, step, val_loss, val_acc
                    best_state = copy.deepcopy(model.state_dict())
                elif step - best_step >= cfg.patience_steps:
                    break
        model.load_state_dict(best_state)
        model.eval()
    info = {
        "steps_run": step,
        "best_step": best_step,
        "eval_every": every,
        "val_loss": best_loss,
        "val_accuracy": best_acc,
        "n_train": len(xt),
        "n_val": len(xv),
        "train_seconds": time.perf_counter() - t0,
        "flops_per_pixel": flops_per_pixel(model, n_feat, n_steps),
    }
    return TempCNNFit(model, n_steps, classes, fill, mean, std, cfg, info)


def _validate(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
              loss_fn: nn.Module) -> tuple[float, float]:
    """Mean validation loss (known labels) and accuracy (all pixels) in eval mode."""
    model.eval()
    with torch.no_grad():
        logits = model(x)
        known = y >= 0
        loss = float(loss_fn(logits, y)) if bool(known.any()) else math.inf
        acc = float((logits.argmax(1) == y).float().mean()) if len(y) else math.nan
    return loss, acc
