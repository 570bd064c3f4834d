"""Time in days: dated steps, regular day grids and linear resampling onto them.

A series' steps may carry dates. Everything that depends on *periods* (the CWT scales)
is defined on a regular grid of ``step_days`` days, so that a scale means the same period
in days whatever the sensor's step: 5-, 10- or 16-day composites, calendar months, or
MODIS' 16-day composites that restart on 1 January (one short step a year).

* :func:`day_offsets` turns dates (or numeric day offsets) into ``(T,)`` float64 days since
  the first step, refusing dates that are missing or out of order.
* :func:`regular_grid` is the grid ``0, d, 2d, ...`` that covers those offsets.
* :func:`resample_matrix` is the ``(T, K)`` linear-interpolation map from the dated steps to
  the grid (``x @ R``); for steps that already lie on the grid it is the identity, and
  callers skip it (:func:`needs_resampling`).

Dims: ``T`` dated steps, ``K`` grid steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import numpy as np

__all__ = [
    "check_same_steps",
    "day_offsets",
    "needs_resampling",
    "nominal_step_days",
    "regular_grid",
    "resample_matrix",
]

ON_GRID_TOLERANCE_DAYS = 1e-6
"""Offsets within this of the grid count as on the grid (no resampling)."""


def day_offsets(dates: Sequence[Any] | np.ndarray, name: str = "dates",
                n_steps: int | None = None) -> np.ndarray:
    """Days since the first step, for each step.

    Args:
        dates: (T,) dates: ``numpy.datetime64`` values, ISO strings (``"2024-03-01"``),
            :class:`datetime.date` / :class:`datetime.datetime`, or numbers (day offsets,
            any origin).
        name: How error messages name the input.
        n_steps: The series' step count, when the dates belong to one: one date per step.

    Returns:
        (T,) float64, days since step 0 (so ``[0.0, ...]``), strictly increasing.

    Raises:
        ValueError: If ``dates`` is not 1-D and non-empty, has not ``n_steps`` entries,
            holds a missing value (NaT/NaN) or an unparseable date, or is not strictly
            increasing (naming the first step out of order).
    """
    arr = np.asarray(dates)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of dates, got shape "
                         f"{arr.shape}")
    if n_steps is not None and arr.size != n_steps:
        raise ValueError(f"{name} has {arr.size} entries but the series has {n_steps} steps: "
                         "one date per step")
    if arr.dtype.kind in "iuf":
        days = arr.astype(np.float64)
        bad = ~np.isfinite(days)
    else:
        try:
            if arr.dtype.kind == "O" and all(isinstance(v, date | datetime) for v in arr):
                arr = np.array([np.datetime64(v) for v in arr])
            stamps = arr.astype("datetime64[s]")
        except (ValueError, TypeError) as err:
            raise ValueError(f"{name} must be dates (ISO strings, datetime64 or day numbers): "
                             f"{err}") from err
        bad = np.isnat(stamps)
        days = (stamps - stamps[0]).astype(np.float64) / 86400.0 if not bad[0] else (
            np.full(arr.shape, np.nan))
    if bad.any():
        raise ValueError(f"{name} has no date at steps {np.flatnonzero(bad).tolist()[:10]}: "
                         "every step needs one")
    days = days - days[0]
    step = np.diff(days)
    if (step <= 0).any():
        i = int(np.flatnonzero(step <= 0)[0])
        raise ValueError(
            f"{name} must be strictly increasing: step {i + 1} ({arr[i + 1]}) is not after "
            f"step {i} ({arr[i]})"
        )
    return days


def nominal_step_days(offsets: np.ndarray) -> float:
    """The median spacing of dated steps, days (the grid step when none is given)."""
    off = np.asarray(offsets, dtype=np.float64)
    if off.size < 2:
        raise ValueError("a nominal step needs at least two dated steps")
    return float(np.median(np.diff(off)))


def regular_grid(offsets: np.ndarray, step_days: float) -> np.ndarray:
    """The grid ``0, d, 2d, ...`` of ``d = step_days`` days up to the last offset.

    Args:
        offsets: (T,) days since step 0 (from :func:`day_offsets`).
        step_days: Grid step, days (> 0).

    Returns:
        (K,) float64 grid offsets, ``K = floor(last / d) + 1`` (a last offset within
        :data:`ON_GRID_TOLERANCE_DAYS` of a grid point counts as reaching it).
    """
    if not (np.isfinite(step_days) and step_days > 0):
        raise ValueError(f"step_days must be a positive number of days, got {step_days!r}")
    last = float(np.asarray(offsets, dtype=np.float64)[-1])
    n = int(np.floor((last + ON_GRID_TOLERANCE_DAYS) / step_days)) + 1
    return np.arange(n, dtype=np.float64) * float(step_days)


def needs_resampling(offsets: np.ndarray, step_days: float) -> bool:
    """Whether dated steps differ from the regular grid of ``step_days`` (same count)."""
    off = np.asarray(offsets, dtype=np.float64)
    grid = np.arange(off.size, dtype=np.float64) * float(step_days)
    return bool(np.abs(off - grid).max() > ON_GRID_TOLERANCE_DAYS)


def resample_matrix(offsets: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Linear interpolation from dated steps onto grid points, as a matrix.

    Args:
        offsets: (T,) strictly increasing days of the series' steps.
        grid: (K,) days to interpolate at, within ``[offsets[0], offsets[-1]]``.

    Returns:
        (T, K) float64 ``R`` with ``series @ R`` the interpolated series; each column has
        at most two non-zero weights that sum to 1.
    """
    off = np.asarray(offsets, dtype=np.float64)
    g = np.asarray(grid, dtype=np.float64)
    lo_bound, hi_bound = off[0] - ON_GRID_TOLERANCE_DAYS, off[-1] + ON_GRID_TOLERANCE_DAYS
    if g.size and (g.min() < lo_bound or g.max() > hi_bound):
        raise ValueError(f"grid days [{g.min()}, {g.max()}] leave the dated span "
                         f"[{off[0]}, {off[-1]}]: interpolation only, no extrapolation")
    r = np.zeros((off.size, g.size), dtype=np.float64)
    if off.size == 1:
        r[0, :] = 1.0
        return r
    hi = np.clip(np.searchsorted(off, g, side="right"), 1, off.size - 1)
    lo = hi - 1
    w = np.clip((g - off[lo]) / (off[hi] - off[lo]), 0.0, 1.0)
    cols = np.arange(g.size)
    r[lo, cols] = 1.0 - w
    r[hi, cols] += w
    return r


def check_same_steps(expected: np.ndarray, given: np.ndarray, tolerance_days: float,
                     what: str = "series") -> None:
    """Refuse dated steps that differ from the expected ones.

    Args:
        expected: (k,) day offsets a model was trained on.
        given: (>= k,) day offsets of the series offered to it (only the first k count).
        tolerance_days: Largest accepted difference per step, days.
        what: How error messages name the series.

    Raises:
        ValueError: On fewer steps, or a step further than ``tolerance_days`` from the
            expected day (naming the first such step and both offsets).
    """
    exp = np.asarray(expected, dtype=np.float64)
    got = np.asarray(given, dtype=np.float64)
    if got.size < exp.size:
        raise ValueError(f"{what} has {got.size} dated steps, fewer than the model's "
                         f"{exp.size}")
    diff = np.abs(got[: exp.size] - exp)
    if (diff > tolerance_days).any():
        i = int(np.flatnonzero(diff > tolerance_days)[0])
        raise ValueError(
            f"{what} steps do not match the model's: step {i} is day {got[i]:g} after step "
            f"0, the model's step {i} is day {exp[i]:g} (tolerance {tolerance_days:g} days); "
            f"expected day offsets {np.round(exp, 2).tolist()}"
        )
