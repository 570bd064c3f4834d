"""Sentinel-2 L2A scenes: acquisition plan, rendering and writing (COGs + STAC item).

Scenes are acquired every 5 days (alternating Sentinel-2A/2B) at about 03:45 UTC, from two
weeks before each season start to its end, over the whole simulation grid. Surface
reflectance mixes endmembers per pixel (field fractions with static within-field texture,
blurred by the sensor's point spread so that pixels at field edges are mixed, a
per-scene radiometric gain and white noise), clouds and shadows are laid over it, and
the bands are stored as Earth Search v1 stores them: uint16 DN = round((ρ + 0.1) / 1e-4)
(BOA_ADD_OFFSET of processing baseline ≥ 04.00), nodata 0; blue/green/red/nir at 10 m,
swir16 and scl at 20 m. Every fourth scene on the 5-day grid is delivered from the
neighbouring MGRS tile on EPSG:32648 (reprojected: bilinear reflectance, nearest SCL).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.enums import Resampling
from rasterio.warp import reproject, transform_bounds
from scipy import ndimage

from cropassets.world import catalog_items as si
from cropassets.world import clouds as cl
from cropassets.world.config import EPSG, NEIGHBOUR_EPSG
from cropassets.world.noise import block_mean2, upsample2
from cropassets.world.reflectance import mix_pixels
from cropassets.world.scene_cogs import write_cog
from cropassets.world.world_grid import Grid
from cropassets.world.world_model import PRE_SEASON_DAYS, WorldModel, stream

REVISIT_DAYS = 5
EPOCH = dt.date(2024, 1, 1)  # day 0 of the global 5-day acquisition grid (a Sentinel-2A pass)
CLEAR_EVERY = 6  # every 6th pass is nearly clear, so every month has a clear view
NEIGHBOUR_EVERY = 4  # every 4th pass is delivered from the neighbouring UTM zone's tile
BOA_OFFSET = 0.1
SCALE = 1.0e-4
NOISE_SD = 0.001  # reflectance, white noise per pixel and band
VEG_TEXTURE = 0.2  # relative within-field variation of the green cover (patchy stands)
PSF_SIGMA_PX = 0.5  # Gaussian point spread, 10 m pixels: pixels at field edges are mixed
MGRS = {EPSG: (47, "P", "PS"), NEIGHBOUR_EPSG: (48, "P", "SB")}
RELATIVE_ORBIT = {"sentinel-2a": 104, "sentinel-2b": 104}


@dataclass(frozen=True)
class S2Scene:
    """One planned Sentinel-2 acquisition.

    Attributes:
        date: Acquisition date.
        k: Index on the global 5-day grid since :data:`EPOCH` (fixes platform and zone).
    """

    date: dt.date
    k: int

    @property
    def platform(self) -> str:
        """``sentinel-2a`` or ``sentinel-2b`` (alternating passes)."""
        return "sentinel-2a" if self.k % 2 == 0 else "sentinel-2b"

    @property
    def clear(self) -> bool:
        """Every sixth pass (one in 30 days) is forced nearly cloud-free."""
        return self.k % CLEAR_EVERY == 0

    @property
    def epsg(self) -> int:
        """EPSG code the scene is delivered on."""
        return NEIGHBOUR_EPSG if self.k % NEIGHBOUR_EVERY == NEIGHBOUR_EVERY - 2 else EPSG

    @property
    def mgrs(self) -> str:
        """MGRS tile, e.g. ``47PPS``."""
        zone, band, square = MGRS[self.epsg]
        return f"{zone}{band}{square}"

    @property
    def datetime(self) -> dt.datetime:
        """Acquisition time, about 03:45 UTC."""
        return dt.datetime(self.date.year, self.date.month, self.date.day, 3, 45,
                           tzinfo=dt.UTC) + dt.timedelta(seconds=20 + 7 * (self.k % 5),
                                                         microseconds=24000)

    @property
    def id(self) -> str:
        """Earth Search item id, e.g. ``S2A_47PPS_20240506_0_L2A``."""
        return f"S2{self.platform[-1].upper()}_{self.mgrs}_{self.date:%Y%m%d}_0_L2A"


def plan_scenes(model: WorldModel) -> list[S2Scene]:
    """All acquisitions from 14 days before each season start to its end, in time order."""
    days: set[int] = set()
    for sm in model.seasons:
        first = sm.start - dt.timedelta(days=PRE_SEASON_DAYS)
        k0 = -(-(first - EPOCH).days // REVISIT_DAYS)
        k = k0
        while EPOCH + dt.timedelta(days=REVISIT_DAYS * k) < sm.season.end:
            days.add(k)
            k += 1
    return [S2Scene(EPOCH + dt.timedelta(days=REVISIT_DAYS * k), k) for k in sorted(days)]


@dataclass
class S2Render:
    """A rendered scene on the simulation grid (EPSG:32647).

    Attributes:
        surface: Cloud-free surface reflectance (5, y, x) at 10 m, bands
            blue, green, red, nir, swir16 (noise and scene gain included).
        observed: Reflectance with clouds, cirrus and shadows (5, y, x) at 10 m.
        observed20: ``observed`` averaged to 20 m (5, y/2, x/2).
        clouds: Cloud fields at 20 m.
        scl: Scene classification at 20 m (y/2, x/2), uint8.
    """

    surface: np.ndarray
    observed: np.ndarray
    observed20: np.ndarray
    clouds: cl.CloudFields
    scl: np.ndarray


def sensor_psf(surface: np.ndarray, sigma_px: float = PSF_SIGMA_PX) -> np.ndarray:
    """Blur (5, y, x) reflectance with the sensor's Gaussian PSF: mixed pixels at edges."""
    return ndimage.gaussian_filter(surface, sigma=(0.0, sigma_px, sigma_px), mode="nearest",
                                   truncate=3.0)


def render(model: WorldModel, scene: S2Scene) -> S2Render:
    """Render ``scene`` (deterministic for the world's seed and the scene date)."""
    found = model.season_at(scene.date)
    if found is None:
        raise ValueError(f"{scene.date} lies outside every season window")
    sm, d = found
    rng = stream(model.config.seed, 10, scene.date.toordinal())
    fr = sm.fractions(model.traits, float(d))
    fid = model.parcels.fid
    tex = model.textures
    f32 = np.float32
    fv = fr.fv.astype(f32)[fid] * (f32(1.0) + f32(VEG_TEXTURE) * tex.veg)
    fw = fr.fw.astype(f32)[fid] * (f32(1.0) + f32(0.04) * tex.water)
    fb = fr.fb.astype(f32)[fid]
    veg = np.stack([sm.veg[:, b].astype(f32)[fid] for b in range(5)])
    soil = model.traits.soil_gain.astype(f32)[fid] * (f32(1.0) + f32(0.05) * tex.soil)
    surface = mix_pixels(fv, fw, fb, veg, soil)
    surface = sensor_psf(surface)
    surface *= f32(rng.normal(1.0, 0.015))
    surface += rng.standard_normal(surface.shape, dtype=f32) * f32(NOISE_SD)
    np.clip(surface, 0.0, 1.0, out=surface)

    h, w = fid.shape
    clouds = cl.cloud_fields((h // 2, w // 2), scene.date, rng, clear=scene.clear)
    cirrus = (upsample2(clouds.cirrus, (h, w)) if clouds.cirrus.any()
              else np.zeros((h, w), dtype=f32))
    observed = cl.apply_clouds(surface, upsample2(clouds.alpha, (h, w)),
                               upsample2(clouds.shadow, (h, w)), cirrus,
                               brightness=float(rng.uniform(0.85, 1.05)))
    np.clip(observed, 0.0, 1.2, out=observed)
    observed20 = block_mean2(observed)
    scl = cl.classify(observed20, clouds, rng)
    return S2Render(surface=surface, observed=observed, observed20=observed20, clouds=clouds,
                    scl=scl)


def to_dn(refl: np.ndarray) -> np.ndarray:
    """Reflectance → uint16 DN with the −0.1 BOA offset; NaN → 0 (nodata)."""
    dn = np.rint((np.nan_to_num(refl, nan=-1.0) + np.float32(BOA_OFFSET)) / np.float32(SCALE))
    dn = np.clip(dn, 1, 65535)
    dn[~np.isfinite(refl)] = 0
    return dn.astype(np.uint16)


@lru_cache(maxsize=8)
def neighbour_grid(sim: Grid, res: float) -> Grid:
    """Grid on EPSG:32648 covering ``sim`` (snapped outward to 20 m), pixel size ``res``."""
    x0, y0, x1, y1 = transform_bounds(sim.crs, f"EPSG:{NEIGHBOUR_EPSG}", *sim.bounds,
                                      densify_pts=21)
    x0, y0 = np.floor(x0 / 20.0) * 20.0, np.floor(y0 / 20.0) * 20.0
    x1, y1 = np.ceil(x1 / 20.0) * 20.0, np.ceil(y1 / 20.0) * 20.0
    return Grid(NEIGHBOUR_EPSG, float(x0), float(y1), res, int(round((x1 - x0) / res)),
                int(round((y1 - y0) / res)))


def _warp(a: np.ndarray, src: Grid, dst: Grid, resampling: Resampling,
          nodata: float) -> np.ndarray:
    out = np.full((a.shape[0], *dst.shape), nodata, dtype=a.dtype)
    reproject(a, out, src_transform=src.transform, src_crs=src.crs, src_nodata=nodata,
              dst_transform=dst.transform, dst_crs=dst.crs, dst_nodata=nodata,
              resampling=resampling)
    return out


def write_scene(model: WorldModel, scene: S2Scene, root: Path) -> dict[str, Any]:
    """Render ``scene``, write its six COGs under ``root`` and return its STAC item."""
    r = render(model, scene)
    g10 = model.layout.sim
    g20 = g10.coarsen(2)
    bands10 = r.observed[:4]
    swir20 = r.observed20[4:5]
    scl = r.scl[None]
    if scene.epsg != g10.epsg:
        n10, n20 = neighbour_grid(g10, 10.0), neighbour_grid(g10, 20.0)
        bands10 = _warp(bands10, g10, n10, Resampling.bilinear, np.nan)
        swir20 = _warp(swir20, g20, n20, Resampling.bilinear, np.nan)
        scl = _warp(scl, g20, n20, Resampling.nearest, 0)
        g10, g20 = n10, n20
    folder = root / "scenes" / si.S2_COLLECTION / scene.id
    paths: dict[str, Path] = {}
    for i, key in enumerate(("blue", "green", "red", "nir")):
        paths[key] = write_cog(folder / f"{key}.tif", to_dn(bands10[i]), crs=g10.crs,
                               transform=g10.transform, nodata=0)
    paths["swir16"] = write_cog(folder / "swir16.tif", to_dn(swir20[0]), crs=g20.crs,
                                transform=g20.transform, nodata=0)
    paths["scl"] = write_cog(folder / "scl.tif", scl[0], crs=g20.crs, transform=g20.transform,
                             nodata=0, resampling="nearest")
    grids = {k: (g10.shape, g10.transform) for k in ("blue", "green", "red", "nir")}
    grids |= {k: (g20.shape, g20.transform) for k in ("swir16", "scl")}
    geometry, bbox = si.footprint(si.rect_ring(model.layout.sim.bounds), EPSG)
    props = _properties(scene, scl[0], r.clouds)
    assets = si.s2_assets({k: p.resolve() for k, p in paths.items()}, grids)
    return si.item(scene.id, si.S2_COLLECTION, scene.datetime, geometry, bbox, props, assets,
                   ["eo", "proj", "raster", "sat", "grid", "mgrs", "view", "processing"])


def _pct(mask: np.ndarray, valid: np.ndarray, n_valid: int) -> float:
    return round(100.0 * float((mask & valid).sum()) / max(n_valid, 1), 6)


def _properties(scene: S2Scene, scl: np.ndarray, clouds: cl.CloudFields) -> dict[str, Any]:
    valid = scl != cl.SCL_NODATA
    nv = int(valid.sum())
    zone, band, square = MGRS[scene.epsg]
    t = scene.datetime
    stamp = f"{t:%Y%m%dT%H%M%S}"
    unit = scene.platform[-1].upper()
    absolute = 36000 + 143 * scene.k // 10
    return {
        "created": si.iso(t + dt.timedelta(hours=5)),
        "updated": si.iso(t + dt.timedelta(hours=5)),
        "platform": scene.platform,
        "constellation": "sentinel-2",
        "instruments": ["msi"],
        "eo:cloud_cover": _pct(np.isin(scl, cl.SCL_CLOUDS), valid, nv),
        "proj:epsg": scene.epsg,
        "mgrs:utm_zone": zone,
        "mgrs:latitude_band": band,
        "mgrs:grid_square": square,
        "grid:code": f"MGRS-{zone}{band}{square}",
        "sat:orbit_state": "descending",
        "sat:relative_orbit": RELATIVE_ORBIT[scene.platform],
        "view:sun_azimuth": cl.SUN_AZIMUTH,
        "view:sun_elevation": cl.SUN_ELEVATION,
        "s2:product_type": "S2MSI2A",
        "s2:processing_baseline": "05.10",
        "s2:product_uri": f"S2{unit}_MSIL2A_{stamp}_N0510_R104_T{zone}{band}{square}_"
                          f"{t + dt.timedelta(hours=3):%Y%m%dT%H%M%S}.SAFE",
        "s2:datatake_id": f"GS2{unit}_{stamp}_{absolute:06d}_N05.10",
        "s2:datatake_type": "INS-NOBS",
        "s2:nodata_pixel_percentage": round(100.0 * (1 - nv / scl.size), 6),
        "s2:degraded_msi_data_percentage": 0.0,
        "s2:saturated_defective_pixel_percentage": 0.0,
        "s2:dark_features_percentage": 0.0,
        "s2:cloud_shadow_percentage": _pct(scl == cl.SCL_SHADOW, valid, nv),
        "s2:vegetation_percentage": _pct(scl == cl.SCL_VEGETATION, valid, nv),
        "s2:not_vegetated_percentage": _pct(scl == cl.SCL_NOT_VEGETATED, valid, nv),
        "s2:water_percentage": _pct(scl == cl.SCL_WATER, valid, nv),
        "s2:unclassified_percentage": 0.0,
        "s2:medium_proba_clouds_percentage": _pct(scl == cl.SCL_CLOUD_MEDIUM, valid, nv),
        "s2:high_proba_clouds_percentage": _pct(scl == cl.SCL_CLOUD_HIGH, valid, nv),
        "s2:thin_cirrus_percentage": _pct(scl == cl.SCL_CIRRUS, valid, nv),
        "s2:snow_ice_percentage": 0.0,
        "s2:sequence": "0",
        "earthsearch:boa_offset_applied": False,
        "earthsearch:s3_path": f"s3://sentinel-cogs/sentinel-s2-l2a-cogs/{zone}/{band}/{square}/"
                               f"{t.year}/{t.month}/{scene.id}",
        "processing:software": {"cropassets.world": "1"},
        "demo:cloud_cover_target": round(100.0 * clouds.cover, 2),
    }
