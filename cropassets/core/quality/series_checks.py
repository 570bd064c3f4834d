"""Quality of season series: which (feature, pixel) pairs were observed, and the gap fill.

Definitions used here:

- *observed* (feature, pixel) in weeks 1..w: the weekly composite holds a finite value of
  the feature in at least one of those weeks, or the composite's count of valid
  observations of the feature's sensor is > 0 in at least one of them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import xarray as xr

from cropassets.core.quality.check_result import (
    FEATURE_SENSOR,
    MAX_FILL_FAILURE_SHARE,
    QualityResult,
    _share,
)


def observed_mask(raw: xr.DataArray, n_obs: xr.DataArray | None = None,
                  feature_sensor: Mapping[str, str] = FEATURE_SENSOR) -> xr.DataArray:
    """Which (feature, pixel) pairs were observed at least once (module docstring).

    Args:
        raw: (feature, week, y, x) weekly composites of weeks 1..w (NaN = no value).
        n_obs: (sensor, week, y, x) valid-observation counts, ``sensor`` coordinate values
            ``"s2"``/``"s1"``; None: only the composite values count.
        feature_sensor: Feature name -> sensor whose count applies.

    Returns:
        (feature, y, x) bool, lazy where the inputs are dask-backed.
    """
    seen = raw.notnull().any("week")
    if n_obs is None:
        return seen
    counted = (n_obs > 0).any("week")
    sensors = {str(s) for s in n_obs["sensor"].values}
    parts = []
    for f in raw["feature"].values:
        s = feature_sensor.get(str(f))
        part = seen.sel(feature=f)
        if s in sensors:
            part = part | counted.sel(sensor=s, drop=True)
        parts.append(part)
    return xr.concat(parts, dim="feature")


def gap_fill_counts(filled: xr.DataArray, raw: xr.DataArray,
                    n_obs: xr.DataArray | None = None) -> xr.Dataset:
    """Per-feature counts behind :func:`gap_fill_check`, computed (sum them over strips).

    Args:
        filled: (feature, week, y, x) series after gap-fill and smoothing, as stored.
        raw: (feature, week, y, x) weekly composites the series was built from.
        n_obs: (sensor, week, y, x) valid-observation counts of those composites.

    Returns:
        Dataset over ``feature``: ``observed``, ``unfilled``, ``invented`` (pixels) and
        ``nan_values`` (values), plus ``pixels`` (scalar, pixels of the area).
    """
    observed = observed_mask(raw, n_obs)
    any_nan = filled.isnull().any("week")
    any_val = filled.notnull().any("week")
    pixels = int(np.prod([filled.sizes[d] for d in ("y", "x")]))
    return xr.Dataset({
        "observed": observed.sum(("y", "x")),
        "unfilled": (observed & any_nan).sum(("y", "x")),
        "invented": (~observed & any_val).sum(("y", "x")),
        "nan_values": filled.isnull().sum(("week", "y", "x")),
        "pixels": pixels,
    }).compute()


def gap_fill_check(filled: xr.DataArray, raw: xr.DataArray, n_obs: xr.DataArray | None = None,
                   max_failed_share: float = MAX_FILL_FAILURE_SHARE) -> QualityResult:
    """The gap-filled series is complete exactly where the season so far was observed.

    A (feature, pixel) pair *fails* when it was observed in weeks 1..w (module docstring)
    but its gap-filled series still holds a NaN in some week (the fill failed, or the
    composite lost values its counts say were observed), or when it was never observed but
    the series holds a value (invented). Pairs never observed and all-NaN are legitimate:
    nothing was seen there yet this season.

    Args:
        filled: (feature, week, y, x) series after gap-fill and smoothing, as stored.
        raw: (feature, week, y, x) weekly composites the series was built from.
        n_obs: (sensor, week, y, x) valid-observation counts of those composites.
        max_failed_share: Largest share of failing pairs among the observed pairs (0-1).

    Returns:
        See :func:`gap_fill_verdict`.
    """
    return gap_fill_verdict(gap_fill_counts(filled, raw, n_obs), filled.sizes["week"],
                            max_failed_share)


def gap_fill_verdict(stats: xr.Dataset, weeks: int,
                     max_failed_share: float = MAX_FILL_FAILURE_SHARE) -> QualityResult:
    """The gap-fill check from :func:`gap_fill_counts` (of a tile, or summed over strips).

    Args:
        stats: Counts of :func:`gap_fill_counts` (``pixels``: of the whole area).
        weeks: Weeks of the series.
        max_failed_share: Largest share of failing pairs among the observed pairs (0-1).

    Returns:
        Metadata: ``failed_share`` (failing pairs / observed pairs), ``failed_pairs``,
        ``invented_pairs``, ``observed_share`` and ``legit_nan_share`` (never observed) of
        all pairs, ``nan_share_after_fill`` (NaN values / all values), per feature counts.
    """
    names = [str(f) for f in stats["feature"].values]
    pixels = int(stats["pixels"])
    pairs = pixels * len(names)
    n_obs_pairs = int(stats["observed"].sum())
    unfilled, invented = int(stats["unfilled"].sum()), int(stats["invented"].sum())
    failed = unfilled + invented
    failed_share = _share(failed, n_obs_pairs) if n_obs_pairs else (1.0 if failed else 0.0)
    per = {n: {"observed_share": round(_share(int(stats["observed"][i]), pixels), 6)
               if pixels else None,
               "unfilled_pixels": int(stats["unfilled"][i]),
               "invented_pixels": int(stats["invented"][i])} for i, n in enumerate(names)}
    passed = failed_share <= max_failed_share
    summary = (f"{failed} of {n_obs_pairs} observed (feature, pixel) series not gap-filled "
               f"or invented (share {failed_share:.4f}, maximum {max_failed_share})")
    n_values = pairs * weeks
    return QualityResult(passed, summary, {
        "failed_share": failed_share, "failed_pairs": failed, "unfilled_pairs": unfilled,
        "invented_pairs": invented, "observed_pairs": n_obs_pairs,
        "observed_share": _share(n_obs_pairs, pairs),
        "legit_nan_share": _share(pairs - n_obs_pairs, pairs),
        "nan_share_after_fill": _share(int(stats["nan_values"].sum()), n_values),
        "weeks": int(weeks), "pixels": pixels, "features": per,
        "max_failed_share": max_failed_share})
