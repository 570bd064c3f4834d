"""Train/validation(/test) splits by group, never by pixel (DESIGN rule 3).

A *group* is the spatial unit a split never cuts: a field, a parcel or a location.
Neighbouring pixels of one field are near-copies, and the same parcel observed in two
seasons shares its soil, management and neighbourhood; splitting them would put copies on
both sides and report fantasy accuracy. Groups are therefore assigned whole to one set,
stratified by each group's majority class (each class contributes groups to every set),
and the assignment is a pure function of (labels, group ids, fractions, seed).

Group ids are separate from labels: one group may carry different classes (a parcel
under maize one season and wheat the next, pooled from several reference seasons).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["FieldSplit", "field_classes", "groups_per_class", "split_fields"]


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
    """The majority class of every group (ties: the smallest label).

    Args:
        labels: (N,) per-pixel class labels (codes).
        field_ids: (N,) per-pixel group ids (field, parcel or location).

    Returns:
        ``(groups, classes)``: sorted unique group ids and each group's majority class.

    Raises:
        ValueError: If the arrays differ in length or are not 1-D.
    """
    y = np.asarray(labels)
    f = np.asarray(field_ids)
    if y.shape != f.shape or y.ndim != 1:
        raise ValueError(
            f"labels and field_ids must be 1-D of equal length, got {y.shape} and {f.shape}"
        )
    uniq, y_idx = np.unique(y, return_inverse=True)
    groups, g_idx = np.unique(f, return_inverse=True)
    counts = np.zeros((len(groups), len(uniq)), dtype=np.int64)
    np.add.at(counts, (g_idx, y_idx), 1)
    return groups, uniq[counts.argmax(axis=1)]


def groups_per_class(labels: np.ndarray, field_ids: np.ndarray) -> dict[object, int]:
    """How many distinct groups carry each class (a group may count for several)."""
    y = np.asarray(labels)
    pairs = np.unique(np.stack([np.unique(y, return_inverse=True)[1],
                                np.unique(np.asarray(field_ids), return_inverse=True)[1]]),
                      axis=1)
    uniq = np.unique(y)
    n = np.bincount(pairs[0], minlength=len(uniq))
    return {(c.item() if isinstance(c, np.generic) else c): int(k)
            for c, k in zip(uniq, n, strict=True)}


def split_fields(
    labels: np.ndarray,
    field_ids: np.ndarray,
    *,
    val_fraction: float = 0.25,
    test_fraction: float = 0.0,
    seed: int = 0,
    class_names: Sequence[str] | dict[object, str] | None = None,
) -> FieldSplit:
    """Stratified split of groups into train/validation(/test) sets.

    Groups are stratified by their majority class (:func:`field_classes`). For every
    class its groups (sorted by id) are shuffled with ``numpy.random.default_rng(seed)``
    and cut: ``max(1, round(val_fraction * n))`` validation groups, the same rule for
    test when ``test_fraction > 0``, the rest train (at least one). Deterministic for a
    seed. No group is ever in two sets, whatever classes it carries.

    Args:
        labels: (N,) per-pixel (per-sample) class labels.
        field_ids: (N,) per-pixel group ids (field, parcel or location); a group may
            carry several classes (e.g. one parcel in several seasons).
        val_fraction: Share of each class's fields for validation, in (0, 1).
        test_fraction: Share for a held-out test set, in [0, 1).
        seed: Shuffle seed.
        class_names: Names for the error message: a list aligned with the sorted unique
            labels, or a mapping label → name.

    Returns:
        A :class:`FieldSplit`.

    Raises:
        ValueError: If the labels hold one class only, or a class is carried by too few
            groups (2 without a test set, 3 with one); the message names every such
            class and its group count. Also if a class ends up without training groups.
    """
    if not 0 < val_fraction < 1 or not 0 <= test_fraction < 1:
        raise ValueError(
            f"need 0 < val_fraction < 1 and 0 <= test_fraction < 1, got "
            f"{val_fraction}, {test_fraction}"
        )
    fields, classes = field_classes(labels, field_ids)
    uniq = np.unique(np.asarray(labels))
    if len(uniq) < 2:
        raise ValueError(
            f"labels hold a single class {uniq.tolist()}: a split for a classifier needs "
            f"at least two classes"
        )
    need = 3 if test_fraction > 0 else 2
    carried = groups_per_class(labels, field_ids)

    def name(c: object) -> str:
        if isinstance(class_names, dict):
            return str(class_names.get(c, c))
        if class_names is not None:
            i = int(np.searchsorted(uniq, np.asarray(c)))
            return str(class_names[i]) if i < len(class_names) else str(c)
        return str(c)

    per_class = {c.item() if isinstance(c, np.generic) else c: fields[classes == c] for c in uniq}
    short = {c: n for c, n in carried.items() if n < need}
    if short:
        listed = ", ".join(f"{name(c)!r} (label {c!r}): {n} field(s)" for c, n in short.items())
        raise ValueError(
            f"too few labelled groups (fields) for a split by group: each class needs at "
            f"least {need} groups (train, validation{', test' if need == 3 else ''}); "
            f"{listed}"
        )
    rng = np.random.default_rng(seed)
    out: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for c in per_class:
        fl = rng.permutation(np.sort(per_class[c]))
        n = len(fl)
        if n < 2:  # the majority of at most one group: train (its class sits elsewhere too)
            out["train"].append(fl)
            continue
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
    split = FieldSplit(
        **{k: np.sort(np.concatenate(v)).astype(np.int64) for k, v in out.items()}
    )
    in_train = np.isin(np.asarray(field_ids), split.train)
    missing = sorted(set(uniq.tolist()) - set(np.unique(np.asarray(labels)[in_train]).tolist()))
    if missing:
        raise ValueError(
            f"classes {[name(c) for c in missing]} occur only in groups whose majority class "
            f"is another one and none of those groups fell into the training set (seed "
            f"{seed}); give these classes more groups of their own or merge them"
        )
    return split
