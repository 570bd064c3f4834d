"""Train a CNN2D for one sequence length on labelled reference series.

``train(series, labels, field_ids, recipe, config=...)``: the data, what turns it into
model inputs (a :class:`~cropassets.ml.recipe.SeriesRecipe`, or just the sequence length
k for the default one) and how to optimise (:class:`TrainConfig`). The training pixels are
prepared by :func:`cropassets.ml.prepare.prepare_tensor` on their first ``n_steps`` steps,
exactly as inference at week ``n_steps`` will prepare the map's pixels (DESIGN rules 1-2):
the fitted recipe travels in the checkpoint. The split is by field (rule 3).

Optimisation (:class:`~cropassets.ml.train_config.TrainConfig`): class-weighted
cross-entropy (weights ``n / (C * n_c)`` over training pixels, so every class counts the same
whatever its pixel share), AdamW over a fixed number of optimiser steps (linear warm-up, then
cosine decay), mini-batches in a seeded random order, validation every ``eval_every`` steps
and early stopping, keeping the weights of the best validation pass (highest accuracy by
default); then refit networks on training + validation pixels to the selected step count.

Determinism: the whole run sits inside ``torch.random.fork_rng`` seeded with ``seed`` (the
caller's global RNG state is untouched) with ``torch.use_deterministic_algorithms(True)``
(restored afterwards), so the same seed, data, thread count and machine give identical
weights and metrics on CPU.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from cropassets.ml.checkpoint import Checkpoint, library_versions
from cropassets.ml.device import select_device
from cropassets.ml.metrics import classification_metrics
from cropassets.ml.model import CNN2D, CNN2DEnsemble, ModelConfig, flops_per_sample
from cropassets.ml.prepare import prepare_tensor, valid_pixels
from cropassets.ml.recipe import SeriesRecipe
from cropassets.ml.refit import (
    RefitRun,
    class_weights,
    deterministic,
    optimiser_step,
    shuffled_batches,
)
from cropassets.ml.splits import FieldSplit, split_fields
from cropassets.ml.train_config import TrainConfig

__all__ = ["resolve_classes", "train"]

Logger = Callable[[str], None] | None


def cap_pixels_per_field(
    mask: np.ndarray, field_ids: np.ndarray, cap: int | None, seed: int
) -> np.ndarray:
    """Keep at most ``cap`` pixels of ``mask`` per field (seeded, order-independent).

    Args:
        mask: (N,) bool pixels eligible.
        field_ids: (N,) field ids.
        cap: Pixels kept per field (``None``: ``mask`` unchanged).
        seed: Seed of the choice.

    Returns:
        (N,) bool subset of ``mask``.
    """
    if cap is None:
        return mask
    idx = np.flatnonzero(mask)
    rng = np.random.default_rng(seed)
    key = rng.random(len(idx))  # random rank of each pixel within its field
    order = np.lexsort((key, field_ids[idx]))
    f_sorted = field_ids[idx][order]
    first = np.r_[0, np.flatnonzero(np.diff(f_sorted)) + 1]
    rank = np.arange(len(order)) - np.repeat(first, np.diff(np.r_[first, len(order)]))
    out = np.zeros_like(mask)
    out[idx[order[rank < int(cap)]]] = True
    return out


def resolve_classes(
    labels: np.ndarray, class_names: Sequence[str] | dict[Any, str] | None
) -> tuple[np.ndarray, list[Any], tuple[str, ...]]:
    """Class indices, codes and names for per-pixel labels.

    Args:
        labels: (N,) class labels (ints or strings).
        class_names: ``None`` (names are the labels as text), a list aligned with the
            sorted unique labels, or a mapping label → name.

    Returns:
        ``(index (N,) int64 in 0..C-1, codes (C,) as Python values, names (C,))``.
    """
    codes, index = np.unique(np.asarray(labels), return_inverse=True)
    code_list = codes.tolist()
    if class_names is None:
        names = tuple(str(c) for c in code_list)
    elif isinstance(class_names, dict):
        names = tuple(str(class_names.get(c, c)) for c in code_list)
    else:
        if len(class_names) != len(code_list):
            raise ValueError(
                f"class_names has {len(class_names)} names but the labels hold "
                f"{len(code_list)} classes {code_list}; give one name per sorted label or a "
                f"mapping label -> name"
            )
        names = tuple(str(n) for n in class_names)
    return index.astype(np.int64), code_list, names


def _no_autocast(device: torch.device) -> contextlib.AbstractContextManager[object]:
    """Switch off an autocast region the caller may have opened (fp32 inside)."""
    return torch.autocast(device.type, enabled=False)


@contextlib.contextmanager
def _cpu_threads(device: torch.device, threads: int | None) -> Iterator[None]:
    """Torch intra-op threads set to ``threads`` inside (CPU only), restored after."""
    if device.type != "cpu" or threads is None:
        yield
        return
    prev = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(prev)


def _selection_subset(n_val: int, cap: int | None, seed: int) -> np.ndarray | None:
    """Sorted indices of at most ``cap`` of ``n_val`` validation pixels (seeded).

    None when there are no more than ``cap`` (all of them are scored).
    """
    if cap is None or n_val <= cap:
        return None
    return np.sort(np.random.default_rng(seed).choice(n_val, size=cap, replace=False))


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of ``model``'s ``state_dict``."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _batches(n: int, batch_size: int) -> Iterator[slice]:
    for i in range(0, n, batch_size):
        yield slice(i, min(i + batch_size, n))


def _evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: nn.Module, batch: int
) -> tuple[float, np.ndarray]:
    """Mean loss and predicted indices of (x, y) in eval mode."""
    model.eval()
    total, preds = 0.0, []
    with torch.no_grad():
        for sl in _batches(len(x), batch):
            logits = model(x[sl])
            total += float(loss_fn(logits, y[sl])) * (sl.stop - sl.start)
            preds.append(logits.argmax(1).cpu())
    pred = torch.cat(preds).numpy() if preds else np.zeros(0, dtype=np.int64)
    return total / max(len(x), 1), pred


def train(
    series: np.ndarray,
    labels: np.ndarray,
    field_ids: np.ndarray,
    recipe: SeriesRecipe | int,
    *,
    class_names: Sequence[str] | dict[Any, str] | None = None,
    features: Sequence[str] | None = None,
    dates: Sequence[Any] | np.ndarray | None = None,
    config: TrainConfig | None = None,
    split: FieldSplit | None = None,
    device: torch.device | str | None = None,
    log: Logger = None,
) -> Checkpoint:
    """Train a CNN2D on the first ``n_steps`` steps of labelled reference series.

    Args:
        series: (N, F, T >= n_steps) raw series (any feature units, NaN = no observation;
            not smoothed unless ``recipe.presmoothed``: smoothing happens here, after
            truncation).
        labels: (N,) class labels (ints or strings).
        field_ids: (N,) group ids: the spatial unit a split never cuts (field, parcel or
            location); see :func:`~cropassets.ml.splits.split_fields`.
        recipe: The preprocessing (:class:`~cropassets.ml.recipe.SeriesRecipe`: sequence
            length k >= 3, smoothing, day grid, CWT scales and wavelet, series row), or
            just k for the default recipe. Its time axis is fixed here
            (:meth:`~cropassets.ml.recipe.SeriesRecipe.on_time_axis` with ``dates``: the
            grid step defaults to the dates' median spacing, else 7 days; the scales to
            ``default_scales(K)``, K the grid length), its stats are fitted on the
            training pixels (those of a fitted recipe, e.g. another checkpoint's, are
            ignored), and the fitted recipe is the checkpoint's (``checkpoint.recipe``).
        class_names: Names for the sorted unique labels (list) or a mapping label → name.
        features: F feature names (defaults ``feature_0..``); stored and checked at
            inference.
        dates: (T,) date of each step (ISO strings, ``datetime64``, dates, or day
            numbers), strictly increasing. Steps off the regular grid (dekads, calendar
            months, MODIS composites restarting on 1 January) are resampled onto it after
            smoothing (:func:`cropassets.ml.prepare.resample_to_grid`). The day offsets of
            the first ``n_steps`` steps are stored; prediction refuses series whose steps
            differ. ``None``: regular steps of the recipe's ``time_step_days``.
        config: Optimisation and architecture settings, seed and precision
            (:class:`TrainConfig`; default ``TrainConfig()``).
        split: A precomputed group split (default: :func:`split_fields` with
            ``config.seed``).
        device: Torch device (default: :func:`~cropassets.ml.device.select_device`).
        log: Called with one progress line per validation pass and a summary.

    Returns:
        A :class:`Checkpoint` with validation metrics and the fitted recipe.

    Raises:
        ValueError: On inconsistent shapes, dates or recipe, classes with too few groups,
            or no valid training pixels.
    """
    cfg = config or TrainConfig()
    seed = cfg.seed
    say = log or (lambda _msg: None)
    x_all = np.asarray(series)
    if x_all.ndim != 3:
        raise ValueError(f"series must be (N, F, T), got shape {x_all.shape}")
    n, n_feat, _ = x_all.shape
    y_lab = np.asarray(labels)
    fid = np.asarray(field_ids)
    if y_lab.shape != (n,) or fid.shape != (n,):
        raise ValueError(
            f"labels and field_ids must be (N,) = ({n},), got {y_lab.shape} and {fid.shape}"
        )
    feats = tuple(f"feature_{i}" for i in range(n_feat)) if features is None else tuple(
        str(f) for f in features
    )
    if len(feats) != n_feat:
        raise ValueError(f"{len(feats)} feature names given for {n_feat} features")
    timed = replace(SeriesRecipe.of(recipe), stats=None).on_time_axis(dates, x_all.shape[2])
    n_steps = timed.n_steps
    y_idx, codes, names = resolve_classes(y_lab, class_names)
    n_classes = len(codes)
    if n_classes < 2:
        raise ValueError(
            f"labels hold a single class {codes}: a classifier needs at least two classes"
        )
    if split is None:
        split = split_fields(
            y_lab, fid, val_fraction=cfg.val_fraction, seed=seed, class_names=names
        )
    tr_mask, va_mask, _ = split.masks(fid)
    valid = valid_pixels(x_all, n_steps)
    tr_mask &= valid
    va_mask &= valid
    n_eligible = int(tr_mask.sum())
    tr_mask = cap_pixels_per_field(tr_mask, fid, cfg.max_pixels_per_field, seed)
    n_dropped = n_eligible - int(tr_mask.sum())
    if n_dropped:
        say(f"k={n_steps}: max_pixels_per_field={cfg.max_pixels_per_field} drops "
            f"{n_dropped} of {n_eligible} training pixels")
    if not tr_mask.any() or not va_mask.any():
        raise ValueError(
            f"no valid training or validation pixels in the first {n_steps} steps "
            f"({int(tr_mask.sum())} train, {int(va_mask.sum())} val)"
        )
    dev = select_device() if device is None else torch.device(device)
    bf16 = cfg.precision == "bf16"

    t0 = time.perf_counter()
    with _no_autocast(dev):
        x_tr, fitted = prepare_tensor(x_all[tr_mask], timed, dev)
        x_va, _ = prepare_tensor(x_all[va_mask], fitted, dev)
    stats = fitted.stats
    assert stats is not None  # fitted on the training pixels just above
    y_tr = torch.from_numpy(y_idx[tr_mask]).to(dev)
    y_va = torch.from_numpy(y_idx[va_mask]).to(dev)
    n_tr = len(y_tr)
    batch = max(2, min(cfg.batch_size, n_tr))
    say(
        f"k={n_steps}: {n_tr} train / {len(y_va)} val pixels "
        f"({len(split.train)} / {len(split.val)} groups), input {tuple(x_tr.shape[1:])}, "
        f"prepared in {time.perf_counter() - t0:.1f}s"
    )
    w_t = class_weights(y_tr, n_classes)
    loss_fn = nn.CrossEntropyLoss(weight=w_t, label_smoothing=cfg.label_smoothing)
    val_loss_fn = nn.CrossEntropyLoss(weight=w_t)

    mcfg = ModelConfig(
        in_features=n_feat,
        n_classes=n_classes,
        widths=cfg.widths,
        pool_scales=cfg.pool_scales,
        pool_steps=cfg.pool_steps,
        dropout=cfg.dropout,
        series_widths=cfg.series_widths if stats.series_row else (),
    )
    # selection passes score at most max_val_pixels validation pixels (a seeded subset);
    # the reported metrics use all of them
    sel = _selection_subset(len(y_va), cfg.max_val_pixels, seed)
    x_sel, y_sel = (x_va, y_va) if sel is None else (x_va[sel], y_va[sel])
    y_sel_idx = y_sel.cpu().numpy()
    history: list[dict[str, float]] = []
    with deterministic(seed, dev), _no_autocast(dev), _cpu_threads(dev, cfg.cpu_threads):
        refit = None
        # training + validation pixels, for the refit network(s)
        x_all_t, y_all_t = (torch.cat([x_tr, x_va]), torch.cat([y_tr, y_va])) if cfg.refit \
            else (x_tr, y_tr)
        if cfg.refit:  # built first: its own seeded init leaves the global RNG as it was
            refit = RefitRun(mcfg, cfg, x_all_t, y_all_t, n_tr, n_classes, seed, dev, bf16)
        beside = refit is not None and cfg.overlap_refit and dev.type == "cpu" \
            and cfg.cpu_threads == 1
        model: nn.Module = CNN2D(mcfg).to(dev)
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        ema = None
        if cfg.ema_decay > 0:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay),
                                use_buffers=True)
        scored = model if ema is None else ema.module
        best_loss, best_acc, best_step = math.inf, -1.0, 0
        best_state = copy.deepcopy(model.state_dict())
        batches = shuffled_batches(n_tr, batch, seed, dev)
        running, n_run, step = 0.0, 0, 0
        if beside:
            assert refit is not None  # beside implies a refit run
            refit.start()
        try:
            while step < cfg.max_steps:
                idx = next(batches)
                loss = optimiser_step(model, opt, loss_fn, x_tr[idx], y_tr[idx],
                                      cfg.lr_at(step), dev, bf16)
                if ema is not None:
                    ema.update_parameters(model)
                step += 1
                running += float(loss)
                n_run += 1
                if step % cfg.eval_every and step != cfg.max_steps:
                    continue
                val_loss, val_pred = _evaluate(scored, x_sel, y_sel, val_loss_fn, 1024)
                val_acc = float((val_pred == y_sel_idx).mean())
                history.append({
                    "step": step,
                    "train_loss": running / n_run,
                    "val_loss": val_loss,
                    "val_accuracy": val_acc,
                })
                running, n_run = 0.0, 0
                if cfg.select_by == "loss":
                    improved = val_loss < best_loss - 1e-6
                else:  # accuracy first, the loss breaks ties
                    improved = val_acc > best_acc + 1e-9 or (
                        abs(val_acc - best_acc) <= 1e-9 and val_loss < best_loss - 1e-6)
                if improved:
                    best_loss, best_acc, best_step = val_loss, val_acc, step
                    best_state = copy.deepcopy(scored.state_dict())
                if beside:
                    assert refit is not None
                    refit.advance(best_step, step)
                say(
                    f"k={n_steps} step {step}: train_loss={history[-1]['train_loss']:.4f} "
                    f"val_loss={val_loss:.4f} val_acc={val_acc:.4f}{' *' if improved else ''}"
                )
                if step >= cfg.min_steps and step - best_step >= cfg.patience_steps:
                    break
        except BaseException:
            if beside:
                assert refit is not None
                refit.cancel()
            raise
        model.load_state_dict(best_state)
        _, val_pred = _evaluate(model, x_va, y_va, val_loss_fn, 1024)
        refit_info = None
        nets: list[nn.Module] = [model]
        if refit is not None:
            selected = model
            model = refit.finish(best_step) if beside else refit.run_to(best_step)
            refit_info = refit.info() | {"beside_selection": bool(beside)}
            nets = [model]
            if cfg.ensemble_max_pixels is None or refit.n_all <= cfg.ensemble_max_pixels:
                if cfg.keep_selection:
                    nets.append(selected)
                for j in range(1, cfg.extra_refits + 1):
                    nets.append(RefitRun(mcfg, cfg, x_all_t, y_all_t, n_tr, n_classes,
                                         seed + j, dev, bf16).run_to(best_step))
                    say(f"k={n_steps}: refit seed {seed + j} done")
        served: nn.Module = nets[0] if len(nets) == 1 else CNN2DEnsemble(nets)
        members = [_cpu_state(net) for net in nets[1:]]
    metrics = classification_metrics(y_idx[va_mask], val_pred, names)
    metrics.update({
        "best_step": best_step,
        "steps_run": step,
        "epochs_run": round(step * batch / n_tr, 2),
        "val_loss": best_loss,
        "n_train_pixels": int(n_tr),
        "n_train_pixels_dropped": int(n_dropped),
        "n_val_pixels": int(len(y_va)),
        "n_val_pixels_selection": int(len(y_sel)),
        "n_train_fields": int(len(split.train)),
        "n_val_fields": int(len(split.val)),
        "n_invalid_pixels": int((~valid).sum()),
        "flops_per_sample": flops_per_sample(served, n_feat, int(x_tr.shape[2]),
                                             int(x_tr.shape[3])),
        "n_members": 1 + len(members),
        "precision": "bf16-autocast" if bf16 else "fp32",
        "refit": refit_info,
        "train_seconds": time.perf_counter() - t0,
    })
    say(
        f"k={n_steps}: best step {best_step}/{step}, val accuracy "
        f"{metrics['overall_accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}"
    )
    return Checkpoint(
        weights=_cpu_state(model),
        member_weights=members,
        model_config=mcfg.to_dict(),
        features=feats,
        recipe=fitted,
        class_codes=codes,
        class_names=names,
        metrics=metrics,
        versions=library_versions(),
        split=split.to_dict(),
        history=history,
        seed=int(seed),
    )
