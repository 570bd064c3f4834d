"""bf16 on CPU only where it measures faster: the compute precision of the CWT matmul.

:func:`cpu_prefers_bf16` probes the CPU (AVX512 with native BF16 instructions) and times
the actual kernel of :mod:`cropassets.ml.cwt` in fp32 and bf16; :func:`_resolve_dtype`
turns the ``dtype`` argument of :func:`cropassets.ml.scalograms.cwt_magnitude` into a
torch dtype.
"""

from __future__ import annotations

import time
from functools import cache
from typing import Literal

import torch

from cropassets.ml.cwt import (
    _CPU_CHUNK_ROWS,
    DEFAULT_WAVELET,
    _check_scales,
    _magnitude_rows,
    _stacked_matrix,
    default_scales,
)

__all__ = ["DTypeArg", "cpu_prefers_bf16"]

_BF16_MIN_GAIN = 0.75
"""bf16 must take under this fraction of the fp32 time for :func:`cpu_prefers_bf16`."""

DTypeArg = torch.dtype | Literal["auto"] | None


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
