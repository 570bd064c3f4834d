"""Train/validation(/test) splits by field, never by pixel (DESIGN rule 3).

Neighbouring pixels of one field are near-copies; splitting pixels would put copies of the
same field on both sides and report fantasy accuracy. Fields are therefore assigned whole
to one set, stratified by class (each class contributes fields to every set), and the
assignment is a pure function of (labels, field ids, fractions, seed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["FieldSplit", "field_classes", "split_fields"]


@dataclass(frozen=True)
class FieldSplit:
    """Field ids of each set (sorted int64 arrays, pairwise disjoint).

    Attributes:
        train: Fields to fit on.
        val: Fields for early stopping and the reported validation metrics.
        test: Fields held out entirely (empty when no test fraction was asked for).
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def masks(self, field_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(N,) bool pixel masks of the train, val and test sets for per-pixel field ids."""
        f = np.asarray(field_ids)
        return np.isin(f, self.train), np.isin(f, self.val), np.isin(f, self.test)

    def to_dict(self) -> dict[str, list[int]]:
        """Plain-type form."""
        return {k: [int(v) for v in getattr(self, k)] for k in ("train", "val", "test")}


def field_classes(labels: np.ndarray, field_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One class per field.

    Args:
        labels: (N,) per-pixel class labels (codes).
        field_ids: (N,) per-pixel field ids.

    Returns:
        ``(fields, classes)``: sorted unique field ids and each field's class.

    Raises:
        ValueError: If the arrays differ in length or a field carries several classes.
    """
    y = np.asarray(labels)
    f = np.asarray(field_ids)
    if y.shape != f.shape or y.ndim != 1:
        raise ValueError(
            f"labels and field_ids must be 1-D of equal length, got {y.shape} and {f.shape}"
        )
    pairs = np.unique(np.stack([f.astype(np.int64), np.unique(y, return_inverse=True)[1]]),
                      axis=1)
    fields, counts = np.unique(pairs[0], return_counts=True)
    if (counts > 1).any():
        bad = fields[counts > 1][:10].tolist()
        raise ValueError(f"fields {bad} carry more than one class label")
    classes = np.unique(y)[pairs[1]]
    return pairs[0], classes


def split_fields(
    labels: np.ndarray,
    field_ids: np.ndarray,
    *,
    val_fraction: float = 0.25,
    test_fraction: float = 0.0,
    seed: int = 0,
    class_names: Sequence[str] | dict[object, str] | None = None,
) -> FieldSplit:
    """Stratified split of fields into train/validation(/test) sets.

    For every class its fields (sorted by id) are shuffled with
    ``numpy.random.default_rng(seed)`` and cut: ``max(1, round(val_fraction * n))``
    validation fields, the same rule for test when ``test_fraction > 0``, the rest train
    (at least one). Deterministic for a seed.

    Args:
        labels: (N,) per-pixel class labels.
        field_ids: (N,) per-pixel field ids.
        val_fraction: Share of each class's fields for validation, in (0, 1).
        test_fraction: Share for a held-out test set, in [0, 1).
        seed: Shuffle seed.
        class_names: Names for the error message: a list aligned with the sorted unique
            labels, or a mapping label → name.

    Returns:
        A :class:`FieldSplit`.

    Raises:
        ValueError: If a class has too few fields (2 without a test set, 3 with one); the
            message names every such class and its field count.
    """
    if not 0 < val_fraction < 1 or not 0 <= test_fraction < 1:
        raise ValueError(
            f"need 0 < val_fraction < 1 and 0 <= test_fraction < 1, got "
            f"{val_fraction}, {test_fraction}"
        )
    fields, classes = field_classes(labels, field_ids)
    uniq = np.unique(np.asarray(labels))
    need = 3 if test_fraction > 0 else 2

    def name(c: object) -> str:
        if isinstance(class_names, dict):
            return str(class_names.get(c, c))
        if class_names is not None:
            i = int(np.searchsorted(uniq, c))
            return str(class_names[i]) if i < len(class_names) else str(c)
        return str(c)

    per_class = {c.item() if isinstance(c, np.generic) else c: fields[classes == c] for c in uniq}
    short = {c: len(v) for c, v in per_class.items() if len(v) < need}
    if short:
        listed = ", ".join(f"{name(c)!r} (label {c!r}): {n} field(s)" for c, n in short.items())
        raise ValueError(
            f"too few labelled fields for a split by field: each class needs at least "
            f"{need} fields (train, validation{', test' if need == 3 else ''}); {listed}"
        )
    rng = np.random.default_rng(seed)
    out: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for c in uniq:
        fl = rng.permutation(np.sort(per_class[c]))
        n = len(fl)
        n_val = max(1, round(val_fraction * n))
        n_test = max(1, round(test_fraction * n)) if test_fraction > 0 else 0
        while n - n_val - n_test < 1:  # keep at least one training field
            if n_val >= n_test and n_val > 1:
                n_val -= 1
            else:
                n_test -= 1
        out["val"].append(fl[:n_val])
        out["test"].append(fl[n_val : n_val + n_test])
        out["train"].append(fl[n_val + n_test :])
    return FieldSplit(
        **{k: np.sort(np.concatenate(v)).astype(np.int64) for k, v in out.items()}
    )
