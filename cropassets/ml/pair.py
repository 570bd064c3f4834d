"""The CNN2D and its random-forest baseline of one sequence length, fitted side by side.

Both models of week k are fitted on the same group split (what the served-model choice
compares). The CNN's training loop runs on one CPU thread (``TrainConfig.cpu_threads``),
so on a CPU-only machine the forest is grown in another thread at the same time (tree
building releases the GIL), beside the CNN's selection run and its refit (which itself
trains in a second thread, ``TrainConfig.overlap_refit``): a partition costs about half
the CPU time of the three fits on two cores instead of their sum. Each model is exactly
what it would be if fitted alone (seeded, and none depends on thread timing).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from cropassets.ml.baseline import BaselineResult, random_forest_baseline
from cropassets.ml.checkpoint import Checkpoint
from cropassets.ml.device import select_device
from cropassets.ml.recipe import SeriesRecipe
from cropassets.ml.splits import split_fields
from cropassets.ml.train import resolve_classes, train
from cropassets.ml.train_config import TrainConfig

__all__ = ["fit_pair"]


def fit_pair(
    series: np.ndarray,
    labels: np.ndarray,
    field_ids: np.ndarray,
    recipe: SeriesRecipe | int,
    *,
    class_names: Sequence[str] | dict[Any, str] | None = None,
    features: Sequence[str] | None = None,
    config: TrainConfig | None = None,
    device: torch.device | str | None = None,
    test: tuple[np.ndarray, np.ndarray] | None = None,
    concurrent: bool | None = None,
    log: Callable[[str], None] | None = None,
    forest_trees: int = 150,
    forest_max_samples: float | None = 0.5,
) -> tuple[Checkpoint, BaselineResult]:
    """Train the CNN2D and fit the forest of sequence length ``recipe.n_steps`` on one split.

    Args:
        series: (N, F, T >= n_steps) raw reference series, NaN = no observation.
        labels: (N,) class labels.
        field_ids: (N,) group ids.
        recipe: The CNN's preprocessing (:class:`~cropassets.ml.recipe.SeriesRecipe`), or
            the sequence length k for the default one; the forest smooths with its
            ``cutoff``, ``order`` and ``presmoothed``.
        class_names: As for :func:`~cropassets.ml.train.train`.
        features: F feature names.
        config: CNN training settings; ``config.seed`` also seeds the split and the forest.
        device: Torch device of the CNN.
        test: ``(series, labels)`` of the current season, scored by the forest.
        concurrent: Grow the forest in a second thread while the CNN trains (default:
            when the CNN trains on the CPU with a single-thread loop).
        log: Progress lines of the CNN's training.
        forest_trees: Trees of the forest.
        forest_max_samples: Share of the training pixels each tree's bootstrap draws.
            150 trees on half-size bootstraps cost 44 % of the library baseline's 200 full
            ones and scored the same on the demo world (k=14: validation 0.8547 against
            0.8548, current season 0.8222 against 0.8225; k=20: 0.8925 / 0.8607 against
            0.8933 / 0.8625): the pixels of one field are near-duplicates, so half of them
            carry nearly all it has to say. ``bench/bench_real_series.py`` keeps the
            library baseline (200 trees, full bootstraps) for its comparisons.

    Returns:
        ``(checkpoint, forest result)``; ``checkpoint.field_split`` is the forest's split.
    """
    cfg = config or TrainConfig()
    rec = SeriesRecipe.of(recipe)
    seed = cfg.seed
    _, _, names = resolve_classes(np.asarray(labels), class_names)
    split = split_fields(labels, field_ids, val_fraction=cfg.val_fraction, seed=seed,
                         class_names=names)
    dev = select_device() if device is None else torch.device(device)
    if concurrent is None:
        concurrent = dev.type == "cpu" and cfg.cpu_threads == 1

    def forest(n_jobs: int) -> BaselineResult:
        return random_forest_baseline(
            series, labels, field_ids, rec.n_steps, split=split, class_names=class_names,
            cutoff=rec.cutoff, order=rec.order, presmoothed=rec.presmoothed, seed=seed,
            features=list(features) if features else None, n_jobs=n_jobs, test=test,
            n_estimators=forest_trees, max_samples=forest_max_samples)

    def cnn() -> Checkpoint:
        return train(series, labels, field_ids, rec, class_names=class_names,
                     features=features, config=cfg, split=split, device=dev, log=log)

    if not concurrent:
        ckpt = cnn()
        return ckpt, forest(2)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(forest, 1)
        ckpt = cnn()
        return ckpt, pending.result()
