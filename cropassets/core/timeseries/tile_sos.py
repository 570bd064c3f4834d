"""Start of Season over a whole tile, computed window by window from the weekly cubes.

A season series of a Sentinel-2 tile (10980 x 10980 px, 5 features) holds 2.4 GB of
float32 per week of season: at week 28 the whole series would be ~68 GB. Here the cubes of
weeks 1..w are read lazily and each window (whole Zarr chunks: full-width strips early
in the season, blocks later) is gap-filled, smoothed, checked and turned into SOS days
before the next is read, so memory holds one window's series (sized by ``window_bytes``)
and the (y, x) outputs, whatever the tile and the week.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import xarray as xr

from cropassets.core import quality
from cropassets.core.quality.check_result import QualityResult
from cropassets.core.storage import dataset_to_series
from cropassets.core.timeseries.season_series import stack_cubes
from cropassets.core.timeseries.start_of_season import start_of_season

SOS_NODATA = 0
"""SOS nodata: day of year 0 does not exist (season not started yet, or not a crop)."""
WINDOW_BYTES = 512 * 2**20
"""Float32 bytes of one window's season series (feature x week x rows x columns)."""

SeriesFn = Callable[[xr.Dataset, float, int], xr.Dataset]
"""``season_series_as_stored``-like: stacked cubes, cutoff, order -> series dataset."""


@dataclass(frozen=True)
class SosParams:
    """The SOS rule (see :func:`~cropassets.core.timeseries.start_of_season.start_of_season`).

    Attributes:
        cutoff: Butterworth cutoff, cycles per week.
        order: Butterworth order.
        fraction: Share of the NDVI amplitude above the base that marks the start.
        min_amplitude: Smallest NDVI rise for a season to count as started.
        radar_min_amplitude_db: Smallest VH rise (dB) for the radar estimate.
    """

    cutoff: float
    order: int
    fraction: float
    min_amplitude: float
    radar_min_amplitude_db: float


@dataclass(frozen=True)
class TileSos:
    """SOS of a tile and what the asset reports about it.

    Attributes:
        doy: (y, x) uint16 day of year, :data:`SOS_NODATA` where not started.
        fill: The gap-fill check over the whole tile.
        no_clear_s2_share: Share of (week, pixel) with no clear Sentinel-2 observation.
        windows: Windows computed.
        window: (rows, columns) of a window.
    """

    doy: np.ndarray
    fill: QualityResult
    no_clear_s2_share: float
    windows: int
    window: tuple[int, int]


def sos_days(series: xr.DataArray, clear_obs: np.ndarray, season_start: date,
             params: SosParams) -> np.ndarray:
    """(y, x) uint16 SOS day of year of a loaded (feature, week, y, x) series, 0 = not started.

    ``clear_obs``: (week, y, x) clear Sentinel-2 observations per week.
    """
    sos = start_of_season(series, season_start, params.fraction, params.min_amplitude,
                          clear_obs=clear_obs,
                          radar_min_amplitude_db=params.radar_min_amplitude_db)
    return np.where(np.isfinite(sos), np.round(sos), SOS_NODATA).astype(np.uint16)


def window_shape(n_features: int, n_weeks: int, shape: tuple[int, int], chunk: int,
                 window_bytes: int = WINDOW_BYTES) -> tuple[int, int]:
    """(rows, columns) of the windows a tile is computed in.

    Windows are whole ``chunk`` x ``chunk`` blocks (the cubes' Zarr chunks, so each is read
    once): full-width strips of as many block rows as fit ``window_bytes`` of float32
    series, or, when one block row does not fit, one block row by as many blocks as fit
    (at least one).
    """
    ny, nx = shape
    block = 4 * n_features * n_weeks * chunk * chunk
    blocks_x = -(-nx // chunk)
    fit = max(1, window_bytes // block)
    if fit >= blocks_x:
        return min(ny, (fit // blocks_x) * chunk), nx
    return min(ny, chunk), fit * chunk


def tile_sos(cube_paths: Sequence[str | Path], week_keys: Sequence[str], season_start: date,
             params: SosParams, series_fn: SeriesFn, chunk: int = 1024,
             window_bytes: int = WINDOW_BYTES) -> TileSos:
    """SOS of one tile at week w = ``len(week_keys)`` from its cubes of weeks 1..w.

    Args:
        cube_paths: ``weekly_cube`` partitions of weeks 1..w, in week order.
        week_keys: Their week keys.
        season_start: Monday of week 1.
        params: Smoothing and SOS rule.
        series_fn: Stacked cubes -> gap-filled, smoothed series as the int16 store kept it
            (``season_series_as_stored``; a parameter so a check can be tested).
        chunk: The cubes' Zarr chunk edge, px: windows are whole chunks (dask works in
            quarters of them).
        window_bytes: Float32 bytes of one window's series (:func:`window_shape`).

    Returns:
        :class:`TileSos`; the day of year is computed even where the gap-fill check fails
        (the caller decides not to write it).
    """
    cubes = stack_cubes(cube_paths, week_keys, chunk=max(1, chunk // 2))
    ny, nx = cubes.sizes["y"], cubes.sizes["x"]
    rows, cols = window_shape(cubes.sizes["feature"], len(week_keys), (ny, nx), chunk,
                              window_bytes)
    doy = np.full((ny, nx), SOS_NODATA, dtype=np.uint16)
    counts: xr.Dataset | None = None
    no_clear = 0
    windows = 0
    for y0 in range(0, ny, rows):
        for x0 in range(0, nx, cols):
            ys, xs = slice(y0, min(y0 + rows, ny)), slice(x0, min(x0 + cols, nx))
            part = cubes.isel(y=ys, x=xs).persist()
            ds = series_fn(part, params.cutoff, params.order)
            series = dataset_to_series(ds).load()  # one dask graph: read, fill, smooth, round
            clear_obs = ds["n_obs_s2"].values
            c = quality.gap_fill_counts(series, part["features"], part["n_obs"])
            counts = c if counts is None else counts + c
            no_clear += int((clear_obs == 0).sum())
            doy[ys, xs] = sos_days(series, clear_obs, season_start, params)
            windows += 1
            del part, ds, series, clear_obs
            gc.collect()  # datasets with a .rio accessor are reference cycles: free them now
    assert counts is not None  # a tile has at least one row
    fill = quality.gap_fill_verdict(counts, len(week_keys))
    return TileSos(doy=doy, fill=fill, no_clear_s2_share=no_clear / (len(week_keys) * ny * nx),
                   windows=windows, window=(rows, cols))
