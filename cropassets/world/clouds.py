"""Clouds, cloud shadows, thin cirrus and an imperfect scene classification (SCL).

Cloud opacity is smoothed multi-octave noise thresholded to a target cover fraction drawn
per scene by month (the June–October monsoon mostly 40–100 %, May and November lighter,
some clear scenes every month), with opacity ramping up over the cloud edges. Shadows are
the opacity field displaced by a fixed sun-geometry offset. The SCL marks clouds and
shadows the way Sen2Cor does in practice: thin cloud edges unmarked, part of the shadow
missed, a few false positives.

Fields are computed on the 20 m grid; the 10 m reflectance uses them upsampled.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from cropassets.world.noise import fractal_noise

# Sen2Cor scene classification codes
SCL_NODATA, SCL_SHADOW, SCL_VEGETATION, SCL_NOT_VEGETATED, SCL_WATER = 0, 3, 4, 5, 6
SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH, SCL_CIRRUS = 8, 9, 10
SCL_CLOUDS = (SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH, SCL_CIRRUS)

SUN_AZIMUTH = 115.0  # degrees from north, mid-morning sun in the east-south-east
SUN_ELEVATION = 62.0  # degrees
CLOUD_HEIGHT = 1500.0  # m, for the shadow displacement
CLOUD_REFLECTANCE = np.array([0.52, 0.50, 0.49, 0.53, 0.38])  # blue, green, red, nir, swir16
CIRRUS_REFLECTANCE = np.array([0.20, 0.19, 0.18, 0.18, 0.12])
SHADOW_DARKENING = 0.65  # fraction of direct light removed in full shadow


def shadow_offset_px(res: float) -> tuple[int, int]:
    """(rows, cols) displacement from a cloud to its shadow, at pixel size ``res`` m."""
    length = CLOUD_HEIGHT / np.tan(np.deg2rad(SUN_ELEVATION)) / res
    az = np.deg2rad(SUN_AZIMUTH + 180.0)  # shadows fall away from the sun
    return int(round(-np.cos(az) * length)), int(round(np.sin(az) * length))


def draw_cover(date: dt.date, rng: np.random.Generator, clear: bool = False) -> float:
    """Target cloud-cover fraction (0–1) of a scene acquired on ``date``.

    ``clear`` forces a (nearly) clear scene; the generator sets it on every sixth pass so
    that each month has at least one clear view.
    """
    month = date.month
    if 6 <= month <= 10:
        p_clear, lo, hi = 0.10, 0.40, 1.00
    elif month in (5, 11):
        p_clear, lo, hi = 0.35, 0.05, 0.60
    else:
        p_clear, lo, hi = 0.60, 0.00, 0.30
    if rng.random() < p_clear or clear:
        return float(rng.uniform(0.0, 0.03))
    return float(rng.uniform(lo, hi))


@dataclass
class CloudFields:
    """Cloud-related fields of one scene on the 20 m grid, dims (y, x), unitless 0–1.

    Attributes:
        cover: The scene's target cover fraction.
        alpha: Cloud opacity.
        shadow: Shadow strength on the ground (already reduced where cloud covers it).
        cirrus: Thin-cirrus opacity.
    """

    cover: float
    alpha: np.ndarray
    shadow: np.ndarray
    cirrus: np.ndarray


def cloud_fields(shape: tuple[int, int], date: dt.date, rng: np.random.Generator,
                 res: float = 20.0, clear: bool = False) -> CloudFields:
    """Draw the clouds of one scene on a grid of ``shape`` (rows, cols) with ``res`` m px.

    ``clear`` forces a nearly cloud-free scene (see :func:`draw_cover`).
    """
    cover = draw_cover(date, rng, clear)
    h, w = shape
    oy, ox = shadow_offset_px(res)
    ext = fractal_noise((h + abs(oy), w + abs(ox)), rng, cell=max(8, int(2560 / res)),
                        octaves=5, persistence=0.55)
    sample = ext[::3, ::3]
    if cover <= 0.0:
        thr = float(sample.max()) + 1.0
    else:
        thr = float(np.quantile(sample, 1.0 - min(cover, 0.999)))
    ramp = 0.9  # std units from the cloud edge to full opacity
    alpha_ext = np.clip((ext - thr) / ramp, 0.0, 1.0) ** 0.8
    ay, ax = max(0, oy), max(0, ox)
    alpha = alpha_ext[ay:ay + h, ax:ax + w]
    shade = alpha_ext[ay - oy:ay - oy + h, ax - ox:ax - ox + w]
    shadow = (shade * (1.0 - alpha)).astype(np.float32)
    cirrus = np.zeros(shape, dtype=np.float32)
    if 5 <= date.month <= 11 and rng.random() < 0.25 and not clear:
        veil = fractal_noise(shape, rng, cell=max(8, int(5120 / res)), octaves=3)
        cirrus = np.clip(0.10 + 0.07 * veil, 0.0, 0.25).astype(np.float32)
    return CloudFields(cover=cover, alpha=alpha.astype(np.float32), shadow=shadow,
                       cirrus=cirrus)


def apply_clouds(surface: np.ndarray, alpha: np.ndarray, shadow: np.ndarray,
                 cirrus: np.ndarray, brightness: float) -> np.ndarray:
    """Observed reflectance: shadows darken the surface, clouds and cirrus brighten it.

    Args:
        surface: Surface reflectance (5, y, x).
        alpha: Cloud opacity (y, x).
        shadow: Shadow strength (y, x).
        cirrus: Cirrus opacity (y, x).
        brightness: Scene factor on the cloud reflectance.

    Returns:
        float32 reflectance (5, y, x).
    """
    out = np.empty_like(surface, dtype=np.float32)
    keep = (1.0 - alpha) * (1.0 - np.float32(SHADOW_DARKENING) * shadow)
    for b in range(surface.shape[0]):
        out[b] = surface[b] * keep + alpha * np.float32(CLOUD_REFLECTANCE[b] * brightness) \
            + cirrus * np.float32(CIRRUS_REFLECTANCE[b])
    return out


def classify(observed20: np.ndarray, clouds: CloudFields,
             rng: np.random.Generator) -> np.ndarray:
    """Sen2Cor-like scene classification of a scene on the 20 m grid.

    Clouds are flagged where a detection score (opacity plus smooth noise) exceeds 0.4
    (medium probability, 8) or 0.7 (high, 9), so thin cloud edges stay unmarked; cirrus
    thicker than 0.12 becomes 10; shadows stronger than 0.35 become 3 except in patches
    (~30 % missed); ~0.2 % of pixels and some dark water become false clouds/shadows.

    Args:
        observed20: Observed reflectance (5, y, x) on the 20 m grid.
        clouds: The scene's cloud fields.
        rng: Random generator.

    Returns:
        uint8 SCL codes (y, x).
    """
    shape = clouds.alpha.shape
    nir, red, green = observed20[3], observed20[2], observed20[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        ndvi = (nir - red) / (nir + red)
        ndwi = (green - nir) / (green + nir)
    scl = np.full(shape, SCL_NOT_VEGETATED, dtype=np.uint8)
    scl[ndvi > 0.35] = SCL_VEGETATION
    water = (ndwi > 0.05) & (nir < 0.08)
    scl[water] = SCL_WATER
    miss = fractal_noise(shape, rng, cell=16, octaves=1)
    shadow_flag = (clouds.shadow > 0.35) & (miss > -0.5)
    shadow_flag |= water & (rng.random(shape) < 0.02)
    scl[shadow_flag] = SCL_SHADOW
    scl[clouds.cirrus > 0.12] = SCL_CIRRUS
    score = clouds.alpha + 0.08 * fractal_noise(shape, rng, cell=8, octaves=1)
    scl[score > 0.4] = SCL_CLOUD_MEDIUM
    scl[score > 0.7] = SCL_CLOUD_HIGH
    scl[rng.random(shape) < 0.002] = SCL_CLOUD_MEDIUM
    return scl
