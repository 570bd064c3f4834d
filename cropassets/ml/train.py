"""Train a CNN2D for one sequence length on labelled reference series.

``train(series, labels, field_ids, recipe, config=...)``: the data, what turns it into
model inputs (a :class:`~cropassets.ml.prepare.SeriesRecipe`, or just the sequence length
k for the default one) and how to optimise (:class:`TrainConfig`). The training pixels are
prepared by :func:`cropassets.ml.prepare.prepare_tensor` on their first ``n_steps`` steps,
exactly as inference at week ``n_steps`` will prepare the map's pixels (DESIGN rules 1-2):
the fitted recipe travels in the checkpoint. The split is by field (rule 3).

Optimisation: class-weighted cross-entropy (weights ``n / (C * n_c)`` over training pixels, so
every class counts the same whatever its pixel share), AdamW with a cosine learning-rate
decay over ``max_epochs``, mini-batches in a seeded random order, early stopping on the
(equally weighted) validation loss with restore of the best epoch's weights.

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
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from cropassets.ml.checkpoint import Checkpoint, library_versions
from cropassets.ml.device import select_device
from cropassets.ml.metrics import classification_metrics
from cropassets.ml.model import CNN2D, CNN2DEnsemble, ModelConfig, flops_per_sample
from cropassets.ml.prepare import SeriesRecipe, prepare_tensor, valid_pixels
from cropassets.ml.refit import (
    RefitRun,
    class_weights,
    deterministic,
    optimiser_step,
    shuffled_batches,
)
from cropassets.ml.splits import FieldSplit, split_fields

__all__ = ["Checkpoint", "TrainConfig", "resolve_classes", "train"]

Logger = Callable[[str], None] | None


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and architecture settings, seed and precision of :func:`train`.

    The schedule is counted in optimiser steps, not epochs, so a small training set is
    trained as long as a large one (a 236-pixel set got 30 steps in all under the old
    30-epoch rule): ``max_steps`` mini-batches of ``batch_size`` pixels drawn in a seeded
    order (reshuffled every pass), a linear warm-up over the first ``warmup_fraction`` of
    the steps, then a cosine decay to ``final_lr_fraction`` of ``lr``. Validation runs
    every ``eval_every`` steps; the weights of the best validation pass (``select_by``:
    highest accuracy by default) are kept, and training stops once ``patience_steps``
    steps (never before ``min_steps``) bring no better one. Choices measured on the real
    sets (``CROPASSETS_REALDATA``) with ``bench/bench_real_series.py`` (docs/benchmarks.md).

    Attributes:
        max_steps: Upper bound on optimiser steps.
        min_steps: Steps always run before early stopping may stop.
        eval_every: Steps between two validation passes.
        patience_steps: Steps without a new best validation loss before stopping.
        batch_size: Pixels per optimiser step (at most the training set).
        lr: Peak AdamW learning rate.
        warmup_fraction: Share of ``max_steps`` with a linear learning-rate warm-up.
        final_lr_fraction: Learning rate at ``max_steps`` as a share of ``lr``.
        weight_decay: AdamW weight decay.
        label_smoothing: Cross-entropy label smoothing.
        widths: Conv block widths of the CNN2D.
        series_widths: Temporal conv widths of the series branch
            (:class:`~cropassets.ml.model.ModelConfig`); used only when the recipe appends
            the series row (``SeriesRecipe.series_row``).
        pool_scales: Scale bins of the adaptive pool.
        pool_steps: Time bins of the adaptive pool.
        dropout: Dropout before the head.
        val_fraction: Share of each class's groups used for validation.
        max_pixels_per_field: Train on at most this many pixels of each training group
            (a seeded random choice; ``None``, the default, keeps all). The number of
            pixels dropped is reported in the metrics (``n_train_pixels_dropped``).
        select_by: Which validation pass's weights are kept: ``"accuracy"`` (highest
            overall accuracy, the lower loss among equals) or ``"loss"``. On real series
            the class-weighted validation loss rises from the first passes on (confident
            errors) while the accuracy still climbs for hundreds of steps: selecting by
            loss kept an under-trained model (East Africa, k=6: 0.41 test accuracy at the
            loss minimum, 0.73 validation accuracy later).
        ema_decay: Validate and keep an exponential moving average of the weights (and
            BatchNorm statistics) with this decay per step; 0 = the raw weights.
        refit: After the selection run, train a fresh network on the training AND
            validation pixels for as many passes as the selected weights had seen (same
            seed and schedule) and keep that one. The reported validation metrics stay
            those of the selection run (an estimate: the refit network has seen the
            validation pixels); ``metrics["refit"]`` says so. On the real French set
            (3 folds, 6 lengths) it raised overall accuracy by 1.5 points on average
            (full season 0.778 -> 0.816) for ~1.5x the training time: the validation
            quarter of a small reference set is too valuable to leave out.
        keep_selection: With ``refit`` on a small training set (see
            ``ensemble_max_pixels``), also keep the selection run's network (trained on
            the training pixels only) as a member of the served ensemble. No extra
            training (it is trained anyway), one more network to run when mapping.
        extra_refits: With ``refit`` on a small training set, this many further refit
            networks of seeds ``seed + 1, ...`` (the same target step, the same pixels)
            join the served ensemble (:class:`~cropassets.ml.model.CNN2DEnsemble`: the
            members' mean softmax); each costs one more refit run. Measured on the four
            real sets (``bench/bench_real_series.py --quick``, 24 set x length cells;
            library minus forest, overall accuracy points, mean / worst): the refit
            network alone +2.0 / -1.9; refit + selection network +2.0 / -1.5; two refit
            seeds +2.9 / -0.5; both + the selection network +2.9 / +0.3 at 1.5x the
            mapping cost (these with each seed's own selection run; the default, whose
            second refit takes the first's target step, benchmarked at +2.8 / -1.0).
            One network of seed 1 instead of 0 was +1.5 / -3.5: the seed alone moves a
            cell by up to 4 points, which the ensemble averages out.
        ensemble_max_pixels: Further members (``keep_selection``, ``extra_refits``) are
            trained only when training + validation pixels are at most this many
            (``None``: always); larger sets serve the single refit network. Why: an
            ensemble buys lower variance, which matters most on small reference sets,
            while its training cost grows with the pixels (the demo world, ~25,000
            pixels, stays within its 8-minute training budget) and every member
            multiplies the cost of mapping.
        overlap_refit: On the CPU with ``cpu_threads == 1``, train the refit network in a
            second thread while the selection run goes on (its learning-rate schedule
            depends on the step only, and it keeps the weights of every step the final
            best step could still ask for; :class:`~cropassets.ml.refit.RefitRun`). The
            result is bit-identical to the refit run afterwards; only the wall time
            changes (docs/benchmarks.md).
        max_val_pixels: Selection passes (every ``eval_every`` steps) score a seeded
            subset of at most this many validation pixels (``None``: all). The reported
            validation metrics always use all of them; ``metrics["n_val_pixels_selection"]``
            says how many chose the weights. On a 6,400-pixel validation set the passes
            cost a third of the selection run; every real set of the benchmark has
            fewer validation pixels than the default, so it changes nothing there.
        cpu_threads: torch intra-op threads for the optimisation loop on the CPU (the
            caller's setting is restored afterwards; ``None`` leaves it alone). The
            network is small, so thread synchronisation per operation dominates: a
            60-step fit took 2.1-4.4 s with 1 thread and 10-13 s with 2 on a loaded
            2-core machine (0.55 s against 20 s in another measurement).
        seed: Seed of the split (when :func:`train` draws it), the initial weights,
            dropout, the batch order, the pixel cap and the selection subset; refit
            networks beyond the first take ``seed + 1, ...``.
        precision: ``"fp32"`` (default, on every device) or ``"bf16"`` (the CNN's forward
            pass under bf16 autocast during the optimiser steps). Preprocessing,
            validation and the reported metrics are always fp32, and an autocast region
            around the call is switched off inside: on the test world, bf16 autocast
            (whole call or forward pass only, CPU) ended at 0.09-0.16 validation accuracy
            against 0.82-0.88 in fp32, so bf16 is opt-in (CUDA: not yet measured).
    """

    max_steps: int = 1500
    min_steps: int = 300
    eval_every: int = 50
    patience_steps: int = 400
    batch_size: int = 128
    lr: float = 3e-3
    warmup_fraction: float = 0.05
    final_lr_fraction: float = 0.02
    weight_decay: float = 1e-2
    label_smoothing: float = 0.0
    widths: tuple[int, ...] = (4, 8)
    series_widths: tuple[int, ...] = (32, 32, 32)
    pool_scales: int = 2
    pool_steps: int = 8
    dropout: float = 0.2
    val_fraction: float = 0.25
    max_pixels_per_field: int | None = None
    select_by: Literal["accuracy", "loss"] = "accuracy"
    ema_decay: float = 0.0
    cpu_threads: int | None = 1
    refit: bool = True
    keep_selection: bool = False
    extra_refits: int = 1
    ensemble_max_pixels: int | None = 10_000
    overlap_refit: bool = True
    max_val_pixels: int | None = 2048
    seed: int = 0
    precision: Literal["fp32", "bf16"] = "fp32"

    def __post_init__(self) -> None:
        if self.max_steps < 1 or self.eval_every < 1 or self.batch_size < 2:
            raise ValueError(
                f"need max_steps >= 1, eval_every >= 1 and batch_size >= 2, got "
                f"{self.max_steps}, {self.eval_every}, {self.batch_size}"
            )
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be 'fp32' or 'bf16', got {self.precision!r}")
        if self.select_by not in ("accuracy", "loss"):
            raise ValueError(f"select_by must be 'accuracy' or 'loss', got {self.select_by!r}")
        if self.extra_refits < 0:
            raise ValueError(f"extra_refits must be >= 0, got {self.extra_refits}")
        if not 0 <= self.warmup_fraction < 1 or not 0 <= self.final_lr_fraction <= 1:
            raise ValueError(
                f"need 0 <= warmup_fraction < 1 and 0 <= final_lr_fraction <= 1, got "
                f"{self.warmup_fraction}, {self.final_lr_fraction}"
            )

    def lr_at(self, step: int) -> float:
        """Learning rate of optimiser step ``step`` (0-based): warm-up, then cosine."""
        warm = int(self.warmup_fraction * self.max_steps)
        if step < warm:
            return self.lr * (step + 1) / warm
        t = (step - warm) / max(self.max_steps - warm, 1)
        floor = self.final_lr_fraction
        return self.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))


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
        recipe: The preprocessing (:class:`~cropassets.ml.prepare.SeriesRecipe`: sequence
            length k >= 3, smoothing, day grid, CWT scales and wavelet, series row), or
            just k for the default recipe. Its time axis is fixed here
            (:meth:`~cropassets.ml.prepare.SeriesRecipe.on_time_axis` with ``dates``: the
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
