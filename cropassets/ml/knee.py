"""The knee of accuracy against sequence length: the shortest season prefix worth mapping.

Rule (documented and reported as ``KneeResult.rule``):

1. **Noise.** Validation accuracies of separately trained models are noisy (a lucky or
   unlucky length makes false knees). The curve handed to ``kneed`` is the isotonic
   (non-decreasing, least-squares) fit of accuracy on length
   (:class:`sklearn.isotonic.IsotonicRegression`), a monotone envelope that averages dips
   instead of following them. The raw values stay in the report.
2. **Knee.** ``kneed.KneeLocator(lengths, fitted, curve="concave",
   direction="increasing")``.
3. **Honesty check.** The *tolerance set* is every length whose raw accuracy is within
   ``tolerance`` (default 0.02 = 2 points) of the best raw accuracy. If the knee lies in
   it, the knee is the minimum length (rule ``"kneed"``). If the knee's accuracy is still
   more than ``tolerance`` below the best, the minimum length is the first length after
   the knee that is in the set (rule ``"kneed+tolerance"``).
4. **No knee** (too few points, a flat or linear curve): the first length in the
   tolerance set (rule ``"tolerance"``).

The minimum length is given in steps, days, weeks and months (30.44 days) from
``time_step_days``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["DAYS_PER_MONTH", "KneeResult", "find_knee"]

DAYS_PER_MONTH = 365.25 / 12


@dataclass(frozen=True)
class KneeResult:
    """Where accuracy stops paying for more season.

    The minimum sequence length is a length k (an ``n_steps`` of training) given in four
    units, hence ``length_<unit>``; the field names are also the keys of the knee reports'
    JSON (:meth:`to_dict`, and ``knee.json`` of :mod:`cropassets.core.knee_record`).

    Attributes:
        length_steps: Minimum sequence length, time steps.
        length_days: Same, days (``length_steps * time_step_days``).
        length_weeks: Same, weeks.
        length_months: Same, months of 30.44 days.
        accuracy: Raw accuracy at ``length_steps``.
        max_accuracy: Best raw accuracy over all lengths.
        full_accuracy: Raw accuracy at the longest length.
        knee_steps: The kneed knee (``None`` when kneed found none).
        rule: ``"kneed"``, ``"kneed+tolerance"`` or ``"tolerance"`` (module docstring).
        explanation: One sentence saying which rule fired and why.
        tolerance: The accuracy tolerance used.
        time_step_days: Days per step.
        lengths: The lengths analysed (steps).
        accuracies: Raw accuracies.
        fitted: Isotonic fit handed to kneed.
    """

    length_steps: int
    length_days: float
    length_weeks: float
    length_months: float
    accuracy: float
    max_accuracy: float
    full_accuracy: float
    knee_steps: int | None
    rule: str
    explanation: str
    tolerance: float
    time_step_days: float
    lengths: tuple[int, ...]
    accuracies: tuple[float, ...]
    fitted: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain-type form."""
        d = asdict(self)
        for k in ("lengths", "accuracies", "fitted"):
            d[k] = list(d[k])
        return d


def _isotonic(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    from sklearn.isotonic import IsotonicRegression

    return IsotonicRegression(increasing=True).fit_transform(x, y)


def find_knee(
    lengths: Sequence[int] | np.ndarray,
    accuracies: Sequence[float] | np.ndarray,
    *,
    time_step_days: float = 7.0,
    tolerance: float = 0.02,
) -> KneeResult:
    """Minimum sequence length from an accuracy-vs-length curve (module docstring rule).

    Args:
        lengths: Sequence lengths, time steps (any order; sorted here; unique).
        accuracies: Accuracy (0-1) at each length, e.g. validation overall accuracy.
        time_step_days: Days per step, for the conversions.
        tolerance: Accuracy distance from the best that counts as "as good".

    Returns:
        A :class:`KneeResult`.

    Raises:
        ValueError: On empty or mismatched inputs, duplicate lengths or non-finite values.
    """
    x = np.asarray(lengths, dtype=np.float64)
    y = np.asarray(accuracies, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape or x.size == 0:
        raise ValueError(
            f"lengths and accuracies must be non-empty 1-D of equal size, got {x.shape}, "
            f"{y.shape}"
        )
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("lengths and accuracies must be finite")
    if len(np.unique(x)) != len(x):
        raise ValueError(f"lengths must be unique, got {x.tolist()}")
    order = np.argsort(x)
    x, y = x[order], y[order]
    fitted = _isotonic(x, y) if len(x) > 1 else y.copy()

    knee: int | None = None
    if len(x) >= 3 and np.ptp(fitted) > 1e-9:
        from kneed import KneeLocator

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # kneed warns when it finds no knee
            loc = KneeLocator(x, fitted, curve="concave", direction="increasing")
        if loc.knee is not None:
            knee = int(round(float(loc.knee)))

    best = float(y.max())
    in_tol = y >= best - tolerance - 1e-12
    first_ok = int(x[np.argmax(in_tol)])
    if knee is not None and in_tol[x == knee].any():
        chosen, rule = knee, "kneed"
        why = (
            f"kneed found the knee at {knee} steps on the isotonic fit, and its accuracy "
            f"is within {tolerance:.3f} of the best"
        )
    elif knee is not None:
        after = in_tol & (x >= knee)
        chosen, rule = int(x[np.argmax(after)]), "kneed+tolerance"
        why = (
            f"kneed found the knee at {knee} steps, but its accuracy "
            f"{float(y[x == knee][0]):.3f} is more than {tolerance:.3f} below the best "
            f"{best:.3f}; the first later length within tolerance is {chosen} steps"
        )
    else:
        chosen, rule = first_ok, "tolerance"
        why = (
            f"kneed found no knee (curve too short, flat or without a concave bend); the "
            f"first length within {tolerance:.3f} of the best accuracy {best:.3f} is "
            f"{chosen} steps"
        )
    days = chosen * float(time_step_days)
    return KneeResult(
        length_steps=chosen,
        length_days=days,
        length_weeks=days / 7.0,
        length_months=days / DAYS_PER_MONTH,
        accuracy=float(y[x == chosen][0]),
        max_accuracy=best,
        full_accuracy=float(y[-1]),
        knee_steps=knee,
        rule=rule,
        explanation=why,
        tolerance=float(tolerance),
        time_step_days=float(time_step_days),
        lengths=tuple(int(v) for v in x),
        accuracies=tuple(float(v) for v in y),
        fitted=tuple(float(v) for v in fitted),
    )
