"""Crop calendars and class curves: cover fractions of every parcel on any day.

Time is ``d``, days since the season's start (negative before it). Crop fields follow a
double-logistic green-vegetation fraction with per-field dates and rates drawn around the
class means, the class means shifted per season by up to ±7 days:

- rice: transplanted paddies are flooded from ~2 weeks before transplanting (day ~35 ± 14)
  until ~4 weeks after; green-up midpoint transplanting + 30 d, senescence + 100 d,
  harvest + 115 d, then bare. 30 % are direct-seeded: sown 10 days earlier (with the
  maize) with only a short, shallow flood, green-up midpoint + 40 d, senescence + 95 d,
  harvest + 112 d: management within a class that looks much like maize.
- maize and cassava: sown together (day ~30 ± 15) with near-identical green-up (cassava
  a little slower and lower; peaks overlap: fertiliser and density). Short-cycle maize
  (55 %) senesces at sowing + 85 d and is harvested at + 110 d; the long-cycle variety
  (45 %) at + 118 d and + 145 d, while cassava stays green to the end of the season: the
  pair stays confusable until late in the season. 15 % of the maize fields are
  intercropped with cassava: about half of their cover stays green after the maize harvest.
- sugarcane: ratoon regrowth from day 0–30 (70 %) or newly planted with the maize sowing
  (30 %, slower canopy), rising to a high peak, stays green.
- forest: green with a mild seasonal swing; water: water fraction ~1 with a small seasonal
  level change; built-up: constant, mostly impervious, a little vegetation.

Besides the green fraction ``fv`` a crop has a standing-structure fraction ``fs`` (green or
dry canopy, what C-band backscatter sees) that lasts from green-up to harvest.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from cropassets.world.config import (
    BUILT,
    CASSAVA,
    CROP_CODES,
    FOREST,
    MAIZE,
    RICE,
    SUGARCANE,
    WATER,
)

NEVER = 1.0e4  # a date beyond any season, days

#: Class-mean planting day (days since season start): rice transplanting, maize/cassava
#: sowing, sugarcane ratoon regrowth.
PLANTING_MEAN = {RICE: 35.0, MAIZE: 30.0, CASSAVA: 30.0, SUGARCANE: 15.0}
YEAR_SHIFT_MAX = 7.0  # days, class-mean shift between seasons (maize and cassava share one)
DIRECT_SEEDED_RICE = 0.3  # share of rice fields sown directly (no transplanting flood)
LONG_CYCLE_MAIZE = 0.45  # share of maize fields of the long-cycle variety
PLANTED_SUGARCANE = 0.3  # share of sugarcane fields newly planted (not ratoon)
INTERCROPPED_MAIZE = 0.25  # share of maize fields intercropped with cassava


@dataclass
class Traits:
    """Season-independent per-parcel traits, arrays of shape (n + 1,) indexed by field id.

    Attributes:
        soil_gain: Soil brightness factor (unitless, ~0.85–1.15).
        nir_gain: Factor on the vegetation endmember's NIR/SWIR reflectance (unitless).
        level: Forest green fraction, pond water fraction or built-up fraction (0–1).
    """

    soil_gain: np.ndarray
    nir_gain: np.ndarray
    level: np.ndarray


def draw_traits(kind: np.ndarray, rng: np.random.Generator) -> Traits:
    """Draw :class:`Traits` for parcels of the given kind (0 crop, else class code)."""
    n1 = len(kind)
    soil_gain = rng.uniform(0.85, 1.15, n1)
    nir_gain = rng.normal(1.0, 0.035, n1)
    level = np.zeros(n1)
    level[kind == FOREST] = rng.uniform(0.74, 0.86, int((kind == FOREST).sum()))
    level[kind == WATER] = rng.uniform(0.90, 0.97, int((kind == WATER).sum()))
    level[kind == BUILT] = rng.uniform(0.62, 0.80, int((kind == BUILT).sum()))
    return Traits(soil_gain=soil_gain, nir_gain=nir_gain, level=level)


@dataclass
class SeasonPhenology:
    """Crop-calendar parameters of every parcel in one season.

    All arrays have shape (n + 1,), indexed by field id; dates are days since the season
    start, rates are logistic scales in days, levels are cover fractions (0–1). Non-crop
    parcels hold NaN planting dates.

    Attributes:
        code: Class code of each parcel this season.
        planting: Transplanting (rice), sowing (maize, cassava) or regrowth (sugarcane) day.
        green_mid, green_rate: Green-up logistic midpoint and scale.
        sen_mid, sen_rate: Senescence logistic midpoint and scale (NEVER = stays green).
        stay_green: Share of the plateau's green cover (and standing structure) left after
            senescence and harvest: 0 for a pure stand, > 0 for maize intercropped with
            cassava, whose cassava stays.
        harvest: Harvest day: standing structure removed (NEVER = not in season).
        base, peak: Green fraction before green-up / at the plateau.
        struct_peak: Standing-structure fraction at the plateau.
        flood_start, flood_end, flood_max: Rice paddy flooding window and water fraction.
        class_shift: Per crop class, this season's shift of the class-mean dates, days.
    """

    code: np.ndarray
    planting: np.ndarray
    green_mid: np.ndarray
    green_rate: np.ndarray
    sen_mid: np.ndarray
    sen_rate: np.ndarray
    harvest: np.ndarray
    base: np.ndarray
    peak: np.ndarray
    struct_peak: np.ndarray
    flood_start: np.ndarray
    flood_end: np.ndarray
    flood_max: np.ndarray
    class_shift: dict[int, float]
    stay_green: np.ndarray | None = None


def draw_class_shift(rng: np.random.Generator) -> dict[int, float]:
    """Per-season shift of each crop class's mean dates, uniform in ±YEAR_SHIFT_MAX days."""
    s = rng.uniform(-YEAR_SHIFT_MAX, YEAR_SHIFT_MAX, 3)
    return {RICE: float(s[0]), MAIZE: float(s[1]), CASSAVA: float(s[1]), SUGARCANE: float(s[2])}


def draw_season(code: np.ndarray, rng: np.random.Generator,
                class_shift: dict[int, float]) -> SeasonPhenology:
    """Draw per-field calendar parameters around the class means for one season."""
    n1 = len(code)
    nan = np.full(n1, np.nan)
    z = rng.standard_normal((8, n1))
    u = rng.random((8, n1))

    planting = nan.copy()
    green_mid, green_rate = nan.copy(), np.ones(n1)
    sen_mid, sen_rate = np.full(n1, NEVER), np.ones(n1)
    harvest = np.full(n1, NEVER)
    base, peak, struct_peak = np.zeros(n1), np.zeros(n1), np.zeros(n1)
    flood_start, flood_end, flood_max = np.full(n1, NEVER), np.full(n1, NEVER), np.zeros(n1)
    stay_green = np.zeros(n1)

    def sel(c: int) -> np.ndarray:
        return code == c

    m = sel(RICE)
    # management: a share of the paddies is direct-seeded (no transplanting): only a short,
    # shallow flood at sowing and a slower green-up from the seed
    direct = u[5] < DIRECT_SEEDED_RICE
    t = PLANTING_MEAN[RICE] + class_shift[RICE] + np.clip(7.0 * z[0], -14, 14)
    t = np.where(direct, t - 10.0, t)
    planting[m] = t[m]
    green_mid[m] = (t + np.where(direct, 40.0, 30.0) + 2.5 * z[1])[m]
    green_rate[m] = (5.5 + 2.0 * u[0] + np.where(direct, 2.0, 0.0))[m]
    sen_mid[m] = (t + np.where(direct, 95.0, 100.0) + 3.0 * z[2])[m]
    sen_rate[m] = (5.0 + 2.0 * u[1])[m]
    harvest[m] = (t + np.where(direct, 112.0, 115.0) + 3.0 * z[3])[m]
    base[m], peak[m] = 0.04, (0.74 + 0.18 * u[2])[m]
    struct_peak[m] = 0.9
    flood_start[m] = (t + np.where(direct, -3.0, -14.0) + 2.0 * z[4])[m]
    flood_end[m] = (t + np.where(direct, 8.0, 28.0) + 3.0 * z[5])[m]
    flood_max[m] = (np.where(direct, 0.1, 0.78) + np.where(direct, 0.15, 0.17) * u[3])[m]

    # maize and cassava: sown together; a long-cycle maize variety stays green nearly as
    # long as cassava, so the pair stays confusable until late in the season
    for c in (MAIZE, CASSAVA):
        m = sel(c)
        s = PLANTING_MEAN[c] + class_shift[c] + np.clip(7.0 * z[0], -15, 15)
        planting[m] = s[m]
        base[m] = 0.05
        if c == MAIZE:
            long_cycle = u[6] < LONG_CYCLE_MAIZE
            green_mid[m] = (s + 30 + 2.5 * z[1])[m]
            green_rate[m] = (5.0 + 2.0 * u[0])[m]
            sen_mid[m] = (s + np.where(long_cycle, 118.0, 85.0) + 4.0 * z[2])[m]
            sen_rate[m] = (4.0 + 3.0 * u[1])[m]
            harvest[m] = (s + np.where(long_cycle, 145.0, 110.0) + 5.0 * z[3])[m]
            peak[m] = (0.72 + 0.20 * u[2])[m]  # fertiliser and density: a wide range
            struct_peak[m] = 1.0
            mixed = m & (u[5] < INTERCROPPED_MAIZE)  # maize with cassava between the rows
            stay_green[mixed] = 0.55 + 0.25 * u[3][mixed]
        else:
            green_mid[m] = (s + 32 + 2.5 * z[1])[m]
            green_rate[m] = (5.5 + 2.0 * u[0])[m]
            peak[m] = (0.68 + 0.18 * u[2])[m]
            struct_peak[m] = 0.9

    # sugarcane: mostly ratoon regrowth from the season start; a share newly planted with
    # the maize and cassava sowing, slower to close its canopy
    m = sel(SUGARCANE)
    planted = u[7] < PLANTED_SUGARCANE
    r = np.clip(PLANTING_MEAN[SUGARCANE] + class_shift[SUGARCANE] + 15.0 * (2 * u[4] - 1), 0, 30)
    r = np.where(planted, PLANTING_MEAN[MAIZE] + 8.0 * z[6], r)
    planting[m] = r[m]
    green_mid[m] = (r + np.where(planted, 55.0, 40.0) + 4.0 * z[1])[m]
    green_rate[m] = (10.0 + 4.0 * u[0])[m]
    base[m], peak[m] = 0.08, (0.80 + 0.14 * u[2])[m]
    struct_peak[m] = 1.0

    return SeasonPhenology(code=code, planting=planting, green_mid=green_mid,
                           green_rate=green_rate, sen_mid=sen_mid, sen_rate=sen_rate,
                           harvest=harvest, base=base, peak=peak, struct_peak=struct_peak,
                           flood_start=flood_start, flood_end=flood_end, flood_max=flood_max,
                           class_shift=class_shift, stay_green=stay_green)


@dataclass
class Fractions:
    """Cover fractions of each parcel, arrays (n + 1,) or (n + 1, T), unitless 0–1.

    Attributes:
        fv: Green vegetation (what NDVI sees).
        fw: Open water under the canopy (flooded paddy, pond, canal).
        fb: Built-up / impervious.
        fs: Standing structure (green or dry canopy, what backscatter sees).
    """

    fv: np.ndarray
    fw: np.ndarray
    fb: np.ndarray
    fs: np.ndarray


def seasonal_wave(day: np.ndarray) -> np.ndarray:
    """Monsoon greenness cycle in [-1, 1], peaking in late September (day of year 263)."""
    return np.sin(2 * np.pi * (day - 172.0) / 365.25)


def fractions(ph: SeasonPhenology, traits: Traits, d: float | np.ndarray,
              season_start: dt.date) -> Fractions:
    """Noise-free cover fractions of all parcels on day(s) ``d`` since ``season_start``.

    Args:
        ph: The season's calendar parameters.
        traits: Per-parcel traits.
        d: A day offset (scalar) or days of shape (T,).
        season_start: Calendar date of ``d = 0`` (for the seasonal cycle of non-crops).

    Returns:
        :class:`Fractions` of shape (n + 1,) for scalar ``d`` or (n + 1, T).
    """
    scalar = np.ndim(d) == 0
    dd = np.atleast_1d(np.asarray(d, dtype=np.float64))[None, :]

    def col(a: np.ndarray) -> np.ndarray:
        return a[:, None]

    doy = season_start.timetuple().tm_yday + dd
    with np.errstate(invalid="ignore"):
        grow = expit((dd - col(ph.green_mid)) / col(ph.green_rate))
        keep = col(np.zeros(len(ph.code)) if ph.stay_green is None else ph.stay_green)
        sen = keep + (1.0 - keep) * (1.0 - expit((dd - col(ph.sen_mid)) / col(ph.sen_rate)))
        cut = keep + (1.0 - keep) * (1.0 - expit((dd - col(ph.harvest)) / 2.0))
        fv = col(ph.base) + col(ph.peak - ph.base) * grow * sen
        fs = col(ph.struct_peak) * grow * cut
        fw = col(ph.flood_max) * expit((dd - col(ph.flood_start)) / 2.5) \
            * (1.0 - expit((dd - col(ph.flood_end)) / 3.0))
    fb = np.zeros_like(fv)
    code = col(ph.code)
    crop = np.isin(code, CROP_CODES)
    fv = np.where(crop, fv, 0.0)
    fs = np.where(crop, fs, 0.0)
    fw = np.where(crop, fw, 0.0)
    wave = seasonal_wave(doy)
    lvl = col(traits.level)
    forest, water, built = code == FOREST, code == WATER, code == BUILT
    fv = np.where(forest, lvl + 0.05 * wave, fv)
    fs = np.where(forest, 1.0, fs)
    fw = np.where(water, np.clip(lvl + 0.03 * wave, 0.0, 1.0), fw)
    fv = np.where(water, 0.02, fv)
    fb = np.where(built, lvl, fb)
    fv = np.where(built, 0.15, fv)
    out = Fractions(fv=fv, fw=fw, fb=fb, fs=fs)
    if scalar:
        out = Fractions(fv=fv[:, 0], fw=fw[:, 0], fb=fb[:, 0], fs=fs[:, 0])
    return out
