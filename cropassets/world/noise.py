"""Spatially coherent random fields (multi-octave value noise)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def _upsample(coarse: np.ndarray, cell: int, shape: tuple[int, int]) -> np.ndarray:
    """Bilinearly upsample a coarse lattice by ``cell`` and crop to ``shape``."""
    if cell == 1:
        return coarse[: shape[0], : shape[1]]
    up = ndimage.zoom(coarse, cell, order=1, grid_mode=False, prefilter=False)
    return up[: shape[0], : shape[1]]


def fractal_noise(shape: tuple[int, int], rng: np.random.Generator, cell: int = 64,
                  octaves: int = 4, persistence: float = 0.5) -> np.ndarray:
    """Smooth random field with zero mean and unit standard deviation.

    Args:
        shape: (rows, cols) of the output.
        rng: Random generator (consumed deterministically).
        cell: Lattice spacing of the coarsest octave, px; each further octave halves it.
        octaves: Number of octaves.
        persistence: Amplitude ratio between successive octaves.

    Returns:
        float32 array of ``shape``, dims (y, x), unitless.
    """
    h, w = shape
    total = np.zeros(shape, dtype=np.float32)
    amp = 1.0
    for _ in range(octaves):
        c = max(int(cell), 1)
        lattice = rng.standard_normal((h // c + 2, w // c + 2), dtype=np.float32)
        total += np.float32(amp) * _upsample(lattice, c, shape)
        amp *= persistence
        cell = max(cell // 2, 1)
    total -= total.mean(dtype=np.float64)
    std = float(total.std(dtype=np.float64))
    if std > 0:
        total /= np.float32(std)
    return total


def _up2_axis0(a: np.ndarray) -> np.ndarray:
    prev = np.concatenate([a[:1], a[:-1]])
    nxt = np.concatenate([a[1:], a[-1:]])
    out = np.empty((2 * a.shape[0], *a.shape[1:]), dtype=np.float32)
    out[0::2] = 0.75 * a + 0.25 * prev
    out[1::2] = 0.75 * a + 0.25 * nxt
    return out


def upsample2(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Upsample a 20 m field (y, x) to the 10 m grid ``shape`` (bilinear, centre-aligned)."""
    a = a.astype(np.float32, copy=False)
    up = _up2_axis0(_up2_axis0(a).T).T
    return np.ascontiguousarray(up[: shape[0], : shape[1]])


def block_mean2(a: np.ndarray) -> np.ndarray:
    """2×2 block mean over the last two dims (10 m → 20 m); dims must be even."""
    *lead, h, w = a.shape
    return a.reshape(*lead, h // 2, 2, w // 2, 2).mean(axis=(-3, -1), dtype=np.float32)
