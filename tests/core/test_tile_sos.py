"""SOS over a tile window by window equals SOS of the whole series at once."""

import datetime as dt

import numpy as np
import pytest
import xarray as xr

from cropassets.core import quality
from cropassets.core.storage import dataset_to_series, write_zarr_atomic
from cropassets.core.timeseries.season_series import season_series_as_stored, stack_cubes
from cropassets.core.timeseries.tile_sos import (
    SOS_NODATA,
    SosParams,
    sos_days,
    tile_sos,
    window_shape,
)

START = dt.date(2025, 5, 5)
PARAMS = SosParams(cutoff=0.2, order=3, fraction=0.2, min_amplitude=0.15,
                   radar_min_amplitude_db=3.0)
NY, NX, WEEKS = 200, 48, 8


@pytest.fixture(scope="module")
def cubes(tmp_path_factory):
    """Eight weekly cubes: NDVI rising from a per-pixel week, clouds, a never-seen corner."""
    tmp = tmp_path_factory.mktemp("cubes")
    rng = np.random.default_rng(3)
    onset = rng.uniform(1, 7, (NY, NX))
    paths, keys = [], []
    for w in range(WEEKS):
        ndvi = 0.2 + 0.6 / (1 + np.exp(-(w - onset) * 1.5)) + rng.normal(0, 0.02, (NY, NX))
        vh = -22 + 8 / (1 + np.exp(-(w - onset))) + rng.normal(0, 0.5, (NY, NX))
        cloudy = rng.random((NY, NX)) < 0.3
        ndvi[cloudy] = np.nan
        ndvi[:20, :10] = np.nan  # never observed
        vh[:20, :10] = np.nan
        n_s2 = np.where(np.isnan(ndvi), 0, 1).astype(np.uint8)
        n_s1 = np.where(np.isnan(vh), 0, 1).astype(np.uint8)
        ds = xr.Dataset(
            {"features": (("feature", "y", "x"), np.stack([ndvi, vh]).astype(np.float32)),
             "n_obs": (("sensor", "y", "x"), np.stack([n_s2, n_s1]))},
            coords={"feature": ["ndvi", "vh"], "sensor": ["s2", "s1"],
                    "y": 1620000 - 5 - 10 * np.arange(NY), "x": 620005 + 10 * np.arange(NX)})
        ds = ds.rio.write_crs("EPSG:32647")
        key = (START + dt.timedelta(weeks=w)).isoformat()
        write_zarr_atomic(ds, tmp / f"{key}.zarr")
        paths.append(tmp / f"{key}.zarr")
        keys.append(key)
    return paths, keys


def test_strips_give_the_whole_series_sos_and_check(cubes):
    paths, keys = cubes
    # tile_sos(chunk=32) works in dask blocks of 16 whatever its windows: the same GEMM
    # shapes here, so the comparison may be exact (docs/testing.md)
    stacked = stack_cubes(paths, keys, chunk=16)
    ds = season_series_as_stored(stacked, PARAMS.cutoff, PARAMS.order)
    series = dataset_to_series(ds).load()
    whole = sos_days(series, ds["n_obs_s2"].values, START, PARAMS)
    check = quality.gap_fill_check(series, stacked["features"], stacked["n_obs"])
    assert (whole != SOS_NODATA).mean() > 0.5 and (whole[:20, :10] == SOS_NODATA).all()

    block = 4 * 2 * WEEKS * 32 * 32  # series bytes of one 32 x 32 chunk
    for window_bytes, n_windows, window in ((block * 2 * 7, 1, (200, 48)),  # whole tile
                                            (block * 2, 7, (32, 48)),  # block rows
                                            (block, 14, (32, 32))):  # blocks
        got = tile_sos(paths, keys, START, PARAMS, season_series_as_stored, chunk=32,
                       window_bytes=window_bytes)
        assert (got.windows, got.window) == (n_windows, window)
        np.testing.assert_array_equal(got.doy, whole)
        assert got.fill.passed == check.passed
        assert got.fill.metadata == check.metadata
        assert got.no_clear_s2_share == pytest.approx(
            float((ds["n_obs_s2"].values == 0).mean()))
    corner = 200 / (NY * NX)  # plus the rare pixel clouded in all 8 weeks (0.3 ** 8)
    assert corner <= got.fill.metadata["legit_nan_share"] < corner + 1e-3


def test_windows_are_whole_chunks_within_the_budget():
    s2_tile = (10980, 10980)  # 11 chunks of 1024 a side; 7 features
    assert window_shape(7, 3, s2_tile, 1024, 2**29) == (1024, 6 * 1024)  # 84 MiB a chunk
    assert window_shape(7, 3, s2_tile, 1024, 11 * 2 * 84 * 2**20) == (2048, 10980)
    assert window_shape(7, 28, s2_tile, 1024, 2**29) == (1024, 1024)  # never under a chunk
    assert window_shape(2, 3, (100, 100), 64, 2**30) == (100, 100)
