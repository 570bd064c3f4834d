"""Gap-filling and zero-phase Butterworth smoothing of per-pixel time series.

Weekly composites give every pixel a time series with gaps (clouds, missing scenes). Each
series is gap-filled by linear interpolation along time and then smoothed with a zero-phase
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
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
from scipy import signal

if TYPE_CHECKING:
    import xarray as xr

DEFAULT_CUTOFF = 0.25
"""Default cutoff, cycles per time step (0.25 = a period of 4 steps, i.e. 4 weeks)."""

DEFAULT_ORDER = 3
"""Default Butterworth order."""

_BLOCK_VALUES = 110_000
"""Values (series x time steps) processed per vectorised block.

All per-block temporaries then stay small (a few hundred KiB), so the allocator recycles them
instead of mapping fresh memory for every block: first-touch page faults, not arithmetic,
otherwise dominate the cost (measured on a 2-vCPU VM: blocks of 3000 x 52 ran 1.6x slower
than blocks of 2048 x 52).
"""


def _block_rows(n_steps: int, n_series: int) -> int:
    return max(1, min(_BLOCK_VALUES // (n_steps + 2), n_series))


def _row_blocks(
    src: np.ndarray, dst: np.ndarray, rows: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield matching (rows, T) blocks of ``src`` and ``dst``, both (..., T), as views.

    ``dst`` is C-contiguous. ``src`` may be any strided view (e.g. time moved last from a
    (feature, week, y, x) chunk): its leading dims are merged as far as possible without a
    copy, so a transposed chunk is read block by block instead of first being copied whole.
    """
    n = src.shape[-1]
    lead = src.shape[:-1]
    flat_dst = dst.reshape(-1, n)
    for keep in range(len(lead) + 1):  # keep == len(lead) merges nothing: always a view
        try:
            grouped: np.ndarray = src.reshape(lead[:keep] + (-1, n), copy=False)
        except ValueError:
            continue
        break
    inner = grouped.shape[-2]
    for k, outer in enumerate(np.ndindex(*lead[:keep])):
        series = grouped[outer]
        for i in range(0, inner, rows):
            j = min(i + rows, inner)
            yield series[i:j], flat_dst[k * inner + i : k * inner + j]


def gapfill_linear(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Fill NaNs by linear interpolation along ``axis``.

    Time steps are taken as equally spaced. Interior gaps are interpolated linearly between
    the nearest valid neighbours; leading and trailing gaps take the nearest valid value
    (the behaviour of :func:`numpy.interp`). A series with no valid value stays all-NaN.
    Vectorised over all series: runs of NaN are located with one pass over the NaN mask and
    filled from their two bounding values; the only Python loop is over blocks of about
    ``_BLOCK_VALUES`` values, never over pixels. Every value depends only on its own series
    (elementwise float64 arithmetic, no BLAS), so the result is bit-identical whatever the
    memory layout or chunking of ``x``.

    Args:
        x: Array of any shape with time along ``axis``, e.g. dims (..., week); any unit.
            Floating dtypes are kept; other dtypes are converted to float64.
        axis: Time axis.

    Returns:
        New array of the same shape, dims and dtype as ``x`` (float64 for non-float input),
        same unit, without NaN except in all-NaN series. ``x`` is not modified.
    """
    x = np.asarray(x)
    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(np.float64)
    xm = np.moveaxis(x, axis, -1)
    n = xm.shape[-1]
    out = np.empty(xm.shape, dtype=dtype)
    if out.size == 0:
        return np.moveaxis(out, -1, axis)
    filler = _GapFiller(n, dtype, _block_rows(n, out.size // n))
    for src, dst in _row_blocks(xm, out, filler.rows):
        dst[...] = filler.fill(src)
    return np.moveaxis(out, -1, axis)


class _GapFiller:
    """Reusable work buffers that gap-fill blocks of series (see :func:`gapfill_linear`).

    Each block is copied into a buffer of shape (rows, n + 2) whose first and last columns are
    permanent NaN pads that never count as missing. Flattened, the buffer is one long series
    in which consecutive missing positions belong to the same run only within one row, and
    every run is bounded on both sides by a valid value or by a pad of its own row. A run
    bounded by a pad is a leading or trailing gap and takes the value on its other side; a
    run bounded by two pads is an all-NaN series and stays NaN.
    """

    def __init__(self, n: int, dtype: np.dtype, rows: int) -> None:
        self.rows = rows
        size = rows * (n + 2)
        self.values = np.full((rows, n + 2), np.nan, dtype=dtype)  # pad columns stay NaN
        self.isnan = np.empty((rows, n + 2), dtype=bool)
        # per-NaN work space, reused so that blocks do not allocate (and page-fault) afresh
        self.is_start = np.empty(size, dtype=bool)
        self.run_id = np.empty(size, dtype=np.intp)
        self.ints = np.empty(size, dtype=np.intp)
        self.work = np.empty((2, size), dtype=np.float64)

    def fill(self, block: np.ndarray) -> np.ndarray:
        """Gap-fill ``block`` (series, time); returns a view valid until the next call."""
        rows = block.shape[0]
        vals = self.values[:rows]
        vals[:, 1:-1] = block
        filled = vals[:, 1:-1]
        mask = self.isnan[:rows]
        np.isnan(vals, out=mask)
        mask[:, 0] = False  # pads are not gaps
        mask[:, -1] = False
        target = np.flatnonzero(mask)  # flat position of every NaN, ascending
        n_nan = target.size
        if n_nan == 0:
            return filled
        # runs of consecutive NaN positions (pads keep runs of different rows apart)
        is_start = self.is_start[:n_nan]
        is_start[0] = True
        step = np.subtract(target[1:], target[:-1], out=self.ints[: n_nan - 1])
        np.not_equal(step, 1, out=is_start[1:])
        run_id = np.cumsum(is_start, out=self.run_id[:n_nan])
        run_id -= 1
        start = np.flatnonzero(is_start)
        first = target[start]  # first NaN of each run
        last = np.empty_like(first)  # last NaN of each run
        last[:-1] = target[start[1:] - 1]
        last[-1] = target[-1]
        flat = vals.reshape(-1)
        before = flat[first - 1].astype(np.float64)  # valid value, or NaN pad
        after = flat[last + 1].astype(np.float64)
        np.copyto(before, after, where=np.isnan(before))  # leading gap
        np.copyto(after, before, where=np.isnan(after))  # trailing gap
        slope = after
        slope -= before
        slope /= last - first + 2
        # value at NaN position p of a run: before + slope * (p - first + 1), in float64
        value, tmp = self.work[0, :n_nan], self.work[1, :n_nan]
        np.subtract(target, np.take(first, run_id, out=self.ints[:n_nan]), out=value)
        value += 1.0
        value *= np.take(slope, run_id, out=tmp)
        value += np.take(before, run_id, out=tmp)
        flat[target] = value
        return filled


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
