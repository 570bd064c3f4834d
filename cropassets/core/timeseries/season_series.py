"""Season series: weekly cubes of weeks 1..w stacked, gap-filled and smoothed, chunk by chunk.

Not stored: ``sos_map`` computes the series of its week from the cubes where it is used
(:func:`season_series_as_stored`), so a new week costs one week of storage.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import xarray as xr

from cropassets.core.storage import as_stored, open_zarr, series_to_dataset
from cropassets.core.timeseries.smoothing import smooth_dataarray


def stack_cubes(paths: Sequence[str | Path], week_keys: Sequence[str],
                chunk: int = 1024) -> xr.Dataset:
    """Open weekly cubes lazily (dask) and stack them along a new ``week`` dim.

    Returns:
        ``features`` (feature, week, y, x) float32 and ``n_obs`` (sensor, week, y, x) uint8,
        chunked ``chunk`` x ``chunk`` in space with the week dim whole.
    """
    cubes = [open_zarr(p, dask=True) for p in paths]
    ds = xr.concat(cubes, dim="week").assign_coords(week=list(week_keys))
    return ds.transpose("feature", "sensor", "week", "y", "x").chunk(
        {"week": -1, "y": chunk, "x": chunk})


def season_series(cubes: xr.Dataset, cutoff: float, order: int = 3
                  ) -> tuple[xr.Dataset, dict[str, dict]]:
    """Gap-fill and smooth stacked cubes along ``week`` (lazy when the input is dask-backed).

    The cubes passed in must already be truncated to weeks 1..w: nothing else is read.

    Args:
        cubes: Output of :func:`stack_cubes` (or the same layout in memory).
        cutoff: Butterworth cutoff, cycles per week.
        order: Butterworth order.

    Returns:
        (dataset with one ``series_<feature>`` variable (week, y, x) per feature and
        ``n_obs_s2`` (week, y, x), Zarr encodings); see
        :func:`cropassets.core.storage.dataset_to_series` to read it back as
        (feature, week, y, x).
    """
    smooth = smooth_dataarray(cubes["features"], "week", cutoff, order)
    out, enc = series_to_dataset(smooth)
    # without the stored (sensor, y, x) chunking of the cube, which no longer fits
    out["n_obs_s2"] = cubes["n_obs"].sel(sensor="s2", drop=True).drop_encoding()
    crs = cubes.rio.crs
    if crs is not None:
        out = out.rio.write_crs(crs).rio.write_transform(cubes.rio.transform())
    return out, enc


def season_series_as_stored(cubes: xr.Dataset, cutoff: float, order: int = 3) -> xr.Dataset:
    """:func:`season_series` with the values the int16 Zarr encoding would keep (lazy).

    The series used to be stored as int16 (``series_to_dataset``) and SOS read it back;
    rounding the same way in memory keeps every SOS computed from it identical.
    """
    out, enc = season_series(cubes, cutoff, order)
    return as_stored(out, enc)
