"""Magnitude scalograms of batches of regular series: ``|x @ M|`` with the CWT matrix.

``M`` is the cached matrix of :func:`cropassets.ml.cwt.cwt_matrix`; the product is taken
in chunks of series (so it stays in cache on CPU), in fp32 or bf16
(:mod:`cropassets.ml.cwt_precision`).

Dims used throughout: ``N`` samples (pixels), ``F`` features (indices), ``S`` scales,
``T`` time steps.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TypeVar, cast

import numpy as np
import torch

from cropassets.ml.cwt import (
    _CPU_CHUNK_ROWS,
    _CUDA_CHUNK_ROWS,
    DEFAULT_WAVELET,
    _check_scales,
    _check_wavelet,
    _magnitude_rows,
    _stacked_matrix,
    default_scales,
)
from cropassets.ml.cwt_precision import DTypeArg, _resolve_dtype

__all__ = ["cwt_magnitude"]

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


def cwt_magnitude(
    x: ArrayT,
    scales: np.ndarray | Sequence[float] | None = None,
    wavelet: str = DEFAULT_WAVELET,
    dtype: DTypeArg = None,
) -> ArrayT:
    """|CWT| scalograms of a batch of regular series, as pywt computes them.

    Equivalent to ``np.abs(pywt.cwt(x, scales, wavelet, method="conv", axis=-1)[0])``
    moved to (N, F, S, T), computed as ``|x @ M|`` with the cached matrix of
    :func:`cropassets.ml.cwt.cwt_matrix`, in chunks of series (so the product stays in
    cache on CPU). No autograd graph is recorded.

    Args:
        x: (N, F, T) finite series (numpy array or torch tensor, any float dtype;
            CPU or CUDA). Gap-fill before calling: NaN is rejected.
        scales: (S,) positive scales in time steps; ``None`` uses
            :func:`cropassets.ml.cwt.default_scales` for T (store them with any model
            trained on them).
        wavelet: A pywt continuous wavelet name.
        dtype: Compute precision of the matmul. ``None`` or ``torch.float32``: fp32
            (default; matches pywt to ~1e-6 of the peak on any machine).
            ``"auto"``: bf16 on CPU only where
            :func:`cropassets.ml.cwt_precision.cpu_prefers_bf16` is True, else fp32.
            ``torch.bfloat16``: bf16 forced (CPU or CUDA), ~1e-2 of the peak; on an AVX2
            CPU this is much slower than fp32. bf16 results differ from fp32 ones, so use
            the same setting for training and inference.

    Returns:
        (N, F, S, T) float32 magnitudes, same type (and torch device) as ``x``.

    Raises:
        ValueError: If ``x`` is not 3-D, is empty along T, holds NaN/inf, or on invalid
            scales, wavelet or dtype.

    Note:
        On CUDA, fp32 matmuls run in TF32 when ``torch.set_float32_matmul_precision`` is
        not ``"highest"`` (~1e-3 error); a warning is issued then.
    """
    is_numpy = isinstance(x, np.ndarray)
    if not is_numpy and not isinstance(x, torch.Tensor):
        raise ValueError(f"x must be a numpy array or torch tensor, got {type(x).__name__}")
    if x.ndim != 3:
        raise ValueError(
            f"x must be 3-D (N samples, F features, T steps), got shape {tuple(x.shape)}"
        )
    n, f, t = (int(v) for v in x.shape)
    if t < 1:
        raise ValueError(f"x must have at least one time step (T >= 1), got shape {x.shape}")
    if isinstance(x, np.ndarray) and (x.dtype.kind not in "fiub"):
        raise ValueError(f"x must be real-valued, got dtype {x.dtype}")
    xt = torch.from_numpy(np.ascontiguousarray(x)) if is_numpy else x
    if xt.is_complex():
        raise ValueError(f"x must be real-valued, got dtype {xt.dtype}")
    if xt.is_floating_point() and not bool(torch.isfinite(xt).all()):
        n_nan = int(torch.isnan(xt).sum())
        n_inf = int(torch.isinf(xt).sum())
        raise ValueError(
            f"x must be finite: found {n_nan} NaN and {n_inf} inf values "
            f"(gap-fill the series before the CWT)"
        )
    sc = _check_scales(default_scales(t) if scales is None else scales)
    _check_wavelet(wavelet)

    device = xt.device
    compute = _resolve_dtype(dtype, device)
    if device.type == "cuda" and compute == torch.float32:
        if torch.get_float32_matmul_precision() != "highest":
            warnings.warn(
                "float32 matmul precision is not 'highest': the CUDA CWT runs in TF32 and "
                "drifts ~1e-3 of the peak from pywt",
                stacklevel=2,
            )
    matrix = _stacked_matrix(t, sc, wavelet, str(device), compute)
    rows = xt.reshape(n * f, t)
    out = torch.empty(n * f, len(sc) * t, dtype=torch.float32, device=device)
    chunk = _CUDA_CHUNK_ROWS if device.type == "cuda" else _CPU_CHUNK_ROWS
    with torch.no_grad():
        for start in range(0, n * f, chunk):
            block = rows[start : start + chunk].to(compute)
            _magnitude_rows(block, matrix, out[start : start + chunk])
    out = out.reshape(n, f, len(sc), t)
    return cast(ArrayT, out.numpy() if is_numpy else out)
