"""Constants and small value types of the synthetic Sentinel world.

Everything the generator draws at random is seeded from :attr:`WorldConfig.seed`; the
constants here are the fixed design (classes, seasons, grid placement).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: Bumped whenever the generator's output changes for the same parameters; part of the
#: idempotency check in ``world.json``.
GENERATOR_VERSION = 2

EPSG = 32647  # WGS 84 / UTM zone 47N: the tile grid and most scenes
NEIGHBOUR_EPSG = 32648  # WGS 84 / UTM zone 48N: the neighbouring MGRS tile
RESOLUTION = 10.0  # m, tile grid pixel size
ORIGIN = (620000.0, 1620000.0)  # (easting, northing) of the region's upper-left corner, m
MARGIN_PX = 16  # simulated pixels beyond the tiles on every side (scenes cover them too)


@dataclass(frozen=True)
class CoverClass:
    """One land-cover class of the world and its legend entry."""

    code: int
    name: str
    crop: bool
    color: str  # hex, "#rrggbb"

    def to_dict(self) -> dict[str, Any]:
        """The class as written to ``world.json``."""
        return {"code": self.code, "name": self.name, "crop": self.crop, "color": self.color}


RICE, MAIZE, CASSAVA, SUGARCANE, FOREST, WATER, BUILT = 1, 2, 3, 4, 5, 6, 7
CROP_CODES = (RICE, MAIZE, CASSAVA, SUGARCANE)
CLASSES: tuple[CoverClass, ...] = (
    CoverClass(RICE, "rice", True, "#1b9e77"),
    CoverClass(MAIZE, "maize", True, "#f2c500"),
    CoverClass(CASSAVA, "cassava", True, "#d95f02"),
    CoverClass(SUGARCANE, "sugarcane", True, "#a6d854"),
    CoverClass(FOREST, "forest", False, "#1a5e20"),
    CoverClass(WATER, "water", False, "#2b83ba"),
    CoverClass(BUILT, "built-up", False, "#9e9e9e"),
)
CLASS_NAMES: dict[int, str] = {c.code: c.name for c in CLASSES}
#: Relative frequency of the crop classes among crop fields (rice 35 : 15 : 15 : 15).
CROP_WEIGHTS: dict[int, float] = {RICE: 35.0, MAIZE: 15.0, CASSAVA: 15.0, SUGARCANE: 15.0}


@dataclass(frozen=True)
class Season:
    """A growing season: ``weeks`` Monday-based weeks from ``start``."""

    id: str
    start: dt.date
    weeks: int
    role: str  # "reference" (labels used for training) or "current"

    def __post_init__(self) -> None:
        if self.start.weekday() != 0:
            raise ValueError(f"season {self.id!r} must start on a Monday, got {self.start}")
        if self.weeks < 1:
            raise ValueError(f"season {self.id!r} needs at least one week")
        if self.role not in ("reference", "current"):
            raise ValueError(f"season role must be 'reference' or 'current', got {self.role!r}")

    @property
    def days(self) -> int:
        """Length in days."""
        return 7 * self.weeks

    @property
    def end(self) -> dt.date:
        """First day after the season (exclusive end)."""
        return self.start + dt.timedelta(days=self.days)

    def week_start(self, k: int) -> dt.date:
        """Monday of week ``k`` (1-based)."""
        return self.start + dt.timedelta(days=7 * (k - 1))

    def to_dict(self) -> dict[str, Any]:
        """The season as written to ``seasons.json``."""
        return {"id": self.id, "start": self.start.isoformat(), "weeks": self.weeks,
                "role": self.role}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Season:
        """Parse the ``seasons.json`` form (``start`` as ISO date or ``date``)."""
        start = d["start"]
        if isinstance(start, str):
            start = dt.date.fromisoformat(start)
        return cls(id=str(d["id"]), start=start, weeks=int(d["weeks"]),
                   role=str(d.get("role", "reference")))


DEFAULT_SEASONS: tuple[Season, ...] = (
    Season("2024", dt.date(2024, 5, 6), 28, "reference"),
    Season("2025", dt.date(2025, 5, 5), 28, "current"),
)


def parse_seasons(seasons: Iterable[Season | Mapping[str, Any]] | None) -> tuple[Season, ...]:
    """Normalise a seasons argument (``None`` → the default two seasons)."""
    if seasons is None:
        return DEFAULT_SEASONS
    out = tuple(s if isinstance(s, Season) else Season.from_dict(s) for s in seasons)
    if not out:
        raise ValueError("at least one season is needed")
    if len({s.id for s in out}) != len(out):
        raise ValueError("season ids must be unique")
    return tuple(sorted(out, key=lambda s: s.start))


@dataclass(frozen=True)
class WorldConfig:
    """The parameters that fully determine a world."""

    seed: int = 42
    size: int = 512  # tile edge, px
    tiles: int = 4
    seasons: tuple[Season, ...] = field(default=DEFAULT_SEASONS)

    def __post_init__(self) -> None:
        if self.size < 32 or self.size % 2:
            raise ValueError(f"size must be an even number of pixels >= 32 (the 20 m bands "
                             f"halve it), got {self.size}")
        if not 1 <= self.tiles <= 100:
            raise ValueError(f"tiles must be in 1..100, got {self.tiles}")

    def identity(self) -> dict[str, Any]:
        """What ``world.json`` records to decide whether a world is already generated."""
        return {
            "generator_version": GENERATOR_VERSION,
            "seed": self.seed,
            "size": self.size,
            "tiles": self.tiles,
            "seasons": [s.to_dict() for s in self.seasons],
        }

