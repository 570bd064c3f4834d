"""Zero-phase Butterworth smoothing of gap-filled per-pixel time series.

Weekly composites give every pixel a time series with gaps (clouds, missing scenes). Each
series is gap-filled by linear interpolation along time
(:mod:`cropassets.core.timeseries.gapfill`) and then smoothed with a zero-phase
(forward-backward) Butterworth low-pass filter.

Early-season honesty: to get the value for week ``w`` the caller truncates the series to weeks
``1..w`` *first* and passes only that prefix here; nothing after ``w`` can then influence the
result. Training on sequence length ``k`` must call the same functions on a length-``k`` prefix,
so that training and inference at week ``k`` see exactly the same processing (same edge
handling, same pad length). Smoothing the whole season and slicing afterwards is *not*
equivalent: the zero-phase filter looks both ways in time.

Smoothing is linear, so for a series length ``T`` it is one precomputed ``T x T`` matrix
(:func:`butterworth_matrix`, built by filtering the identity with :func:`scipy.signal.filtfilt`)
applied to all pixels with matrix multiplies, block by block.

Reproducibility: gap-filling is elementwise arithmetic, bit-identical whatever the layout or
chunking of the input. Smoothing runs float32 GEMMs through BLAS, whose kernel (and so its
summation order) depends on the CPU, the GEMM shape and the thread settings; how series are
grouped into GEMMs follows the input's layout and chunking. So the same input with the same
layout and chunking gives the same bytes on the same machine (every GEMM is kept single-
threaded, see :func:`_small_gemms`), while another layout or chunking (dask vs numpy, a
strided view vs a contiguous copy, another block of pixels) agrees only to float32 rounding,
a few ulp of the data's magnitude.

Units: values are whatever the input carries (reflectance, dB, index values); they pass
through unchanged in unit. Time steps are assumed equally spaced (one step = one week here);
the cutoff frequency is in cycles per time step.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np
from scipy import signal

from cropassets.core.timeseries.gapfill import _block_rows, _GapFiller, _row_blocks

if TYPE_CHECKING:
    import xarray as xr

DEFAULT_CUTOFF = 0.25
"""Default cutoff, cycles per time step (0.25 = a period of 4 steps, i.e. 4 weeks)."""

DEFAULT_ORDER = 3
"""Default Butterworth order."""


def butterworth_coefficients(
    cutoff: float, order: int = DEFAULT_ORDER
) -> tuple[np.ndarray, np.ndarray]:
    """Digital Butterworth low-pass filter coefficients.

    Args:
        cutoff: -3 dB cutoff frequency of a single pass, cycles per time step; must lie in
            the open interval (0, 0.5) (0.5 is the Nyquist frequency). 0.25 = a period of 4
            steps. (The forward-backward filter of :func:`butterworth_matrix` squares the
            gain, so its cutoff is at -6 dB.)
        order: Filter order, a positive integer.

    Returns:
        ``(b, a)``: numerator and denominator polynomial coefficients, float64 arrays of
        length ``order + 1``.

    Raises:
        ValueError: ``cutoff`` outside (0, 0.5) or ``order`` not a positive integer.
    """
    cutoff = _check_cutoff(cutoff)
    order = _check_order(order)
    b, a = signal.butter(order, cutoff, btype="lowpass", fs=1.0)
    return np.asarray(b, dtype=np.float64), np.asarray(a, dtype=np.float64)


def padlen_for(n_steps: int, order: int = DEFAULT_ORDER) -> int:
    """Pad length used by :func:`butterworth_matrix` for a series of ``n_steps`` steps.

    The rule: scipy's default ``3 * max(len(a), len(b)) = 3 * (order + 1)`` when the series
    is long enough (``n_steps > 3 * (order + 1)``), otherwise ``n_steps - 1``, the longest
    pad :func:`scipy.signal.filtfilt` accepts (it requires ``padlen < n_steps``). For order 3
    that is 12 for 13 or more steps and ``n_steps - 1`` for 1..12 steps. The rule depends
    only on ``n_steps`` and ``order``, so a length-``k`` prefix is padded the same way in
    training and at inference week ``k``.

    Args:
        n_steps: Series length, time steps (>= 1).
        order: Butterworth order.

    Returns:
        Number of steps of odd extension added at each end.
    """
    n_steps = _check_steps(n_steps)
    order = _check_order(order)
    return min(3 * (order + 1), n_steps - 1)


def butterworth_matrix(n_steps: int, cutoff: float, order: int = DEFAULT_ORDER) -> np.ndarray:
    """Matrix of zero-phase Butterworth smoothing for series of ``n_steps`` steps.

    ``M @ x`` equals ``scipy.signal.filtfilt(b, a, x, padtype="odd",
    padlen=padlen_for(n_steps, order))`` with ``(b, a) = butterworth_coefficients(cutoff,
    order)``: filtfilt is linear, so ``M`` is obtained by filtering the identity. The pad
    length follows :func:`padlen_for` (scipy's default when the series is long enough, else
    ``n_steps - 1``), so a short early season never raises scipy's padlen error. For
    ``n_steps == 1`` there is nothing to smooth and ``M`` is the 1x1 identity.

    Args:
        n_steps: Series length, time steps (>= 1).
        cutoff: Cutoff frequency, cycles per time step, in (0, 0.5).
        order: Butterworth order.

    Returns:
        Read-only float64 array of shape (n_steps, n_steps), dims (output step, input step),
        unitless. Cached per ``(n_steps, cutoff, order)``.

    Raises:
        ValueError: Invalid ``n_steps``, ``cutoff`` or ``order``.
    """
    return _matrix(_check_steps(n_steps), _check_cutoff(cutoff), _check_order(order))


@functools.lru_cache(maxsize=256)
def _matrix(n_steps: int, cutoff: float, order: int) -> np.ndarray:
    if n_steps == 1:
        m = np.eye(1)
    else:
        b, a = butterworth_coefficients(cutoff, order)
        m = signal.filtfilt(
            b, a, np.eye(n_steps), axis=0, padtype="odd", padlen=padlen_for(n_steps, order)
        )
        m = np.ascontiguousarray(m, dtype=np.float64)
    m.setflags(write=False)
    return m


@functools.lru_cache(maxsize=256)
def _matrix_t32(n_steps: int, cutoff: float, order: int) -> np.ndarray:
    """``butterworth_matrix(...).T`` as a contiguous read-only float32 array."""
    m = np.ascontiguousarray(_matrix(n_steps, cutoff, order).T, dtype=np.float32)
    m.setflags(write=False)
    return m


def smooth_series(
    x: np.ndarray, cutoff: float, order: int = DEFAULT_ORDER, axis: int = -1
) -> np.ndarray:
    """Gap-fill (:func:`gapfill_linear`) then Butterworth-smooth every series along ``axis``.

    Equivalent to ``filtfilt(b, a, gapfill_linear(x), axis=axis, padtype="odd",
    padlen=padlen_for(T, order))`` for ``T = x.shape[axis]``, computed as the float32 matrix
    multiply ``filled @ M.T`` with ``M = butterworth_matrix(T, cutoff, order)`` (time moved
    to the last axis), done block by block right after gap-filling each block of series, so
    no full-size gap-filled intermediate is materialised.
    Bit-identical for the same input, layout and chunking on the same machine; across
    layouts or chunkings equal to float32 rounding only (see the module docstring).
    Only the values passed in are used: for early-season processing at week ``w`` pass the
    prefix ``x[..., :w]`` (see the module docstring).

    Args:
        x: Array with time along ``axis``, e.g. dims (..., week), any unit; NaN = missing.
        cutoff: Cutoff frequency, cycles per time step, in (0, 0.5).
        order: Butterworth order.
        axis: Time axis.

    Returns:
        float32 array of the same shape, dims and unit as ``x``. All-NaN series stay all-NaN;
        every other series is NaN-free.

    Raises:
        ValueError: Invalid ``cutoff`` or ``order``, or an empty time axis.
    """
    cutoff = _check_cutoff(cutoff)
    order = _check_order(order)
    xm = np.moveaxis(np.asarray(x), axis, -1)
    n = _check_steps(xm.shape[-1])
    out = np.empty(xm.shape, dtype=np.float32)
    if out.size == 0:
        return np.moveaxis(out, -1, axis)
    matrix_t = _matrix_t32(n, cutoff, order)
    filler = _GapFiller(n, np.dtype(np.float32), _block_rows(n, out.size // n))
    for src, block_out in _row_blocks(xm, out, filler.rows):
        filled = filler.fill(src)
        _small_gemms(filled, matrix_t, block_out)
        # after gap-filling only all-NaN series hold NaN; do not rely on BLAS propagating it
        dead = np.isnan(filled[:, 0])
        if dead.any():
            block_out[dead] = np.nan
    return np.moveaxis(out, -1, axis)


_GEMM_MAX_MNK = 65536 * 4
"""Largest M*N*K that OpenBLAS runs single-threaded (its SMP_THRESHOLD_MIN x 4)."""


def _small_gemms(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """``out[...] = a @ b`` as a batch of GEMMs each small enough to stay single-threaded.

    Gap-filling runs between the products. A multithreaded BLAS call wakes worker threads that
    then busy-wait for the next call, competing with that numpy work: measured 10x slower
    overall on a 2-vCPU machine. Limiting the BLAS pool instead is process-wide state, and
    threadpoolctl (3.8) lets only one "controlling" thread change OpenBLAS limits, so from
    dask worker threads the limit is silently not applied. Splitting the rows keeps every GEMM
    below the size at which OpenBLAS goes parallel (other BLAS libraries keep such small
    products single-threaded too); numpy loops over the batch in C. Parallelism belongs to
    the caller (dask chunks).
    """
    rows, k = a.shape
    m = b.shape[1]
    sub = max(1, _GEMM_MAX_MNK // (k * m))
    whole = rows // sub * sub
    if whole:
        np.matmul(a[:whole].reshape(-1, sub, k), b, out=out[:whole].reshape(-1, sub, m))
    if whole < rows:
        np.matmul(a[whole:], b, out=out[whole:])


def smooth_dataarray(
    da: xr.DataArray,
    dim: str = "week",
    cutoff: float = DEFAULT_CUTOFF,
    order: int = DEFAULT_ORDER,
) -> xr.DataArray:
    """:func:`smooth_series` along ``dim`` of a (possibly dask-backed) DataArray.

    Runs through :func:`xarray.apply_ufunc` with ``dask="parallelized"``, so a dask-backed
    cube, e.g. dims (feature, week, y, x), is processed chunk by chunk in bounded memory.
    ``dim`` must be a single chunk; it is rechunked to one if it is not (other dims keep
    their chunks). Numpy-backed input is processed eagerly. The same chunking gives the
    same bytes; another chunking (or numpy vs dask) agrees to float32 rounding only (see
    the module docstring).

    Args:
        da: Input with a ``dim`` dimension (time steps equally spaced), any unit; NaN =
            missing.
        dim: Name of the time dimension.
        cutoff: Cutoff frequency, cycles per time step, in (0, 0.5).
        order: Butterworth order.

    Returns:
        float32 DataArray with the same dims (same order), coords, attrs and unit as ``da``
        (lazy if ``da`` is dask-backed).

    Raises:
        ValueError: ``dim`` missing or invalid ``cutoff``/``order``.
    """
    import xarray as xr

    if dim not in da.dims:
        raise ValueError(f"dim {dim!r} not in DataArray dims {da.dims}")
    cutoff = _check_cutoff(cutoff)
    order = _check_order(order)
    _check_steps(da.sizes[dim])
    if da.chunks is not None and len(da.chunksizes[dim]) > 1:
        da = da.chunk({dim: -1})
    out = xr.apply_ufunc(
        smooth_series,
        da,
        input_core_dims=[[dim]],
        output_core_dims=[[dim]],
        kwargs={"cutoff": cutoff, "order": order, "axis": -1},
        dask="parallelized",
        output_dtypes=[np.float32],
        keep_attrs=True,
    )
    return out.transpose(*da.dims)


def _check_cutoff(cutoff: float) -> float:
    try:
        value = float(cutoff)
    except (TypeError, ValueError):
        raise ValueError(
            f"cutoff must be a number in (0, 0.5) cycles per time step, got {cutoff!r}"
        ) from None
    if not 0.0 < value < 0.5:  # also rejects NaN
        raise ValueError(
            f"cutoff must lie in (0, 0.5) cycles per time step (0.5 = Nyquist), got {cutoff!r}"
        )
    return value


def _check_order(order: int) -> int:
    if not _is_whole(order) or order < 1:
        raise ValueError(f"order must be a positive integer, got {order!r}")
    return int(order)


def _check_steps(n_steps: int) -> int:
    if not _is_whole(n_steps) or n_steps < 1:
        raise ValueError(f"n_steps (series length) must be a positive integer, got {n_steps!r}")
    return int(n_steps)


def _is_whole(value: object) -> bool:
    if isinstance(value, bool | np.bool_):
        return False
    try:
        return int(value) == value  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        return False
