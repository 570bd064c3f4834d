"""Seasons and their weeks.

A season starts on a Monday and lasts a whole number of weeks. Week ``k`` (1-based) of a
season covers the half-open UTC interval ``[start + 7(k-1) days, start + 7k days)``. A week
is identified everywhere (partition keys, file names) by the ISO date of its Monday.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROLES = ("reference", "current")


class SeasonError(ValueError):
    """The seasons file is invalid or a week lies outside every season."""


@dataclass(frozen=True)
class Season:
    """A growing season.

    Attributes:
        id: Season identifier (e.g. ``"2025"``).
        start: Monday on which week 1 starts.
        weeks: Number of weeks in the season.
        role: ``"reference"`` (labelled, used for training) or ``"current"`` (mapped; its
            labels, where they exist, are held back for evaluation).
    """

    id: str
    start: date
    weeks: int
    role: str

    @property
    def end(self) -> date:
        """First day after the season (exclusive end)."""
        return self.start + timedelta(days=7 * self.weeks)

    def week_starts(self) -> list[date]:
        """Mondays of weeks 1..weeks."""
        return [self.start + timedelta(days=7 * k) for k in range(self.weeks)]


@dataclass(frozen=True)
class SeasonWeek:
    """One week of one season: the unit of a partition's time dimension."""

    season: Season
    week_of_season: int  # 1-based: the sequence length in weeks of what this week maps
    start: date

    @property
    def key(self) -> str:
        """Partition key: ISO date of the week's Monday."""
        return self.start.isoformat()

    @property
    def end(self) -> date:
        """Exclusive end date (the next Monday)."""
        return self.start + timedelta(days=7)

    def weeks_to_date(self) -> list[SeasonWeek]:
        """Weeks 1..this week of the season, in order (what a product of this week reads)."""
        return [SeasonWeek(self.season, i + 1, self.season.start + timedelta(weeks=i))
                for i in range(self.week_of_season)]

    def interval_utc(self) -> tuple[datetime, datetime]:
        """Half-open acquisition interval [start, end) as timezone-aware UTC datetimes."""
        t0 = datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC)
        return t0, t0 + timedelta(days=7)


def _parse_season(raw: object, where: str) -> Season:
    if not isinstance(raw, dict) or not {"id", "start", "weeks", "role"} <= raw.keys():
        raise SeasonError(f"{where}: expected an object with id, start, weeks, role")
    try:
        start = date.fromisoformat(str(raw["start"]))
    except ValueError as exc:
        raise SeasonError(f"{where}: start {raw['start']!r} is not an ISO date") from exc
    if start.weekday() != 0:
        raise SeasonError(f"{where}: start {start} is a {start:%A}; seasons start on a Monday")
    weeks = int(raw["weeks"])
    if weeks < 1:
        raise SeasonError(f"{where}: weeks must be >= 1, got {weeks}")
    if raw["role"] not in ROLES:
        raise SeasonError(f"{where}: role {raw['role']!r} must be one of {ROLES}")
    return Season(str(raw["id"]), start, weeks, str(raw["role"]))


def load_seasons(path: str | Path) -> list[Season]:
    """Read a seasons JSON file (``{"seasons": [...]}``), sorted by start; no overlaps."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise SeasonError(f"seasons file {path} does not exist") from exc
    except json.JSONDecodeError as exc:
        raise SeasonError(f"seasons file {path} is not valid JSON: {exc}") from exc
    raw = doc.get("seasons") if isinstance(doc, dict) else None
    if not isinstance(raw, list) or not raw:
        raise SeasonError(f"seasons file {path}: expected {{\"seasons\": [...]}} with >= 1 season")
    seasons = sorted((_parse_season(r, f"{path} seasons[{i}]") for i, r in enumerate(raw)),
                     key=lambda s: s.start)
    for a, b in zip(seasons, seasons[1:], strict=False):
        if b.start < a.end:
            raise SeasonError(f"seasons file {path}: seasons {a.id} and {b.id} overlap")
    if len({s.id for s in seasons}) != len(seasons):
        raise SeasonError(f"seasons file {path}: duplicate season ids")
    return seasons


def all_weeks(seasons: list[Season]) -> list[SeasonWeek]:
    """Every week of every season, in time order."""
    return [SeasonWeek(s, k + 1, d) for s in seasons for k, d in enumerate(s.week_starts())]


def find_week(seasons: list[Season], week_key: str) -> SeasonWeek:
    """Resolve a week partition key (ISO Monday date) to its season and week index.

    Raises:
        SeasonError: the key is not a date, not a Monday, or outside every season.
    """
    try:
        day = date.fromisoformat(week_key)
    except ValueError:
        raise SeasonError(f"week {week_key!r} is not an ISO date (expected e.g. "
                          f"'{seasons[0].start.isoformat()}')") from None
    for season in seasons:
        if season.start <= day < season.end:
            offset = (day - season.start).days
            if offset % 7:
                raise SeasonError(f"week {week_key!r} is not a week start of season {season.id} "
                                  f"(weeks start on Mondays from {season.start})")
            return SeasonWeek(season, offset // 7 + 1, day)
    spans = ", ".join(f"{s.id}: {s.start}..{s.end - timedelta(days=1)}" for s in seasons)
    raise SeasonError(f"week {week_key!r} lies outside every season ({spans})")
