"""Quality of the models: the knee week, accuracy floors, class coverage of the samples."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from cropassets.core.quality.check_result import (
    MIN_CURRENT_SEASON_ACCURACY,
    MIN_SAMPLES_PER_CLASS,
    MIN_VALIDATION_ACCURACY,
    QualityResult,
)


def knee_check(knee_week: int | None, lengths: Sequence[int], rule: str = "") -> QualityResult:
    """A knee week exists and lies within the trained sequence lengths.

    Args:
        knee_week: Minimum season length from the knee report, weeks (None: none found).
        lengths: Sequence lengths with a trained checkpoint, weeks.
        rule: How the knee was chosen (:class:`cropassets.ml.knee.KneeResult` ``rule``).
    """
    ls = sorted(int(v) for v in lengths)
    ok = knee_week is not None and bool(ls) and ls[0] <= knee_week <= ls[-1]
    rng = f"{ls[0]}..{ls[-1]}" if ls else "none"
    return QualityResult(ok, f"knee week {knee_week} within trained weeks {rng}" if ok else
                         f"no knee week within trained weeks {rng} (knee: {knee_week})", {
                             "knee_week": knee_week if knee_week is not None else -1,
                             "rule": rule, "trained_weeks": ls,
                             "first_trained_week": ls[0] if ls else -1,
                             "last_trained_week": ls[-1] if ls else -1})


def accuracy_floor(k: int, validation_accuracy: float, current_accuracy: float | None,
                   knee_week: int | None, full_season_week: int,
                   min_validation: float = MIN_VALIDATION_ACCURACY,
                   min_current: float = MIN_CURRENT_SEASON_ACCURACY) -> QualityResult:
    """Accuracy floors of the checkpoint of sequence length ``k``.

    The floors bind (severity ``"error"``) from the knee week on, the checkpoints that
    produce final maps; before the knee is known only the full-season checkpoint is held to
    them. Earlier checkpoints are reported with severity ``"warn"`` when below.

    Args:
        k: Sequence length, weeks.
        validation_accuracy: Overall accuracy on the validation fields (0-1).
        current_accuracy: Overall accuracy on the current season's held-back labels (0-1),
            None where there are none (then only the validation floor applies).
        knee_week: Knee from the knee report, None before it exists.
        full_season_week: Length of the longest season, weeks.
        min_validation: Validation floor.
        min_current: Current-season floor.
    """
    binds_from = knee_week if knee_week is not None else full_season_week
    binding = k >= binds_from
    below = []
    if not validation_accuracy >= min_validation:  # NaN counts as below
        below.append(f"validation {validation_accuracy:.3f} < {min_validation}")
    if current_accuracy is not None and not current_accuracy >= min_current:
        below.append(f"current season {current_accuracy:.3f} < {min_current}")
    where = f"k={k} {'>=' if binding else '<'} week {binds_from} " + (
        "(knee)" if knee_week is not None else "(full season; no knee report yet)")
    return QualityResult(not below, (f"below the floors: {', '.join(below)}; " if below else
                                     "accuracy floors met; ") + where, {
        "validation_accuracy": float(validation_accuracy),
        "current_season_accuracy": float("nan") if current_accuracy is None
        else float(current_accuracy),
        "min_validation_accuracy": min_validation, "min_current_season_accuracy": min_current,
        "floors_bind_from_week": binds_from, "binding": binding,
        "knee_week": knee_week if knee_week is not None else -1},
        severity="error" if binding else "warn")


def class_coverage(labels: np.ndarray, class_names: Mapping[int, str],
                   min_per_class: int = MIN_SAMPLES_PER_CLASS) -> QualityResult:
    """Every class of the legend has enough labelled samples this week.

    Args:
        labels: (N,) class code of each sample.
        class_names: Code -> name of every class expected.
        min_per_class: Fewest samples per class that pass.
    """
    labels = np.asarray(labels)
    counts = {str(class_names[c]): int((labels == c).sum()) for c in sorted(class_names)}
    short = [n for n, v in counts.items() if v < min_per_class]
    return QualityResult(not short, f"classes under {min_per_class} samples: {short}" if short
                         else f"every class has >= {min_per_class} samples", {
                             "samples": int(labels.size), "samples_per_class": counts,
                             "short_classes": short, "min_per_class": min_per_class})
