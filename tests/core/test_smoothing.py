import dask.array as dsa
import numpy as np
import pytest
import xarray as xr
from float_checks import assert_float32_close  # tests/ is on sys.path (pyproject)
from scipy import signal

from cropassets.core.timeseries.gapfill import gapfill_linear
from cropassets.core.timeseries.smoothing import (
    butterworth_coefficients,
    butterworth_matrix,
    padlen_for,
    smooth_dataarray,
    smooth_series,
)

CUTOFFS = [0.05, 0.1, 0.25, 0.45]
LENGTHS = [2, 3, 4, 5, 7, 8, 12, 13, 14, 20, 52]


def _gappy(rng, shape, scale=1.0, dtype=np.float32):
    """Random series (time last) with random NaN patterns: per-series NaN fraction in [0, 1],
    so leading/trailing gaps, single valid values and all-NaN series all occur."""
    x = (scale * rng.standard_normal(shape)).astype(dtype)
    frac = rng.random(shape[:-1] + (1,))
    x[rng.random(shape) < frac] = np.nan
    return x


def _interp_rows(x):
    """Reference gap-fill: np.interp per series (time last)."""
    t = np.arange(x.shape[-1])
    flat = x.reshape(-1, x.shape[-1])
    out = np.full(flat.shape, np.nan)
    for i, row in enumerate(flat):
        ok = ~np.isnan(row)
        if ok.any():
            out[i] = np.interp(t, t[ok], row[ok])
    return out.reshape(x.shape)


def _filtfilt(x, cutoff, order=3, axis=-1):
    b, a = butterworth_coefficients(cutoff, order)
    n = x.shape[axis]
    return signal.filtfilt(b, a, x, axis=axis, padtype="odd", padlen=padlen_for(n, order))


# --- gap-filling -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 2, 3, 7, 52])
def test_gapfill_equals_np_interp(dtype, n):
    rng = np.random.default_rng(n)
    x = _gappy(rng, (400, n), dtype=dtype)
    x[:3] = np.nan  # all-NaN series
    x[3:6, : n // 2] = np.nan  # long leading gap
    x[6:9, -(n // 2) :] = np.nan  # long trailing gap
    before = x.copy()
    got = gapfill_linear(x)
    assert got.dtype == dtype and got.shape == x.shape
    np.testing.assert_array_equal(x, before)  # input untouched
    tol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, _interp_rows(x), rtol=0, atol=tol)
    assert np.isnan(got[:3]).all()
    dead = np.isnan(x).all(axis=-1)
    assert not np.isnan(got[~dead]).any()
    np.testing.assert_array_equal(got[~np.isnan(x)], x[~np.isnan(x)])  # valid values kept


def test_gapfill_axis_and_leading_dims():
    rng = np.random.default_rng(1)
    x = _gappy(rng, (3, 4, 5, 17))  # (feature, y, x, week)
    ref = gapfill_linear(x)
    np.testing.assert_allclose(ref, _interp_rows(x), atol=1e-6)
    moved = np.moveaxis(x, -1, 1)  # (feature, week, y, x), non-contiguous
    got = gapfill_linear(moved, axis=1)
    # gap-filling is elementwise arithmetic (no BLAS): bit-identical in any layout
    np.testing.assert_array_equal(got, np.moveaxis(ref, -1, 1))


def test_gapfill_integer_input_becomes_float64():
    got = gapfill_linear(np.array([[1, 2, 3]]))
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, [[1.0, 2.0, 3.0]])


def test_gapfill_known_values():
    nan = np.nan
    x = np.array([[nan, 1.0, nan, nan, 4.0, nan], [nan] * 6, [nan, nan, 2.0, nan, nan, nan]])
    got = gapfill_linear(x)
    np.testing.assert_array_equal(got[0], [1, 1, 2, 3, 4, 4])
    assert np.isnan(got[1]).all()
    np.testing.assert_array_equal(got[2], [2] * 6)


# --- Butterworth matrix ------------------------------------------------------------------


def test_padlen_rule():
    assert [padlen_for(n) for n in range(1, 16)] == [
        0,
        1,
        2,
        3,
        4,
        5,
        6,
        7,
        8,
        9,
        10,
        11,
        12,
        12,
        12,
    ]
    assert padlen_for(100, order=2) == 9  # scipy default 3 * max(len(a), len(b))
    b, a = butterworth_coefficients(0.25)
    assert padlen_for(52) == 3 * max(len(a), len(b))


@pytest.mark.parametrize("cutoff", CUTOFFS)
@pytest.mark.parametrize("n", LENGTHS)
def test_matrix_equals_filtfilt(n, cutoff):
    rng = np.random.default_rng(n)
    x = rng.standard_normal((n, 6))  # six series along axis 0
    m = butterworth_matrix(n, cutoff)
    assert m.shape == (n, n)
    np.testing.assert_allclose(m @ x, _filtfilt(x, cutoff, axis=0), rtol=0, atol=1e-5)


def test_matrix_other_order_and_constant_preserved():
    for n in (4, 30):
        m = butterworth_matrix(n, 0.2, order=2)
        x = np.random.default_rng(0).standard_normal(n)
        np.testing.assert_allclose(m @ x, _filtfilt(x, 0.2, order=2), atol=1e-5)
        np.testing.assert_allclose(m @ np.ones(n), np.ones(n), atol=1e-9)  # DC gain 1


def test_matrix_cached_and_read_only():
    m = butterworth_matrix(52, 0.25)
    assert m is butterworth_matrix(52, 0.25)
    assert not m.flags.writeable
    with pytest.raises(ValueError):
        m[0, 0] = 1.0


def test_single_step_is_identity():
    np.testing.assert_array_equal(butterworth_matrix(1, 0.25), [[1.0]])
    x = np.array([[2.5], [np.nan]], dtype=np.float32)
    got = smooth_series(x, 0.25)
    assert got.dtype == np.float32
    assert got[0, 0] == np.float32(2.5) and np.isnan(got[1, 0])


@pytest.mark.parametrize("bad", [0, 0.0, 0.5, 0.7, -0.1, float("nan"), "x"])
def test_bad_cutoff_names_the_parameter(bad):
    for call in (
        lambda: butterworth_coefficients(bad),
        lambda: butterworth_matrix(10, bad),
        lambda: smooth_series(np.zeros((2, 10), np.float32), bad),
        lambda: smooth_dataarray(xr.DataArray(np.zeros((2, 10)), dims=("p", "week")), cutoff=bad),
    ):
        with pytest.raises(ValueError, match="cutoff"):
            call()


def test_bad_order_and_length():
    with pytest.raises(ValueError, match="order"):
        butterworth_coefficients(0.25, order=0)
    with pytest.raises(ValueError, match="n_steps"):
        butterworth_matrix(0, 0.25)


# --- gap-fill + smoothing ----------------------------------------------------------------


@pytest.mark.parametrize("cutoff", [0.1, 0.25, 0.45])
@pytest.mark.parametrize("n", [2, 3, 5, 12, 13, 20, 52])
def test_smooth_series_equals_gapfill_then_filtfilt(n, cutoff):
    rng = np.random.default_rng(100 + n)
    scale = 30.0  # e.g. backscatter in dB
    x = _gappy(rng, (300, n), scale=scale)
    got = smooth_series(x, cutoff)
    assert got.dtype == np.float32 and got.shape == x.shape
    ref = _filtfilt(_interp_rows(x), cutoff)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5 * scale)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))  # only all-NaN series


def test_smooth_series_axis():
    rng = np.random.default_rng(3)
    x = _gappy(rng, (2, 6, 7, 20))  # (feature, y, x, week)
    ref = smooth_series(x, 0.25)
    got = smooth_series(np.moveaxis(x, -1, 1), 0.25, axis=1)  # (feature, week, y, x)
    # a view of the same memory: with time moved back last it is x itself, so the same
    # BLAS calls run on the same rows: bit-identical (same computation, not another path)
    np.testing.assert_array_equal(got, np.moveaxis(ref, -1, 1))


def test_any_memory_layout_gives_the_same_result():
    """Strided and contiguous input: the same gap-fill bit for bit (elementwise arithmetic),
    the same smoothing to float32 rounding. The layout decides how series are grouped into
    GEMM calls, and the BLAS kernel (hence the summation order) depends on the GEMM shape,
    the CPU and the thread count, so smoothed values may differ by a few ulp."""
    rng = np.random.default_rng(4)
    x = _gappy(rng, (3, 4, 5, 6, 9))
    views = [np.asfortranarray(x), x[:, ::-1], np.moveaxis(x, 0, -1), x[::2, :, 1:, :, ::-2]]
    for view in views:
        dense = np.ascontiguousarray(view)
        for axis in range(x.ndim):
            assert_float32_close(
                smooth_series(view, 0.2, axis=axis), smooth_series(dense, 0.2, axis=axis)
            )
            np.testing.assert_array_equal(
                gapfill_linear(view, axis=axis), gapfill_linear(dense, axis=axis)
            )


def test_smooth_series_all_nan_stays_nan():
    x = np.full((4, 10), np.nan, dtype=np.float32)
    x[1, 3] = 1.0
    got = smooth_series(x, 0.25)
    assert np.isnan(got[[0, 2, 3]]).all()
    np.testing.assert_allclose(got[1], 1.0, atol=1e-6)


def test_truncation_rule_result_at_week_w_ignores_later_weeks():
    """Early-season honesty: the value at week w is computed from weeks 1..w only.

    Property: for every w, smoothing the first w steps gives the same result whatever the
    later steps hold (values or gaps), and it is exactly what training on sequence length w
    sees. Smoothing the whole season first and truncating afterwards is not the same thing.
    """
    rng = np.random.default_rng(5)
    n = 52
    x = _gappy(rng, (200, n))
    for w in range(1, n + 1):
        y = smooth_series(x[:, :w], 0.25)
        other = x.copy()
        other[:, w:] = _gappy(rng, (200, n - w), scale=100.0)  # change the future
        np.testing.assert_array_equal(smooth_series(other[:, :w], 0.25), y)
        # training on length-w sequences applies the same function to the same prefix
        np.testing.assert_array_equal(smooth_series(x[:, :w].copy(), 0.25), y)
    # the rule matters: with the future present the edge values differ
    w = 20
    full_then_cut = smooth_series(x, 0.25)[:, :w]
    assert not np.allclose(full_then_cut, smooth_series(x[:, :w], 0.25), equal_nan=True)


# --- xarray / dask -----------------------------------------------------------------------


def _cube(rng, week_chunk):
    data = _gappy(rng, (2, 32, 24, 20))  # (feature, y, x, week)
    data = np.ascontiguousarray(np.moveaxis(data, -1, 1))  # (feature, week, y, x)
    coords = {
        "feature": ["vv", "ndvi"],
        "week": np.arange(1, 21),
        "y": np.arange(32),
        "x": np.arange(24),
    }
    da = xr.DataArray(data, dims=("feature", "week", "y", "x"), coords=coords, attrs={"units": "1"})
    return da, da.chunk({"feature": 1, "week": week_chunk, "y": 16, "x": 12})


@pytest.mark.parametrize("week_chunk", [-1, 7])
def test_smooth_dataarray_dask_equals_numpy(week_chunk):
    da, lazy = _cube(np.random.default_rng(9), week_chunk)
    out = smooth_dataarray(lazy, "week", cutoff=0.25)
    assert isinstance(out.data, dsa.Array)  # still lazy
    assert out.dims == da.dims and out.dtype == np.float32
    assert len(out.chunksizes["week"]) == 1
    assert out.chunksizes["y"] == lazy.chunksizes["y"]
    assert out.attrs == da.attrs
    xr.testing.assert_identical(out.coords.to_dataset(), da.coords.to_dataset())
    ref = smooth_series(da.values, 0.25, axis=1)
    # dask smooths chunk by chunk, numpy the whole cube: other GEMM shapes, other BLAS
    # kernels, so equal to float32 rounding only (data of scale 1)
    assert_float32_close(out.compute().values, ref)
    eager = smooth_dataarray(da, "week", cutoff=0.25)
    assert_float32_close(eager.values, ref)
    # the same computation repeated (same chunking) is byte-identical
    np.testing.assert_array_equal(out.compute().values, out.compute().values)


def test_smooth_dataarray_unknown_dim():
    da = xr.DataArray(np.zeros((2, 5)), dims=("p", "t"))
    with pytest.raises(ValueError, match="week"):
        smooth_dataarray(da)
