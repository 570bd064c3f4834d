"""Start of Season (SOS) from smoothed greenness series (TIMESAT-style amplitude rule)."""

from __future__ import annotations

import calendar
from datetime import date

import numpy as np
import xarray as xr


def amplitude_crossing(series: np.ndarray, t: np.ndarray, fraction: float = 0.2,
                       min_amplitude: float = 0.15) -> np.ndarray:
    """Time at which a rising series first crosses ``base + fraction * amplitude``.

    For each pixel, the peak is the maximum of the series so far, the base the minimum
    before that peak, and the amplitude their difference. The crossing is searched after
    the base and located by linear interpolation between time steps.

    Args:
        series: (T, ...) smoothed, gap-filled series (e.g. NDVI, unitless), T >= 1.
        t: (T,) time of each step (e.g. day of year of the composite's mid-week), increasing.
        fraction: Fraction of the amplitude above the base that defines the start.
        min_amplitude: Pixels whose rise so far is smaller have not started: NaN.

    Returns:
        (...) float32 crossing time in the units of ``t``; NaN where the season has not
        started (rise < ``min_amplitude``) or the series is NaN.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    x = np.asarray(series, dtype=np.float64)
    n = x.shape[0]
    t = np.asarray(t, dtype=np.float64)
    if t.shape != (n,):
        raise ValueError(f"t must have shape ({n},) to match series, got {t.shape}")
    flat = x.reshape(n, -1)
    finite = np.isfinite(flat).all(axis=0)
    filled = np.where(np.isfinite(flat), flat, -np.inf)
    peak_idx = filled.argmax(axis=0)
    idx = np.arange(n)[:, None]
    before_peak = np.where(idx <= peak_idx, np.where(np.isfinite(flat), flat, np.inf), np.inf)
    base_idx = before_peak.argmin(axis=0)
    cols = np.arange(flat.shape[1])
    peak = flat[peak_idx, cols]
    base = flat[base_idx, cols]
    amp = peak - base
    thr = base + fraction * amp
    above = (idx > base_idx) & (idx <= peak_idx) & (flat >= thr)
    i = above.argmax(axis=0)
    started = finite & (amp >= min_amplitude) & above.any(axis=0)
    i = np.clip(i, 1, n - 1)
    x0, x1 = flat[i - 1, cols], flat[i, cols]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.clip((thr - x0) / (x1 - x0), 0.0, 1.0)
    out = t[i - 1] + frac * (t[i] - t[i - 1])
    out[~started] = np.nan
    return out.reshape(x.shape[1:]).astype(np.float32)


def week_mid_days(n_weeks: int) -> np.ndarray:
    """Days since the season start of each weekly composite's mid-point: 3.5, 10.5, ..."""
    return 3.5 + 7.0 * np.arange(n_weeks)


def days_to_doy(days: np.ndarray, season_start: date) -> np.ndarray:
    """Convert days since ``season_start`` to day of year (1..366), NaN kept."""
    start_doy = season_start.timetuple().tm_yday
    year_len = 366 if calendar.isleap(season_start.year) else 365
    doy = start_doy + np.floor(days)
    return np.where(doy > year_len, doy - year_len, doy).astype(np.float32)


def start_of_season(series: xr.DataArray, season_start: date, fraction: float = 0.2,
                    min_amplitude: float = 0.15, clear_obs: np.ndarray | None = None,
                    radar_min_amplitude_db: float = 3.0, greenness: str = "ndvi",
                    radar: str = "vh") -> np.ndarray:
    """SOS day of year per pixel from a season series truncated at the current week.

    The optical estimate is the first crossing of base + ``fraction`` x amplitude of the
    greenness series. Where it is missing or not supported by a clear optical observation
    at or after the crossing (monsoon clouds: the gap-filled series is then only a
    carried-forward value), the same rule is applied to the radar series (VH in dB), whose
    rise after the flooded-paddy minimum marks rice transplanting and crop growth in
    general; it needs a rise of at least ``radar_min_amplitude_db``.

    Args:
        series: (feature, week, y, x) gap-filled, smoothed series of weeks 1..w.
        season_start: Monday of week 1.
        fraction: Fraction of the amplitude above the base that defines the start.
        min_amplitude: Minimum NDVI rise for the season to count as started.
        clear_obs: (week, y, x) count of clear optical observations per week (0 = clouded
            out); None = every week observed (optical estimate only).
        radar_min_amplitude_db: Minimum VH rise (dB) for the radar estimate.
        greenness: Feature used as the greenness index.
        radar: Radar feature (dB) used where optical data are clouded out.

    Returns:
        (y, x) float32 day of year, NaN where the season has not started by week w.
    """
    x = series.transpose("feature", "week", "y", "x")
    n_weeks = x.sizes["week"]
    t = week_mid_days(n_weeks)
    optical = amplitude_crossing(x.sel(feature=greenness).values, t, fraction, min_amplitude)
    days = optical
    if clear_obs is not None and radar in x["feature"].values:
        weeks = np.arange(n_weeks)[:, None, None]
        last_clear = np.where(np.asarray(clear_obs) > 0, weeks, -1).max(axis=0)
        supported = np.isfinite(optical) & (t[np.maximum(last_clear, 0)] >= optical) & (
            last_clear >= 0)
        radar_days = amplitude_crossing(x.sel(feature=radar).values, t, fraction,
                                        radar_min_amplitude_db)
        days = np.where(supported, optical, np.where(np.isfinite(radar_days), radar_days,
                                                     optical))
    return days_to_doy(days, season_start)
