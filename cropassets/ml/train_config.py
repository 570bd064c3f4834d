"""How a CNN2D is optimised: :class:`TrainConfig`.

Optimiser steps, batch, learning-rate schedule, refits, ensembles, precision, seed.
The data and the preprocessing are the arguments of :func:`cropassets.ml.train.train`
(:class:`~cropassets.ml.recipe.SeriesRecipe`); this is everything else a training run needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

__all__ = ["TrainConfig"]


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
