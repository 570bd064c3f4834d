"""Sentinel-1 RTC scenes: two relative orbits, backscatter rendering, COGs + STAC item.

A descending orbit covering the whole region and an ascending orbit covering only its
eastern ~70 % each repeat every 12 days, 6 days apart (6-day effective revisit in the east,
12 days in the west). Gamma0 is rendered at 10 m from the parcels' cover fractions
(:mod:`~cropassets.world.radar`) with a static texture and per-scene soil-moisture and
wind effects, multi-looked to 20 m and multiplied by speckle drawn from
Gamma(L, 1/L) with L = 4.4 independently per pixel and polarisation. Stored as float32
linear power, nodata −32768 outside the swath (Planetary Computer ``sentinel-1-rtc``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cropassets.world import catalog_items as si
from cropassets.world import radar
from cropassets.world.config import EPSG, WATER
from cropassets.world.noise import block_mean2
from cropassets.world.scene_cogs import write_cog
from cropassets.world.world_grid import Grid
from cropassets.world.world_model import PRE_SEASON_DAYS, WorldModel, stream

NODATA = -32768.0
LOOKS = 4.4  # equivalent number of looks
REPEAT_DAYS = 12
EPOCH = dt.date(2024, 1, 2)  # a pass of the descending orbit


@dataclass(frozen=True)
class Orbit:
    """A relative orbit over the region."""

    relative: int
    state: str  # "ascending" | "descending"
    offset_days: int  # first pass after EPOCH
    utc: dt.time
    west_edge: float  # fraction of the region's width left uncovered at mid-height
    slant_deg: float  # tilt of the swath edge from north


ORBITS = (
    Orbit(62, "descending", 0, dt.time(23, 10, 41), 0.0, 0.0),
    Orbit(135, "ascending", 6, dt.time(11, 34, 17), 0.30, -9.0),
)


@dataclass(frozen=True)
class S1Scene:
    """One planned Sentinel-1 acquisition."""

    date: dt.date
    orbit: Orbit
    cycle: int  # repeat cycles since EPOCH

    @property
    def datetime(self) -> dt.datetime:
        """Scene mid-time (UTC)."""
        return dt.datetime.combine(self.date, self.orbit.utc, tzinfo=dt.UTC)

    @property
    def absolute_orbit(self) -> int:
        """Sentinel-1A absolute orbit consistent with the relative orbit."""
        return 51773 + 175 * self.cycle + (self.orbit.relative - 62)

    @property
    def id(self) -> str:
        """Planetary-Computer-style item id."""
        t0 = self.datetime - dt.timedelta(seconds=12)
        t1 = self.datetime + dt.timedelta(seconds=13)
        take = (self.absolute_orbit * 37 + 0x5A1) % 0xFFFFFF
        return (f"S1A_IW_GRDH_1SDV_{t0:%Y%m%dT%H%M%S}_{t1:%Y%m%dT%H%M%S}_"
                f"{self.absolute_orbit:06d}_{take:06X}_rtc")


def plan_scenes(model: WorldModel) -> list[S1Scene]:
    """All acquisitions from 14 days before each season start to its end, in time order."""
    out: dict[tuple[dt.date, int], S1Scene] = {}
    for sm in model.seasons:
        first = sm.start - dt.timedelta(days=PRE_SEASON_DAYS)
        for orbit in ORBITS:
            c = -(-((first - EPOCH).days - orbit.offset_days) // REPEAT_DAYS)
            while True:
                day = EPOCH + dt.timedelta(days=REPEAT_DAYS * c + orbit.offset_days)
                if day >= sm.season.end:
                    break
                out[(day, orbit.relative)] = S1Scene(day, orbit, c)
                c += 1
    return [out[k] for k in sorted(out)]


def swath_mask(orbit: Orbit, shape: tuple[int, int]) -> np.ndarray | None:
    """Boolean (y, x) mask of pixels inside the swath, or None when it covers all."""
    if orbit.west_edge <= 0:
        return None
    h, w = shape
    rows = np.arange(h)[:, None] + 0.5
    edge = orbit.west_edge * w + np.tan(np.deg2rad(orbit.slant_deg)) * (rows - h / 2)
    return (np.arange(w)[None, :] + 0.5) >= edge


def swath_ring(orbit: Orbit, grid: Grid) -> np.ndarray:
    """Covered area of ``grid`` as a ring (k, 2) in map coordinates."""
    x0, y0, x1, y1 = grid.bounds
    if orbit.west_edge <= 0:
        return si.rect_ring(grid.bounds)
    w, h = grid.width, grid.height
    t = np.tan(np.deg2rad(orbit.slant_deg))
    e_top = x0 + (orbit.west_edge * w + t * (0 - h / 2)) * grid.res
    e_bot = x0 + (orbit.west_edge * w + t * (h - h / 2)) * grid.res
    return np.array([[e_bot, y0], [x1, y0], [x1, y1], [e_top, y1]], dtype=np.float64)


@dataclass
class S1Render:
    """A rendered scene on the 20 m simulation grid.

    Attributes:
        clean: Multi-looked gamma0 before speckle, (2, y, x) linear (VV, VH).
        gamma0: With speckle, NODATA outside the swath, (2, y, x) float32 linear.
    """

    clean: np.ndarray
    gamma0: np.ndarray


def render(model: WorldModel, scene: S1Scene) -> S1Render:
    """Render ``scene`` (deterministic for the world's seed, date and orbit)."""
    found = model.season_at(scene.date)
    if found is None:
        raise ValueError(f"{scene.date} lies outside every season window")
    sm, d = found
    rng = stream(model.config.seed, 20, scene.date.toordinal(), scene.orbit.relative)
    fr = sm.fractions(model.traits, float(d))
    fid = model.parcels.fid
    tex = model.textures
    f32 = np.float32
    fs = np.clip(fr.fs.astype(f32)[fid] * (f32(1.0) + f32(0.05) * tex.veg), 0.0, 1.0)
    fw = np.clip(fr.fw.astype(f32)[fid] * (f32(1.0) + f32(0.04) * tex.water), 0.0, 1.0)
    fw *= f32(1.0) - fs
    fb = fr.fb.astype(f32)[fid]
    fsoil = np.clip(f32(1.0) - fs - fw - fb, 0.0, 1.0)
    is_water = sm.code == WATER
    wet_db = rng.uniform(-1.0, 2.0)  # soil moisture after rain
    wind_db = rng.normal(0.0, 1.5)  # wind roughening of open water
    texture = np.power(f32(10.0), f32(0.05) * tex.radar)  # about ±0.5 dB
    out = []
    for p in range(2):
        canopy = radar.to_linear(radar.CANOPY_DB[sm.code, p]).astype(f32)[fid]
        water = np.where(is_water, radar.to_linear(radar.OPEN_WATER_DB[p] + wind_db),
                         radar.to_linear(radar.FLOOD_DB[p])).astype(f32)[fid]
        soil = np.where(is_water, radar.to_linear(radar.SHORE_DB[p]),
                        radar.to_linear(radar.SOIL_DB[p] + wet_db)).astype(f32)[fid]
        sigma = fs * canopy + fw * water + fb * f32(radar.to_linear(radar.BUILT_DB[p])) \
            + fsoil * soil
        out.append(sigma * texture)
    clean = block_mean2(np.stack(out))
    speckle = rng.gamma(LOOKS, 1.0 / LOOKS, size=clean.shape).astype(f32)
    gamma0 = (clean * speckle).astype(f32)
    mask = swath_mask(scene.orbit, clean.shape[1:])
    if mask is not None:
        gamma0[:, ~mask] = f32(NODATA)
    return S1Render(clean=clean, gamma0=gamma0)


def write_scene(model: WorldModel, scene: S1Scene, root: Path) -> dict[str, Any]:
    """Render ``scene``, write its ``vv``/``vh`` COGs under ``root``, return its STAC item."""
    r = render(model, scene)
    g20 = model.layout.sim.coarsen(2)
    folder = root / "scenes" / si.S1_COLLECTION / scene.id
    paths = {key: write_cog(folder / f"{key}.tif", r.gamma0[i], crs=g20.crs,
                            transform=g20.transform, nodata=NODATA).resolve()
             for i, key in enumerate(("vv", "vh"))}
    geometry, bbox = si.footprint(swath_ring(scene.orbit, g20), EPSG)
    t = scene.datetime
    props = {
        "start_datetime": si.iso(t - dt.timedelta(seconds=12)),
        "end_datetime": si.iso(t + dt.timedelta(seconds=13)),
        "platform": "SENTINEL-1A",
        "constellation": "Sentinel-1",
        "sar:instrument_mode": "IW",
        "sar:frequency_band": "C",
        "sar:center_frequency": 5.405,
        "sar:polarizations": ["VV", "VH"],
        "sar:product_type": "GRD",
        "sar:resolution_range": 20,
        "sar:resolution_azimuth": 22,
        "sar:pixel_spacing_range": 10,
        "sar:pixel_spacing_azimuth": 10,
        "sar:looks_range": 5,
        "sar:looks_azimuth": 1,
        "sar:looks_equivalent_number": LOOKS,
        "sar:observation_direction": "right",
        "sat:platform_international_designator": "2014-016A",
        "sat:orbit_state": scene.orbit.state,
        "sat:relative_orbit": scene.orbit.relative,
        "sat:absolute_orbit": scene.absolute_orbit,
        "proj:epsg": EPSG,
        "s1:product_timeliness": "Fast-24h",
        "s1:processing_level": "1",
        "s1:resolution": "high",
        "s1:orbit_source": "RESORB",
    }
    assets = si.s1_assets(paths, g20.shape, g20.transform)
    return si.item(scene.id, si.S1_COLLECTION, t, geometry, bbox, props, assets,
                   ["sar", "sat", "proj", "raster"])
