"""Torch device choice and mixed precision for training and prediction."""

from __future__ import annotations

import contextlib
from typing import Literal

import torch

from cropassets.ml.cwt_precision import cpu_prefers_bf16

__all__ = ["autocast_context", "select_device"]


def select_device(
    prefer: Literal["auto", "cpu", "cuda"] | str = "auto", threads: int | None = None
) -> torch.device:
    """The device to run on.

    Args:
        prefer: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` or an
            explicit torch device string such as ``"cuda:1"``.
        threads: CPU threads for torch intra-op parallelism (``torch.set_num_threads``,
            process-wide); ``None`` leaves torch's setting alone.

    Returns:
        The selected ``torch.device``.

    Raises:
        ValueError: If CUDA is asked for but not available, or ``threads < 1``.
    """
    if threads is not None:
        if int(threads) < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(int(threads))
    if prefer == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(prefer)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {prefer!r} requested but CUDA is not available")
    return dev


def autocast_context(
    device: torch.device | str,
) -> contextlib.AbstractContextManager[object]:
    """bf16 autocast where it pays, else a null context.

    On CUDA always; on CPU only where :func:`cropassets.ml.cwt_precision.cpu_prefers_bf16`
    measured bf16 faster (AVX-512 with BF16); elsewhere ``contextlib.nullcontext()``.
    """
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if dev.type == "cpu" and cpu_prefers_bf16():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()
