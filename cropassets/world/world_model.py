"""The world model: grid, parcels, per-season calendars and static textures.

Everything is drawn from independent random streams keyed by the seed, so a model rebuilt
from the same :class:`~cropassets.world.config.WorldConfig` is identical (this is how
:mod:`~cropassets.world.profiles` and the tests recover the noise-free truth).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from cropassets.world.config import Season, WorldConfig
from cropassets.world.fields import ParcelLayout, assign_crops, build_parcels
from cropassets.world.noise import fractal_noise
from cropassets.world.phenology import (
    Fractions,
    SeasonPhenology,
    Traits,
    draw_class_shift,
    draw_season,
    draw_traits,
    fractions,
)
from cropassets.world.reflectance import vegetation_table
from cropassets.world.world_grid import Layout, make_layout

PRE_SEASON_DAYS = 14  # scenes are simulated from two weeks before each season start


def stream(seed: int, *key: int) -> np.random.Generator:
    """Independent random stream for (seed, key...)."""
    return np.random.default_rng([int(seed), *(int(k) for k in key)])


@dataclass
class SeasonModel:
    """One season of the world.

    Attributes:
        index: Position in the world's season list.
        code: Class code of every parcel, (n + 1,) indexed by field id.
        pheno: Calendar parameters.
        veg: Vegetation spectrum of every parcel, (n + 1, 5).
    """

    index: int
    season: Season
    code: np.ndarray
    pheno: SeasonPhenology
    veg: np.ndarray

    @property
    def start(self) -> dt.date:
        """Season start date."""
        return self.season.start

    def fractions(self, traits: Traits, d: float | np.ndarray) -> Fractions:
        """Noise-free cover fractions of all parcels on day(s) ``d`` since the start."""
        return fractions(self.pheno, traits, d, self.start)


@dataclass
class Textures:
    """Static within-field variation on the sim grid, float32 (y, x), unit std.

    Attributes:
        veg: Relative variation of the green fraction.
        water: Relative variation of the water fraction.
        soil: Relative variation of soil brightness.
        radar: Backscatter texture (dB per unit).
    """

    veg: np.ndarray
    water: np.ndarray
    soil: np.ndarray
    radar: np.ndarray


@dataclass
class WorldModel:
    """A complete world description, enough to render any scene."""

    config: WorldConfig
    layout: Layout
    parcels: ParcelLayout
    traits: Traits
    seasons: list[SeasonModel]
    textures: Textures

    def season_at(self, date: dt.date) -> tuple[SeasonModel, int] | None:
        """The season whose scene window (start − 14 d to end) holds ``date``, and day offset."""
        for sm in self.seasons:
            d = (date - sm.start).days
            if -PRE_SEASON_DAYS <= d < sm.season.days:
                return sm, d
        return None


def build_model(config: WorldConfig) -> WorldModel:
    """Draw the world for ``config`` (deterministic)."""
    layout = make_layout(config.size, config.tiles)
    parcels = build_parcels(layout.sim.shape, stream(config.seed, 1))
    codes = assign_crops(parcels, len(config.seasons), stream(config.seed, 2))
    traits = draw_traits(parcels.kind, stream(config.seed, 3))
    seasons = []
    for i, s in enumerate(config.seasons):
        rng = stream(config.seed, 4, i)
        ph = draw_season(codes[i], rng, draw_class_shift(rng))
        seasons.append(SeasonModel(index=i, season=s, code=codes[i], pheno=ph,
                                   veg=vegetation_table(codes[i], traits.nir_gain)))
    rng = stream(config.seed, 5)
    shape = layout.sim.shape
    tex = Textures(veg=fractal_noise(shape, rng, cell=16, octaves=3),
                   water=fractal_noise(shape, rng, cell=16, octaves=2),
                   soil=fractal_noise(shape, rng, cell=32, octaves=4),
                   radar=fractal_noise(shape, rng, cell=8, octaves=2))
    return WorldModel(config=config, layout=layout, parcels=parcels, traits=traits,
                      seasons=seasons, textures=tex)
