"""Surface reflectance by linear mixing of endmembers, and spectral indices.

Bands are Sentinel-2 ``blue, green, red, nir, swir16`` (B02, B03, B04, B08, B11);
reflectance is unitless (0–1). A pixel mixes green vegetation (class-specific spectrum),
open water (visible under the canopy only), built-up surface and soil (the remainder).
"""

from __future__ import annotations

import numpy as np

from cropassets.world.config import BUILT, CASSAVA, FOREST, MAIZE, RICE, SUGARCANE, WATER
from cropassets.world.phenology import Fractions

BANDS = ("blue", "green", "red", "nir", "swir16")
NIR_SWIR = np.array([0.0, 0.0, 0.0, 1.0, 1.0])  # bands scaled by the per-field NIR gain

SOIL = np.array([0.075, 0.105, 0.140, 0.195, 0.290])
WATER_EM = np.array([0.055, 0.075, 0.055, 0.025, 0.010])  # turbid paddy / pond water
BUILT_EM = np.array([0.120, 0.130, 0.145, 0.190, 0.230])
#: Green-vegetation spectrum by class code (index 0 unused).
VEGETATION = np.array([
    [0.030, 0.075, 0.035, 0.400, 0.195],  # 0 (unused)
    [0.030, 0.080, 0.040, 0.380, 0.190],  # rice
    [0.030, 0.075, 0.035, 0.420, 0.200],  # maize
    [0.028, 0.070, 0.032, 0.400, 0.185],  # cassava
    [0.032, 0.080, 0.038, 0.440, 0.210],  # sugarcane
    [0.022, 0.050, 0.026, 0.320, 0.140],  # forest
    [0.030, 0.070, 0.040, 0.300, 0.150],  # water (floating plants)
    [0.030, 0.070, 0.035, 0.380, 0.190],  # built-up (village trees)
])
assert (RICE, MAIZE, CASSAVA, SUGARCANE, FOREST, WATER, BUILT) == tuple(range(1, 8))


def vegetation_table(code: np.ndarray, nir_gain: np.ndarray) -> np.ndarray:
    """Green-vegetation spectrum of every parcel, (n + 1, 5)."""
    veg = VEGETATION[code]
    return veg * (1.0 + (nir_gain[:, None] - 1.0) * NIR_SWIR[None, :])


def mix(fr: Fractions, veg: np.ndarray, soil_gain: np.ndarray) -> np.ndarray:
    """Field-level noise-free reflectance.

    Args:
        fr: Fractions of shape (n + 1,) or (n + 1, T).
        veg: Vegetation spectra (n + 1, 5).
        soil_gain: Soil brightness factor (n + 1,).

    Returns:
        Reflectance, shape (5, n + 1) or (5, n + 1, T).
    """
    fv = np.clip(fr.fv, 0.0, 0.98)
    fw = np.clip(fr.fw, 0.0, 1.0) * (1.0 - fv)
    fb = fr.fb
    fsoil = np.clip(1.0 - fv - fw - fb, 0.0, 1.0)
    extra = (None,) * (fv.ndim - 1)
    out = []
    for b in range(5):
        vb = veg[:, b][(slice(None), *extra)]
        sb = (SOIL[b] * soil_gain)[(slice(None), *extra)]
        out.append(fv * vb + fw * WATER_EM[b] + fb * BUILT_EM[b] + fsoil * sb)
    return np.stack(out)


def mix_pixels(fv: np.ndarray, fw: np.ndarray, fb: np.ndarray, veg: np.ndarray,
               soil: np.ndarray) -> np.ndarray:
    """Pixel-level reflectance from per-pixel fractions.

    Args:
        fv: Green-vegetation fraction (y, x).
        fw: Water fraction before occlusion by the canopy (y, x).
        fb: Built-up fraction (y, x).
        veg: Per-pixel vegetation spectrum, (5, y, x).
        soil: Per-pixel soil brightness factor, (y, x).

    Returns:
        float32 reflectance (5, y, x).
    """
    fv = np.clip(fv, 0.0, 0.98, dtype=np.float32)
    fw = np.clip(fw, 0.0, 1.0) * (1.0 - fv)
    fsoil = np.clip(1.0 - fv - fw - fb, 0.0, 1.0)
    out = np.empty((5, *fv.shape), dtype=np.float32)
    for b in range(5):
        out[b] = fv * veg[b] + fw * np.float32(WATER_EM[b]) + fb * np.float32(BUILT_EM[b]) \
            + fsoil * soil * np.float32(SOIL[b])
    return out


def _nd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a - b) / (a + b)


def ndvi(refl: np.ndarray) -> np.ndarray:
    """NDVI = (nir − red) / (nir + red) from reflectance with bands first."""
    return _nd(refl[3], refl[2])


def ndwi(refl: np.ndarray) -> np.ndarray:
    """McFeeters NDWI = (green − nir) / (green + nir): open water > 0."""
    return _nd(refl[1], refl[3])


def lswi(refl: np.ndarray) -> np.ndarray:
    """LSWI = (nir − swir16) / (nir + swir16): canopy and surface moisture."""
    return _nd(refl[3], refl[4])
