"""C-band backscatter model (Sentinel-1 RTC gamma0) by linear mixing in power.

Endmembers in dB (VV, VH): bare soil (−11, −18); full canopy by class (raising VH toward
≈ −13); flooded paddy (−20, −26, specular); open water (−22, −28); forest (−7, −13);
built-up (0, −9, so that a village parcel reads ≈ (−2, −10)). Standing structure ``fs``
hides the water and soil below it; mixing is done in linear power.
"""

from __future__ import annotations

import numpy as np

from cropassets.world.config import WATER
from cropassets.world.phenology import Fractions

SOIL_DB = np.array([-11.0, -18.0])
FLOOD_DB = np.array([-20.0, -26.0])
OPEN_WATER_DB = np.array([-22.0, -28.0])
SHORE_DB = np.array([-17.0, -25.0])  # wet mud at pond edges
BUILT_DB = np.array([0.0, -9.0])
#: Full-canopy backscatter by class code (index 0 unused), dB (VV, VH).
CANOPY_DB = np.array([
    [-10.0, -14.0],  # 0 unused
    [-10.0, -14.5],  # rice
    [-9.0, -13.0],  # maize
    [-9.5, -13.5],  # cassava
    [-8.5, -12.0],  # sugarcane
    [-7.0, -13.0],  # forest
    [-12.0, -19.0],  # water (floating plants)
    [-8.0, -13.0],  # built-up (trees)
])


def to_linear(db: np.ndarray) -> np.ndarray:
    """Convert dB to linear power."""
    return np.power(10.0, np.asarray(db) / 10.0)


def to_db(lin: np.ndarray) -> np.ndarray:
    """Convert linear power to dB."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return 10.0 * np.log10(lin)


def backscatter(fr: Fractions, code: np.ndarray) -> np.ndarray:
    """Noise-free gamma0 of every parcel, linear power.

    Args:
        fr: Fractions of shape (n + 1,) or (n + 1, T).
        code: Class code of every parcel, (n + 1,).

    Returns:
        (2, n + 1) or (2, n + 1, T): VV, VH.
    """
    extra = (None,) * (fr.fs.ndim - 1)
    fs = np.clip(fr.fs, 0.0, 1.0)
    fw = np.clip(fr.fw, 0.0, 1.0) * (1.0 - fs)
    fb = fr.fb
    fsoil = np.clip(1.0 - fs - fw - fb, 0.0, 1.0)
    is_water = (code == WATER)[(slice(None), *extra)]
    out = []
    for p in range(2):
        canopy = to_linear(CANOPY_DB[code, p])[(slice(None), *extra)]
        water = np.where(is_water, to_linear(OPEN_WATER_DB[p]), to_linear(FLOOD_DB[p]))
        soil = np.where(is_water, to_linear(SHORE_DB[p]), to_linear(SOIL_DB[p]))
        out.append(fs * canopy + fw * water + fb * to_linear(BUILT_DB[p]) + fsoil * soil)
    return np.stack(out)
