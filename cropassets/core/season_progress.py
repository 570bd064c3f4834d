"""Which week of the current season to publish next (the logic of the new-week sensor).

Weeks are published in order: week w+1's series reads the cubes of weeks 1..w, so a week
is requested only when every earlier week is published. A week is ready when its last day
has passed (scenes of a week still being acquired would make a map that changes) and the
catalog holds at least one scene acquired in it. Published weeks are ingested again
(:func:`stale_weeks`) when a scene was skipped or the catalog gained scenes later.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from cropassets.core.seasons import SeasonWeek


@dataclass(frozen=True)
class NextWeek:
    """Outcome of :func:`next_week`: the week to run, or why there is none."""

    week: SeasonWeek | None
    reason: str


def next_week(weeks: Sequence[SeasonWeek], published: Collection[str],
              has_scenes: Callable[[SeasonWeek], bool], today: date) -> NextWeek:
    """The first unpublished week, if it is over and the catalog has scenes for it.

    Args:
        weeks: The season's weeks in order.
        published: Keys of weeks already published (e.g. ``week_layers`` materialized).
        has_scenes: Whether the STAC catalog holds any scene acquired in a week.
        today: Current date (UTC).

    Returns:
        The week to publish, or ``None`` with the reason (all published, week not over,
        no scenes yet).
    """
    for week in weeks:
        if week.key in published:
            continue
        if week.end > today:
            return NextWeek(None, f"week {week.week_of_season} ({week.key}) is not over until "
                                  f"{week.end.isoformat()}")
        if not has_scenes(week):
            return NextWeek(None, f"no scenes for week {week.week_of_season} ({week.key}) in the "
                                  "catalog yet")
        return NextWeek(week, f"week {week.week_of_season} ({week.key}) has scenes")
    return NextWeek(None, "every week of the season is published")


@dataclass(frozen=True)
class Ingested:
    """What ``raw_scenes`` loaded for one tile-week: scenes loaded and scenes skipped."""

    scenes: int
    skipped: int


def recent_published(weeks: Sequence[SeasonWeek], published: Collection[str], today: date,
                     lookback: int) -> list[SeasonWeek]:
    """The ``lookback`` most recent published weeks that are over, oldest first."""
    return [w for w in weeks if w.key in published and w.end <= today][-lookback:]


def stale_weeks(weeks: Sequence[SeasonWeek], published: Collection[str],
                ingested: Mapping[str, Mapping[str, Ingested]],
                catalog_scenes: Callable[[SeasonWeek], Mapping[str, int]], today: date,
                lookback: int = 4) -> list[tuple[SeasonWeek, str]]:
    """Published weeks to ingest again: incomplete ones and those with late arrivals.

    Only the ``lookback`` most recent published weeks that are over are looked at
    (:func:`recent_published`; older weeks are left as published). A week is stale when a
    tile's ingestion skipped a scene (an asset that failed to read, e.g. a remote error
    that outlasted the retries) or when the catalog now lists more scenes of a tile-week
    than were loaded plus skipped (scenes that arrived after the week was published).

    Args:
        weeks: The season's weeks in order.
        published: Keys of published weeks.
        ingested: week key -> tile id -> :class:`Ingested` (the latest ``raw_scenes``).
        catalog_scenes: week -> tile id -> scenes the catalog lists now.
        today: Current date (UTC).
        lookback: How many recent published weeks to check.

    Returns:
        ``(week, reason)`` pairs, oldest week first.
    """
    out = []
    for week in recent_published(weeks, published, today, lookback):
        by_tile = ingested.get(week.key, {})
        incomplete = sorted(t for t, rec in by_tile.items() if rec.skipped > 0)
        if incomplete:
            out.append((week, f"week {week.week_of_season} ({week.key}) was ingested incomplete "
                              f"(scenes skipped on tiles {incomplete})"))
            continue
        now = catalog_scenes(week)
        late = sorted(t for t, n in now.items()
                      if t in by_tile and n > by_tile[t].scenes + by_tile[t].skipped)
        if late:
            out.append((week, f"week {week.week_of_season} ({week.key}) has scenes that arrived "
                              f"after it was published (tiles {late})"))
    return out
