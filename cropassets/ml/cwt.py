"""Continuous Wavelet Transform as one matrix multiply: scales, the matrix, its kernel.

For a fixed series length ``T`` (time steps), fixed scales and a fixed wavelet, the CWT that
``pywt.cwt(x, scales, wavelet, method="conv")`` computes is a linear map of ``x``. It is
precomputed here once as a ``(T, S*T)`` matrix ``M`` such that ``x @ M`` reproduces pywt's
coefficients exactly (edge behaviour, integrated-wavelet sampling and all), then applied to
a whole batch of series with one batched matmul in torch
(:func:`cropassets.ml.scalograms.cwt_magnitude`; the compute precision is chosen in
:mod:`cropassets.ml.cwt_precision`).

Scales are in units of time steps and frequencies in cycles per step, so nothing here
knows whether a step is a week, a 5-, 10- or 16-day composite.

Dims used throughout: ``N`` samples (pixels), ``F`` features (indices), ``S`` scales,
``T`` time steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import pywt
import torch

__all__ = [
    "DEFAULT_WAVELET",
    "cwt_matrix",
    "default_scales",
    "log_scales",
]

DEFAULT_WAVELET = "cmor1.5-1.0"
"""Complex Morlet, bandwidth B=1.5, centre frequency C=1.0 (cycles per unit scale)."""

NYQUIST = 0.5
"""Highest frequency a regular series resolves, in cycles per time step."""

_CPU_CHUNK_ROWS = 2048
"""Series per matmul on CPU: the (rows, 2*S*T) product stays in cache (measured ~2x faster
than one matmul over 80k series on a 2-core AVX-512 machine)."""
_CUDA_CHUNK_ROWS = 1 << 16
"""Series per matmul on CUDA: bounds the temporary product, large enough to fill the GPU."""


# --------------------------------------------------------------------------------------
# Scales
# --------------------------------------------------------------------------------------


def log_scales(n_scales: int, min_scale: float, max_scale: float) -> np.ndarray:
    """Log-spaced scales from ``min_scale`` to ``max_scale`` inclusive.

    Args:
        n_scales: Number of scales S (>= 1).
        min_scale: Smallest scale, in time steps (> 0).
        max_scale: Largest scale, in time steps (>= ``min_scale``).

    Returns:
        (S,) float64, increasing (a single scale ``[min_scale]`` when S == 1).

    Raises:
        ValueError: On a non-positive count or scale, or ``max_scale < min_scale``.
    """
    if int(n_scales) != n_scales or n_scales < 1:
        raise ValueError(f"n_scales must be a positive integer, got {n_scales!r}")
    if not (np.isfinite(min_scale) and min_scale > 0):
        raise ValueError(f"min_scale must be a finite positive number, got {min_scale!r}")
    if not (np.isfinite(max_scale) and max_scale >= min_scale):
        raise ValueError(
            f"max_scale must be finite and >= min_scale={min_scale!r}, got {max_scale!r}"
        )
    if n_scales == 1:
        return np.array([float(min_scale)])
    return np.geomspace(float(min_scale), float(max_scale), int(n_scales))


def default_scales(n_steps: int, n_scales: int = 16, wavelet: str = DEFAULT_WAVELET) -> np.ndarray:
    """Log-spaced scales spanning what a series of ``n_steps`` regular steps can resolve.

    * Lowest scale: the one whose wavelet centre frequency
      (``pywt.scale2frequency(wavelet, scale)``, cycles per step) equals the Nyquist
      frequency, 0.5 cycles per step. A smaller scale would describe oscillations faster
      than the sampling can represent: its coefficients carry aliasing, not signal.
      For ``cmor1.5-1.0`` (centre frequency 1.0) this is scale 2, a period of 2 steps.
    * Highest scale: the one whose period (1 / frequency, in steps) equals the series
      length. A longer period cannot complete one cycle inside the series, so its
      coefficients only echo the series mean and the zero padding beyond the edges.
      For ``cmor1.5-1.0`` this is scale ``n_steps``.

    Because scales are in steps, the same call serves weekly, 5-, 10- or 16-day
    composites. The result depends on ``n_steps``: store the scales used to train a model
    with it, and reuse them (not a recomputation) at inference.

    Note that the wavelet's support (``±8·scale`` steps for cmor) exceeds the series from
    about scale ``n_steps / 16`` up, so the upper scales are shaped by pywt's edge
    handling; this is deterministic for a given length and therefore consistent between
    training and inference on the same truncation.

    Args:
        n_steps: Series length T, in time steps (the highest scale needs T > 2 periods
            at Nyquist, i.e. T >= 3 for cmor).
        n_scales: Number of scales S.
        wavelet: A pywt continuous wavelet name.

    Returns:
        (S,) float64 scales in time steps, strictly increasing when S > 1.

    Raises:
        ValueError: On an unknown wavelet, or a series too short for two distinct scales.
    """
    _check_wavelet(wavelet)
    if int(n_steps) != n_steps or n_steps < 1:
        raise ValueError(f"n_steps must be a positive integer, got {n_steps!r}")
    centre = float(pywt.central_frequency(wavelet))  # cycles per step at scale 1
    min_scale = centre / NYQUIST
    # Guard the float division: the lowest frequency must not exceed Nyquist.
    while float(pywt.scale2frequency(wavelet, min_scale)) > NYQUIST:
        min_scale = float(np.nextafter(min_scale, np.inf))
    max_scale = centre * float(n_steps)  # period = scale / centre = n_steps
    if n_scales > 1 and max_scale <= min_scale:
        raise ValueError(
            f"n_steps={n_steps} is too short for {n_scales} scales of {wavelet!r}: the "
            f"Nyquist scale {min_scale:.3g} is not below the series-length scale "
            f"{max_scale:.3g}; expected n_steps > {min_scale / centre:.3g}"
        )
    return log_scales(n_scales, min_scale, max_scale)


# --------------------------------------------------------------------------------------
# The CWT as a matrix
# --------------------------------------------------------------------------------------


def _check_wavelet(wavelet: str) -> pywt.ContinuousWavelet:
    if not isinstance(wavelet, str):
        raise ValueError(f"wavelet must be a pywt continuous wavelet name, got {wavelet!r}")
    try:
        return pywt.ContinuousWavelet(wavelet)
    except ValueError as err:
        raise ValueError(
            f"wavelet must be a pywt continuous wavelet name (see "
            f"pywt.wavelist(kind='continuous')), got {wavelet!r}"
        ) from err


def _check_scales(scales: np.ndarray | Sequence[float]) -> tuple[float, ...]:
    arr = np.asarray(scales, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"scales must be a non-empty 1-D array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"scales must be finite and positive (in time steps), got {arr}")
    return tuple(float(s) for s in arr)


def _check_n_steps(n_steps: int) -> int:
    if int(n_steps) != n_steps or n_steps < 1:
        raise ValueError(f"n_steps must be a positive integer, got {n_steps!r}")
    return int(n_steps)


@lru_cache(maxsize=64)
def _cwt_matrix_cached(n_steps: int, scales: tuple[float, ...], wavelet: str) -> np.ndarray:
    # pywt.cwt is linear in its input, so transforming the T identity basis vectors yields
    # the matrix column block for every (scale, output step): coef[s, i, t] is output t at
    # scale s for a unit impulse at step i. This reuses pywt's own integration, scale
    # resampling and centred crop, so it is exact by construction (float64 throughout).
    coef, _ = pywt.cwt(
        np.eye(n_steps),
        np.asarray(scales),
        wavelet,
        sampling_period=1.0,
        method="conv",
        axis=-1,
    )  # (S, T_in, T_out)
    matrix = np.ascontiguousarray(np.transpose(coef, (1, 0, 2)).reshape(n_steps, -1))
    matrix.setflags(write=False)  # shared by the cache: callers must not mutate it
    return matrix


def cwt_matrix(
    n_steps: int, scales: np.ndarray | Sequence[float], wavelet: str = DEFAULT_WAVELET
) -> np.ndarray:
    """The CWT of a length-``n_steps`` series as a matrix.

    ``(x @ M).reshape(..., S, n_steps)`` equals
    ``np.moveaxis(pywt.cwt(x, scales, wavelet, sampling_period=1, method="conv",
    axis=-1)[0], 0, -2)`` to float64 rounding (~1e-15 of the peak). Cached per
    ``(n_steps, tuple(scales), wavelet)``.

    Args:
        n_steps: Series length T, in time steps.
        scales: (S,) positive scales, in time steps.
        wavelet: A pywt continuous wavelet name.

    Returns:
        (T, S*T) read-only; complex128 for complex wavelets (e.g. cmor), float64 for real
        ones (e.g. mexh, morl). Column ``s*T + t`` is output step ``t`` at scale ``s``.

    Raises:
        ValueError: On a non-positive ``n_steps``, invalid scales or wavelet, or a scale too
            small for pywt to sample the wavelet.
    """
    n = _check_n_steps(n_steps)
    sc = _check_scales(scales)
    _check_wavelet(wavelet)
    return _cwt_matrix_cached(n, sc, wavelet)


@lru_cache(maxsize=64)
def _stacked_matrix(
    n_steps: int, scales: tuple[float, ...], wavelet: str, device: str, dtype: torch.dtype
) -> torch.Tensor:
    """(T, 2*S*T) [real | imag] (or (T, S*T) real for a real wavelet), on device/dtype."""
    m = _cwt_matrix_cached(n_steps, scales, wavelet)
    stacked = np.concatenate([m.real, m.imag], axis=1) if np.iscomplexobj(m) else m.real
    return torch.from_numpy(np.ascontiguousarray(stacked, dtype=np.float32)).to(
        device=device, dtype=dtype
    )



# --------------------------------------------------------------------------------------
# Magnitude kernel
# --------------------------------------------------------------------------------------


def _magnitude_rows(rows: torch.Tensor, matrix: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Fill (R, S*T) float32 ``out`` with |rows @ matrix| for (R, T) rows.

    ``matrix`` is (T, 2*S*T) [real | imag] for a complex wavelet, (T, S*T) for a real one.
    """
    y = rows @ matrix
    if y.dtype != torch.float32:
        y = y.float()
    k = out.shape[1]
    if y.shape[1] == k:  # real wavelet: no imaginary block
        return torch.abs(y, out=out)
    re, im = y[:, :k], y[:, k:]
    torch.mul(re, re, out=out)
    out.addcmul_(im, im)
    return out.sqrt_()
