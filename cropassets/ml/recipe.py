"""The preprocessing recipe: what turns raw (N, F, T) series into model inputs, as one object.

:class:`SeriesRecipe` holds the choices (sequence length, smoothing, day grid, CWT scales and
wavelet, the series row) and, once fitted on the training pixels, the statistics
(:class:`InputStats`) that inference applies unchanged; it is stored in the checkpoint.
The functions that apply it are in :mod:`cropassets.ml.prepare`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from cropassets.core.timeseries.timeaxis import day_offsets as dated_offsets
from cropassets.core.timeseries.timeaxis import needs_resampling, nominal_step_days, regular_grid
from cropassets.ml.cwt import DEFAULT_WAVELET, default_scales
from cropassets.ml.scalogram_stats import ScalogramStats

__all__ = [
    "DEFAULT_CUTOFF",
    "DEFAULT_ORDER",
    "DEFAULT_STEP_DAYS",
    "MIN_STEPS",
    "InputStats",
    "SeriesRecipe",
    "grid_length",
]

DEFAULT_CUTOFF = 0.2
"""Default Butterworth cutoff, cycles per time step (a period of 5 steps)."""
DEFAULT_ORDER = 3
"""Default Butterworth order."""
MIN_STEPS = 3
"""Shortest sequence length: the default cmor scales need more than 2 steps."""
DEFAULT_STEP_DAYS = 7.0
"""Grid step, days, when neither the recipe nor the series' dates give one."""


@dataclass(frozen=True)
class InputStats:
    """Everything fitted on training pixels that inference must reapply unchanged.

    Attributes:
        scalogram: Per-feature mean/std of ``log1p`` scalogram magnitudes.
        fill: (F, k) mean smoothed training curve per feature and step (feature units),
            used for feature series with no observation in the prefix.
    """

    scalogram: ScalogramStats
    fill: tuple[tuple[float, ...], ...]
    series_mean: tuple[float, ...] | None = None
    series_std: tuple[float, ...] | None = None

    @property
    def series_row(self) -> bool:
        """Whether the standardised smoothed series is appended as an extra scale row."""
        return self.series_mean is not None

    def to_dict(self) -> dict[str, Any]:
        """Plain-type form (lists of floats) for JSON or ``torch.save``."""
        return {
            "scalogram": self.scalogram.to_dict(),
            "fill": [list(r) for r in self.fill],
            "series_mean": None if self.series_mean is None else list(self.series_mean),
            "series_std": None if self.series_std is None else list(self.series_std),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any] | InputStats) -> InputStats:
        """Inverse of :meth:`to_dict` (an :class:`InputStats` passes through)."""
        if isinstance(d, InputStats):
            return d
        try:
            fill = tuple(tuple(float(v) for v in row) for row in d["fill"])
            scal = ScalogramStats.from_dict(d["scalogram"])
            mean = d.get("series_mean")
            std = d.get("series_std")
            mean = None if mean is None else tuple(float(v) for v in mean)
            std = None if std is None else tuple(float(v) for v in std)
        except (KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"input stats need 'scalogram' and 'fill', got {d!r}") from err
        if len(fill) != len(scal.mean) or len({len(r) for r in fill}) > 1:
            raise ValueError("input stats 'fill' must be (F, k) with F matching 'scalogram'")
        if (mean is None) != (std is None) or (
            mean is not None and not (len(mean) == len(std) == len(fill))  # type: ignore[arg-type]
        ):
            raise ValueError("input stats 'series_mean'/'series_std' must both be (F,) or None")
        return cls(scalogram=scal, fill=fill, series_mean=mean, series_std=std)

    @property
    def n_steps(self) -> int:
        """Sequence length k the stats were fitted for."""
        return len(self.fill[0])


def grid_length(n_steps: int, step_days: np.ndarray | Sequence[float] | None,
                time_step_days: float | None) -> int:
    """Time length K of the prepared input for ``n_steps`` dated steps (k when regular)."""
    if step_days is None:
        return int(n_steps)
    off = np.asarray(step_days, dtype=np.float64)
    if time_step_days is None or not needs_resampling(off, time_step_days):
        return int(n_steps)
    return int(regular_grid(off, time_step_days).size)


def _floats(values: Sequence[float] | np.ndarray | None) -> tuple[float, ...] | None:
    return None if values is None else tuple(float(v) for v in np.asarray(values).ravel())


@dataclass(frozen=True)
class SeriesRecipe:
    """What turns raw (N, F, T) series into model inputs (N, F, S', K): one object.

    Built before training (the choices), completed by :meth:`on_time_axis` (the day grid,
    the step offsets and the scales, from the training series' dates) and fitted by
    :func:`prepare_tensor` / :func:`prepare_inputs` on the training pixels (``stats``);
    the fitted recipe is stored in the checkpoint
    (:attr:`cropassets.ml.checkpoint.Checkpoint.recipe`) and inference applies it
    unchanged. Sequences given as lists or arrays are stored as tuples of floats, and a
    ``stats`` dict as :class:`InputStats`.

    Attributes:
        n_steps: Sequence length k, time steps (>= 3); only steps ``0..k-1`` are read.
        cutoff: Butterworth cutoff, cycles per time step of the series itself (the
            smoothing runs on the series' own steps, before any resampling), in (0, 0.5).
        order: Butterworth order.
        presmoothed: The series were already gap-filled and smoothed on exactly their
            first k steps, so smoothing is skipped (see :func:`smoothed_prefix`);
            training and inference must agree on it.
        time_step_days: Step of the regular day grid the CWT runs on, days; ``None``:
            not fixed yet (:meth:`on_time_axis` takes the median spacing of the dates,
            else 7 days).
        step_days: (k,) days of the series' steps since step 0; steps off the grid of
            ``time_step_days`` (dekads, calendar months, MODIS composites restarting on
            1 January) are linearly resampled onto it after smoothing. ``None``: the steps
            are taken as regular.
        scales: (S,) CWT scales in grid steps (a scale ``s`` of the default cmor wavelet is
            a period of ``s * time_step_days`` days); ``None``: ``default_scales(K)``, K
            the grid length.
        scales_days: (S,) CWT scales in days instead (exclusive with ``scales``): the same
            value means the same period whatever the time step. :meth:`on_time_axis` and
            fitting turn them into ``scales`` (``scales_days / time_step_days``).
        wavelet: pywt continuous wavelet name.
        series_row: Append the standardised smoothed series as row S (module docstring,
            step 6). With ``stats`` it is theirs (set from ``stats.series_row``).
        stats: Fill curves and normalisation fitted on training pixels; ``None``: not
            fitted yet (preparing series fits them on those series).
    """

    n_steps: int
    cutoff: float = DEFAULT_CUTOFF
    order: int = DEFAULT_ORDER
    presmoothed: bool = False
    time_step_days: float | None = None
    step_days: tuple[float, ...] | None = None
    scales: tuple[float, ...] | None = None
    scales_days: tuple[float, ...] | None = None
    wavelet: str = DEFAULT_WAVELET
    series_row: bool = True
    stats: InputStats | None = None

    def __post_init__(self) -> None:
        k = self.n_steps
        try:
            ok = not isinstance(k, bool) and int(k) == k and k >= MIN_STEPS
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"n_steps must be an integer >= {MIN_STEPS}, got {k!r}")
        step = self.time_step_days
        if step is not None and not (np.isfinite(step) and step > 0):
            raise ValueError(f"time_step_days must be a positive number of days, got "
                             f"{step!r}")
        set_ = object.__setattr__  # frozen: normalise the given values once, here
        set_(self, "n_steps", int(k))
        set_(self, "time_step_days", None if step is None else float(step))
        for name in ("step_days", "scales", "scales_days"):
            set_(self, name, _floats(getattr(self, name)))
        if self.scales is not None and self.scales_days is not None:
            raise ValueError("give scales (grid steps) or scales_days (days), not both")
        if self.step_days is not None:
            if len(self.step_days) != self.n_steps:
                raise ValueError(f"step_days has {len(self.step_days)} day offsets, expected "
                                 f"one per step of the prefix, n_steps={self.n_steps}")
            if self.time_step_days is None:
                raise ValueError("step_days need time_step_days (the day grid's step) to "
                                 "resample dated steps")
        if self.stats is not None:
            stats = InputStats.from_dict(self.stats)
            set_(self, "stats", stats)
            set_(self, "series_row", stats.series_row)

    # ---------------------------------------------------------------- derived
    @property
    def fitted(self) -> bool:
        """Whether the stats are fitted (the recipe can prepare inference inputs)."""
        return self.stats is not None

    @property
    def n_grid(self) -> int:
        """Time length K of the prepared input (k, or the day grid's length when resampled)."""
        return grid_length(self.n_steps, self.step_days, self.time_step_days)

    @property
    def day_offsets(self) -> np.ndarray:
        """(k,) float64 days of the steps since step 0.

        Regular steps of ``time_step_days`` without ``step_days`` (7 days while it is not
        fixed).
        """
        if self.step_days is not None:
            return np.asarray(self.step_days, dtype=np.float64)
        step = DEFAULT_STEP_DAYS if self.time_step_days is None else self.time_step_days
        return np.arange(self.n_steps, dtype=np.float64) * step

    @property
    def irregular_steps(self) -> bool:
        """Whether the steps are resampled onto the day grid (dated, off the grid)."""
        return self.step_days is not None and needs_resampling(
            self.day_offsets, float(self.time_step_days or DEFAULT_STEP_DAYS))

    def grid_scales(self) -> np.ndarray:
        """(S,) float64 CWT scales in grid steps.

        ``scales``, else ``scales_days / time_step_days``, else ``default_scales(K)``.

        Raises:
            ValueError: ``scales_days`` without ``time_step_days``.
        """
        if self.scales is not None:
            return np.asarray(self.scales, dtype=np.float64)
        if self.scales_days is not None:
            if self.time_step_days is None:
                raise ValueError("scales_days need time_step_days (days per grid step)")
            return np.asarray(self.scales_days, dtype=np.float64) / self.time_step_days
        return default_scales(self.n_grid)

    def on_time_axis(self, dates: Sequence[Any] | np.ndarray | None = None,
                     n_total: int | None = None) -> SeriesRecipe:
        """The recipe with its day grid, step offsets and scales fixed (what training stores).

        Args:
            dates: (T,) date of each step of the series (ISO strings, ``datetime64``,
                dates, or day numbers), strictly increasing; the first k give
                ``step_days`` (when the recipe has them too, they must agree). ``None``: the
                recipe's ``step_days``, else regular steps of ``time_step_days``.
            n_total: T, the series' step count (checked against k and the dates).

        Returns:
            A recipe with ``time_step_days`` (given, else the median spacing of all T
            dates, else 7 days), ``step_days`` (the k offsets, also when regular) and
            ``scales`` in grid steps (``scales_days`` converted, or the default for the
            grid length); ``scales_days`` is ``None``.

        Raises:
            ValueError: Dates missing, out of order or not one per step, a series shorter
                than k, or dates whose first k offsets differ from ``step_days``.
        """
        k = self.n_steps
        if n_total is not None and n_total < k:
            raise ValueError(f"series has {n_total} steps, fewer than the sequence length "
                             f"n_steps={k}")
        if dates is not None:
            off = dated_offsets(dates, n_steps=n_total)
            step = nominal_step_days(off) if self.time_step_days is None \
                else self.time_step_days
            off = off[:k]
            if self.step_days is not None and not np.allclose(off, self.step_days,
                                                              rtol=0, atol=1e-9):
                raise ValueError(
                    f"the dates put the first {k} steps at days {np.round(off, 1).tolist()}, "
                    f"the recipe's step_days at {list(self.step_days)}")
        elif self.step_days is not None:
            off = self.day_offsets
            step = float(self.time_step_days or DEFAULT_STEP_DAYS)
        else:
            step = DEFAULT_STEP_DAYS if self.time_step_days is None else self.time_step_days
            off = np.arange(k, dtype=np.float64) * step
        timed = replace(self, time_step_days=float(step), step_days=tuple(off.tolist()))
        return replace(timed, scales=tuple(timed.grid_scales().tolist()), scales_days=None)

    # ---------------------------------------------------------------- persistence
    def to_dict(self) -> dict[str, Any]:
        """Plain-type form (lists of floats, ``None`` where unset) for JSON or ``torch.save``."""
        def lst(v: tuple[float, ...] | None) -> list[float] | None:
            return None if v is None else list(v)

        return {
            "n_steps": self.n_steps,
            "cutoff": float(self.cutoff),
            "order": int(self.order),
            "presmoothed": bool(self.presmoothed),
            "time_step_days": self.time_step_days,
            "step_days": lst(self.step_days),
            "scales": lst(self.scales),
            "scales_days": lst(self.scales_days),
            "wavelet": str(self.wavelet),
            "series_row": bool(self.series_row),
            "stats": None if self.stats is None else self.stats.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any] | SeriesRecipe) -> SeriesRecipe:
        """Inverse of :meth:`to_dict` (a :class:`SeriesRecipe` passes through).

        Raises:
            ValueError: Without ``n_steps``, with unknown keys, or with invalid values.
        """
        if isinstance(d, SeriesRecipe):
            return d
        if not isinstance(d, dict) or "n_steps" not in d:
            raise ValueError(f"a series recipe needs at least 'n_steps', got {d!r}")
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"series recipe has unknown fields {unknown}")
        return cls(**d)

    @classmethod
    def of(cls, recipe: SeriesRecipe | int) -> SeriesRecipe:
        """``recipe`` itself, or the default recipe of sequence length ``recipe`` (an int)."""
        return recipe if isinstance(recipe, SeriesRecipe) else cls(recipe)
