"""Observation coverage of a tile at a week: why a week's map is certain or not.

The weekly cubes count, per pixel, the clear Sentinel-2 observations and the valid
Sentinel-1 observations of the week (``n_obs``, sensor x y x x, uint8). The coverage COG of
week w stacks, as uint16 (nodata 65535, never a count):

* band 1 ``clear_optical_season``: clear optical observations in weeks 1..w (what the
  week's crop map and SOS were made from),
* band 2 ``clear_optical_week``: clear optical observations in week w,
* band 3 ``radar_week``: Sentinel-1 observations in week w (0: no radar that week).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
from affine import Affine

from cropassets.core.objstore import Location
from cropassets.core.publish.cog import write_cog

COVERAGE_NODATA = 65535
COVERAGE_BANDS = ("clear_optical_season", "clear_optical_week", "radar_week")


def read_cube_counts(path: str | Path) -> np.ndarray:
    """``n_obs`` of a weekly cube: (2, y, x) uint8, [clear S2, valid S1] observations.

    Raises:
        FileNotFoundError: The cube does not exist, naming it.
        ValueError: The cube has no ``n_obs`` with sensors s2 and s1.
    """
    from cropassets.core.storage import open_zarr

    ds = open_zarr(path)
    sensors = set(ds["n_obs"]["sensor"].values.tolist()) if "n_obs" in ds else set()
    if not {"s2", "s1"} <= sensors:
        raise ValueError(f"weekly cube {path} has no n_obs (sensor: s2, s1); variables: "
                         f"{sorted(str(v) for v in ds.data_vars)}")
    return ds["n_obs"].sel(sensor=["s2", "s1"]).values.astype(np.uint8, copy=False)


def coverage_counts(weeks: Iterable[np.ndarray]) -> np.ndarray:
    """Coverage bands of the last of ``weeks`` from each week's counts, one week at a time.

    Only a running uint32 season sum and the last week are held, so ``weeks`` may be a
    generator that reads each cube as it is needed: counting 28 weeks of a full 10980² tile
    peaked at 1.64 GB (reads and the uint16 result included) instead of holding every
    week's counts (6.8 GB) and their uint32 copies.

    Args:
        weeks: ``n_obs`` of weeks 1..w in order, each (2, y, x): clear S2, valid S1.

    Returns:
        (3, y, x) uint16: clear optical observations in weeks 1..w, clear optical
        observations in week w, radar observations in week w.

    Raises:
        ValueError: No week, or weeks of different shapes.
    """
    season: np.ndarray | None = None
    last: np.ndarray | None = None
    shape: tuple[int, ...] = ()
    for i, w in enumerate(weeks, 1):
        if season is None:
            shape = w.shape
            season = np.zeros(w.shape[1:], np.uint32)
        if w.shape != shape or w.ndim != 3 or w.shape[0] != 2:
            raise ValueError(f"counts of week {i} have shape {w.shape}; expected (2, y, x) "
                             f"like week 1 {shape}")
        season += w[0]
        last = w
    if season is None or last is None:
        raise ValueError("coverage needs the counts of at least one week")
    out = np.empty((3, *season.shape), np.uint16)
    np.minimum(season, COVERAGE_NODATA - 1, out=out[0], casting="unsafe")
    out[1:] = last
    return out


def write_coverage_cog(path: str | Path, counts: np.ndarray, crs: str, transform: Affine,
                       tags: Mapping[str, object] | None = None) -> Location:
    """Write the coverage COG (:func:`coverage_counts` bands), tagged with its maxima."""
    if counts.ndim != 3 or counts.shape[0] != 3:
        raise ValueError(f"coverage counts have shape {counts.shape}; expected (3, y, x)")
    extra = {"product": "coverage",
             "clear_optical_season_max": int(counts[0].max()),
             "radar_present": str(bool(counts[2].any())).lower()}
    return write_cog(path, counts.astype(np.uint16), crs, transform, COVERAGE_NODATA,
                     overview_resampling="nearest", tags={**(tags or {}), **extra},
                     band_descriptions=list(COVERAGE_BANDS))
