"""Per-scene features: cloud masking, vegetation/water indices, S1 speckle filter and dB.

All functions work on single scenes as 2-D arrays (y, x) or stacks (time, y, x) of float32
surface reflectance (unitless, 0..~1.2) or linear backscatter (gamma0, power units).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import binary_dilation, uniform_filter

from cropassets.core.stac.catalog_profiles import S1_BANDS, S2_BANDS

CLEAR_SCL = (4, 5, 6, 7)
"""Sen2Cor SCL classes kept: vegetation, not vegetated, water, unclassified."""
MASKED_SCL_NAMES = {0: "nodata", 1: "saturated", 2: "dark/topographic shadow",
                    3: "cloud shadow", 8: "cloud medium probability",
                    9: "cloud high probability", 10: "thin cirrus", 11: "snow/ice"}

FEATURE_BANDS: dict[str, tuple[str, ...]] = {
    "ndvi": ("red", "nir"),
    "lswi": ("nir", "swir16"),
    "ndwi": ("green", "nir"),
    "vv": ("vv",),
    "vh": ("vh",),
    "vh_vv": ("vv", "vh"),
}
"""Producible features and the canonical bands each needs."""
DEFAULT_FEATURES = ("ndvi", "lswi", "vv", "vh", "vh_vv")
"""NDVI (greenness), LSWI (canopy/surface water: flooding at rice transplanting), S1 VV and
VH in dB (structure and flooding, cloud-independent) and their ratio VH-VV in dB."""


class FeatureConfigError(ValueError):
    """Requested features cannot be produced from the available bands."""


def check_features(features: tuple[str, ...] | list[str],
                   available_bands: tuple[str, ...] = (*S2_BANDS, *S1_BANDS)) -> tuple[str, ...]:
    """Validate a feature list at configuration time.

    Raises:
        FeatureConfigError: a feature is unknown or needs a band that is not available;
            the message names the feature, the missing bands and what is producible.
    """
    features = tuple(features)
    if not features:
        raise FeatureConfigError("features: expected at least one feature")
    problems = []
    for f in features:
        if f not in FEATURE_BANDS:
            problems.append(f"{f!r} is not a known feature")
            continue
        missing = [b for b in FEATURE_BANDS[f] if b not in available_bands]
        if missing:
            problems.append(f"{f!r} needs band(s) {missing}")
    if problems:
        producible = [f for f, bands in FEATURE_BANDS.items()
                      if all(b in available_bands for b in bands)]
        raise FeatureConfigError(f"features {list(features)}: " + "; ".join(problems)
                                 + f". Producible from {list(available_bands)}: {producible}")
    if len(set(features)) != len(features):
        raise FeatureConfigError(f"features {list(features)}: duplicates")
    return features


def clear_mask(scl: np.ndarray, dilate_px: int = 0,
               clear_classes: tuple[int, ...] = CLEAR_SCL) -> np.ndarray:
    """Boolean mask of clear pixels from a scene-classification band.

    Args:
        scl: SCL codes, shape (..., y, x), uint8.
        dilate_px: Grow the masked (cloud/shadow/nodata) area by this many pixels per scene
            to catch unmarked thin cloud edges.
        clear_classes: SCL codes counted as clear.

    Returns:
        True where the pixel is clear, same shape as ``scl``.
    """
    clear = np.isin(scl, clear_classes)
    if dilate_px > 0 and clear.size:
        structure = np.ones((2 * dilate_px + 1,) * 2, bool)
        masked = ~clear.reshape(-1, *clear.shape[-2:])
        grown = np.stack([binary_dilation(m, structure) for m in masked])
        clear = ~grown.reshape(clear.shape)
    return clear


def normalized_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(a - b) / (a + b) in float32, NaN where the denominator is 0 or inputs are NaN."""
    a = a.astype(np.float32, copy=False)
    b = b.astype(np.float32, copy=False)
    den = a + b
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (a - b) / den
    out[~np.isfinite(out)] = np.nan
    return out


def lee_filter(img: np.ndarray, window: int = 5, enl: float = 4.4) -> np.ndarray:
    """Lee speckle filter of one linear-power SAR image, NaN-aware.

    Args:
        img: Linear backscatter, shape (y, x); NaN = nodata (stays NaN).
        window: Odd moving-window size in pixels.
        enl: Equivalent number of looks of the input (speckle variance = 1/enl).

    Returns:
        Filtered image (y, x), float32: local mean + k (pixel - local mean), with
        k = signal variance / total variance.
    """
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be a positive odd number of pixels, got {window}")
    if window == 1:
        return img.astype(np.float32, copy=True)
    valid = np.isfinite(img)
    x = np.where(valid, img, 0.0).astype(np.float64)
    w = uniform_filter(valid.astype(np.float64), window, mode="nearest")
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = uniform_filter(x, window, mode="nearest") / w
        sq = uniform_filter(x * x, window, mode="nearest") / w
    var = np.maximum(sq - mean * mean, 0.0)
    cu2 = 1.0 / enl
    signal_var = np.maximum((var - mean * mean * cu2) / (1.0 + cu2), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.where(var > 0, signal_var / var, 0.0)
    out = mean + k * (x - mean)
    out[~valid] = np.nan
    return out.astype(np.float32)


def to_db(linear: np.ndarray) -> np.ndarray:
    """10·log10 of linear power, float32; NaN for non-positive or NaN input."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 10.0 * np.log10(linear.astype(np.float32))
    out[~np.isfinite(out)] = np.nan
    return out
