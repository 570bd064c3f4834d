"""Continuous Wavelet Transform scalograms as one matrix multiply.

For a fixed series length ``T`` (time steps), fixed scales and a fixed wavelet, the CWT that
``pywt.cwt(x, scales, wavelet, method="conv")`` computes is a linear map of ``x``. It is
precomputed here once as a ``(T, S*T)`` matrix ``M`` such that ``x @ M`` reproduces pywt's
coefficients exactly (edge behaviour, integrated-wavelet sampling and all), then applied to
a whole batch of series with one batched matmul in torch.

Scales are in units of time steps and frequencies in cycles per step, so nothing here
knows whether a step is a week, a 5-, 10- or 16-day composite.

Dims used throughout: ``N`` samples (pixels), ``F`` features (indices), ``S`` scales,
``T`` time steps.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cache, lru_cache
from typing import Any, ClassVar, Literal, TypeVar, cast

import numpy as np
import pywt
import torch

__all__ = [
    "DEFAULT_WAVELET",
    "ScalogramStats",
    "cpu_prefers_bf16",
    "cwt_magnitude",
    "cwt_matrix",
    "default_scales",
    "log_scales",
    "normalise_scalograms",
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

_BF16_MIN_GAIN = 0.75
"""bf16 must take under this fraction of the fp32 time for :func:`cpu_prefers_bf16`."""

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)
DTypeArg = torch.dtype | Literal["auto"] | None


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
# bf16 on CPU: only where it measures faster
# --------------------------------------------------------------------------------------


def _cpu_has_bf16() -> bool:
    if torch.backends.cpu.get_cpu_capability() != "AVX512":
        return False
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)  # private in torch 2.x
    return bool(probe()) if callable(probe) else False


@cache
def cpu_prefers_bf16() -> bool:
    """Whether bf16 CWT magnitudes are worth using on this CPU (measured once per process).

    True only when torch reports the AVX512 capability with native BF16 instructions AND
    a micro-benchmark of the actual kernel (2048 series x T=28, S=16: matmul, upcast,
    magnitude; ~0.1 s) takes under 0.75x the fp32 time in bf16. bf16 costs ~10^4 times
    the error (~5e-3 instead of ~3e-7 of the peak), so a marginal gain is not worth it.
    fp32/bf16 calls are interleaved and the best of 15 each is kept, so background load
    skews both alike; on a busy machine the answer can still differ between processes,
    which is why :func:`cwt_magnitude` only consults it for ``dtype="auto"``.
    AVX2-only machines (measured 40x slower in bf16) return False without measuring.
    """
    if not _cpu_has_bf16():
        return False
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(_CPU_CHUNK_ROWS, 28, generator=gen)
    scales = _check_scales(default_scales(28, 16))
    args = {}
    for dtype in (torch.float32, torch.bfloat16):
        m = _stacked_matrix(28, scales, DEFAULT_WAVELET, "cpu", dtype)
        args[dtype] = (x.to(dtype), m, torch.empty(x.shape[0], m.shape[1] // 2))
    best = dict.fromkeys(args, float("inf"))
    with torch.no_grad():
        for round_ in range(17):  # 2 warm-up rounds (oneDNN primitive creation), then 15
            for dtype, (xd, m, out) in args.items():
                t0 = time.perf_counter()
                _magnitude_rows(xd, m, out)
                if round_ >= 2:
                    best[dtype] = min(best[dtype], time.perf_counter() - t0)
    return best[torch.bfloat16] < _BF16_MIN_GAIN * best[torch.float32]


# --------------------------------------------------------------------------------------
# Magnitude scalograms
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


def _resolve_dtype(dtype: DTypeArg, device: torch.device) -> torch.dtype:
    if dtype is None or dtype == torch.float32:
        return torch.float32
    if dtype == "auto":
        if device.type == "cpu" and cpu_prefers_bf16():
            return torch.bfloat16
        return torch.float32
    if dtype == torch.bfloat16:
        return torch.bfloat16
    raise ValueError(f"dtype must be None/torch.float32, torch.bfloat16 or 'auto', got {dtype!r}")


def cwt_magnitude(
    x: ArrayT,
    scales: np.ndarray | Sequence[float] | None = None,
    wavelet: str = DEFAULT_WAVELET,
    dtype: DTypeArg = None,
) -> ArrayT:
    """|CWT| scalograms of a batch of regular series, as pywt computes them.

    Equivalent to ``np.abs(pywt.cwt(x, scales, wavelet, method="conv", axis=-1)[0])``
    moved to (N, F, S, T), computed as ``|x @ M|`` with the cached matrix of
    :func:`cwt_matrix`, in chunks of series (so the product stays in cache on CPU).
    No autograd graph is recorded.

    Args:
        x: (N, F, T) finite series (numpy array or torch tensor, any float dtype;
            CPU or CUDA). Gap-fill before calling: NaN is rejected.
        scales: (S,) positive scales in time steps; ``None`` uses
            :func:`default_scales` for T (store them with any model trained on them).
        wavelet: A pywt continuous wavelet name.
        dtype: Compute precision of the matmul. ``None`` or ``torch.float32``: fp32
            (default; matches pywt to ~1e-6 of the peak on any machine).
            ``"auto"``: bf16 on CPU only where :func:`cpu_prefers_bf16` is True, else fp32.
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


# --------------------------------------------------------------------------------------
# Normalisation shared by training and inference
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScalogramStats:
    """Per-feature standardisation of ``log1p(|CWT|)``, fitted on training scalograms.

    Attributes:
        mean: (F,) mean of ``log1p`` magnitude per feature over (N, S, T).
        std: (F,) population standard deviation per feature over (N, S, T), floored at
            ``MIN_STD`` so a constant feature maps to zeros instead of dividing by zero.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]

    MIN_STD: ClassVar[float] = 1e-6

    def to_dict(self) -> dict[str, list[float]]:
        """JSON-ready ``{"mean": [...], "std": [...]}``."""
        return {k: list(v) for k, v in asdict(self).items()}

    def to_json(self) -> str:
        """The stats as a JSON string."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ScalogramStats:
        """Inverse of :meth:`to_dict`; validates that mean and std match in length."""
        try:
            mean = tuple(float(v) for v in d["mean"])
            std = tuple(float(v) for v in d["std"])
        except (KeyError, TypeError) as err:
            raise ValueError(
                f"stats must have 'mean' and 'std' lists of floats, got {d!r}"
            ) from err
        if len(mean) != len(std) or not mean:
            raise ValueError(
                f"stats mean and std must be non-empty and of equal length, "
                f"got {len(mean)} and {len(std)}"
            )
        if not all(np.isfinite(mean)) or not all(np.isfinite(std) & (np.array(std) > 0)):
            raise ValueError(f"stats must be finite with positive std, got {d!r}")
        return cls(mean, std)

    @classmethod
    def from_json(cls, text: str) -> ScalogramStats:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))


def normalise_scalograms(
    s: ArrayT, stats: ScalogramStats | dict[str, Any] | None = None
) -> tuple[ArrayT, ScalogramStats]:
    """``(log1p(s) - mean[f]) / std[f]``: the scalogram input of the CNN.

    With ``stats=None`` the per-feature mean and std are fitted on ``s`` (training data)
    over (N, S, T), accumulated in float64; otherwise the given stats are applied
    unchanged (validation, inference). Store the returned stats with the model.

    Args:
        s: (N, F, S, T) non-negative magnitudes, e.g. from :func:`cwt_magnitude`
            (numpy array or torch tensor).
        stats: Stats from a previous fit, as :class:`ScalogramStats` or its dict form.

    Returns:
        (normalised (N, F, S, T) float32, same type/device as ``s``; the stats used).

    Raises:
        ValueError: If ``s`` is not 4-D, holds NaN/inf or negative values, or its feature
            count differs from the stats'.
    """
    is_numpy = isinstance(s, np.ndarray)
    if not is_numpy and not isinstance(s, torch.Tensor):
        raise ValueError(f"s must be a numpy array or torch tensor, got {type(s).__name__}")
    if s.ndim != 4:
        raise ValueError(
            f"s must be 4-D (N samples, F features, S scales, T steps), got shape {tuple(s.shape)}"
        )
    st = torch.from_numpy(np.ascontiguousarray(s)) if is_numpy else s
    st = st.to(torch.float32)
    if st.numel():
        lo, hi = torch.aminmax(st)  # one pass: NaN propagates, inf shows in hi
        if not (bool(torch.isfinite(lo)) and bool(torch.isfinite(hi))):
            raise ValueError("s must be finite magnitudes, found NaN or inf")
        if float(lo) < 0:
            raise ValueError(f"s must be non-negative magnitudes, found minimum {float(lo)}")
    n_features = st.shape[1]
    z = torch.log1p(st)
    if stats is None:
        if st.shape[0] * st.shape[2] * st.shape[3] == 0:
            raise ValueError(
                f"s must be non-empty over (N, S, T) to fit stats, got shape {tuple(s.shape)}"
            )
        means, stds = [], []
        for i in range(n_features):  # one feature at a time bounds the float64 copy
            zf = z[:, i].double()
            mean = zf.mean()
            means.append(float(mean))
            stds.append(max(float(((zf - mean) ** 2).mean().sqrt()), ScalogramStats.MIN_STD))
        fitted = ScalogramStats(tuple(means), tuple(stds))
    else:
        fitted = stats if isinstance(stats, ScalogramStats) else ScalogramStats.from_dict(stats)
        if len(fitted.mean) != n_features:
            raise ValueError(
                f"stats are for {len(fitted.mean)} features but s has "
                f"{n_features} (shape {tuple(s.shape)})"
            )
    m = torch.tensor(fitted.mean, dtype=torch.float32, device=z.device)[None, :, None, None]
    d = torch.tensor(fitted.std, dtype=torch.float32, device=z.device)[None, :, None, None]
    z.sub_(m).div_(d)
    return cast(ArrayT, z.numpy() if is_numpy else z), fitted
