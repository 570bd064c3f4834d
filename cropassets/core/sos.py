"""Start of Season (SOS) from smoothed greenness series (TIMESAT-style amplitude rule)."""

from __future__ import annotations

import numpy as np


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
