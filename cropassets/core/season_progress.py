"""Which week of the current season to publish next (the logic of the new-week sensor).

Weeks are published in order: week w+1's series reads the cubes of weeks 1..w, so a week
is requested only when every earlier week is published. A week is ready when its last day
has passed (scenes of a week still being acquired would make a map that changes) and the
catalog holds at least one scene acquired in it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
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
            return NextWeek(None, f"week {week.index} ({week.key}) is not over until "
                                  f"{week.end.isoformat()}")
        if not has_scenes(week):
            return NextWeek(None, f"no scenes for week {week.index} ({week.key}) in the "
                                  "catalog yet")
        return NextWeek(week, f"week {week.index} ({week.key}) has scenes")
    return NextWeek(None, "every week of the season is published")
