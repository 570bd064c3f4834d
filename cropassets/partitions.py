"""The map of the graph: every partition definition and every partition mapping.

Tiles come from the tile-grid file and weeks from the seasons file (see
:mod:`cropassets.settings`), so adding a tile or a season is a file edit. Keys of the
two-dimensional partitions read ``"<tile>|<week>"`` (Dagster orders dimensions by name),
where ``week`` is the ISO date of the week's Monday.

Partitions:

- ``tile_week_partitions``: raw_scenes, weekly_cube, sos_map, coverage_map, crop_map;
- ``week_partitions``: scalograms, week_model, week_layers;
- ``sequence_partitions`` (week of season k = 03..N): cnn2d_checkpoint;
- none: knee_report.

Mappings (downstream <- upstream):

- ``SEASON_TO_DATE``: a tile's week w <- the same tile's weeks 1..w of its season
  (sos_map, crop_map and coverage_map <- weekly_cube);
- ``BY_WEEK``: between a week and its tile x week partitions, either way (scalograms <-
  weekly_cube and week_layers <- crop_map, sos_map, coverage_map: a week reads all its
  tiles; crop_map <- week_model: each tile reads its week's record);
- ``WEEK_TO_SEQUENCE``: checkpoint k <- week k of every season (cnn2d_checkpoint <-
  scalograms);
- ``SEQUENCE_TO_WEEKS``: week w <- the checkpoint of its week of season (week_model <-
  cnn2d_checkpoint);
- identity (no mapping given): weekly_cube <- raw_scenes;
  knee_report (unpartitioned) reads every checkpoint and week_model reads the report.
"""

from __future__ import annotations

from dagster import (
    DimensionPartitionMapping,
    IdentityPartitionMapping,
    MultiPartitionMapping,
    MultiPartitionsDefinition,
    MultiToSingleDimensionPartitionMapping,
    StaticPartitionMapping,
    StaticPartitionsDefinition,
)

from cropassets.core.seasons import Season, all_weeks, find_week, load_seasons
from cropassets.core.tiles import TileSpec, load_tiles
from cropassets.settings import load_settings

_settings = load_settings()
TILES: dict[str, TileSpec] = load_tiles(_settings.tiles_file)
SEASONS: list[Season] = load_seasons(_settings.seasons_file)

tile_partitions = StaticPartitionsDefinition(list(TILES))
week_partitions = StaticPartitionsDefinition([w.key for w in all_weeks(SEASONS)])
tile_week_partitions = MultiPartitionsDefinition({"tile": tile_partitions,
                                                  "week": week_partitions})

MAX_WEEKS = max(s.weeks for s in SEASONS)
"""Longest season, weeks."""
MIN_WEEKS = 3
"""Shortest sequence a CNN2D is trained for (the CWT needs 3 steps): weeks 1-2 get no map."""
sequence_partitions = StaticPartitionsDefinition(
    [f"{k:02d}" for k in range(MIN_WEEKS, MAX_WEEKS + 1)])
"""Week of season k (sequence length), zero-padded: one CNN2D checkpoint per k >= 3."""


def week_to_sequence_key(week_key: str) -> str:
    """The checkpoint partition (``"07"``) that serves calendar week ``week_key``."""
    return f"{find_week(SEASONS, week_key).week_of_season:02d}"


def split_tile_week(key: object) -> tuple[str, str]:
    """``(tile, week)`` of a tile x week partition key (a ``MultiPartitionKey`` or its string)."""
    dims = tile_week_partitions.get_partition_key_from_str(str(key)).keys_by_dimension
    return dims["tile"], dims["week"]


def _weeks_up_to_mapping() -> StaticPartitionMapping:
    """Upstream week u -> every downstream week w >= u of the same season."""
    by_upstream: dict[str, list[str]] = {}
    for w in all_weeks(SEASONS):
        later = [x.key for x in all_weeks([w.season]) if x.week_of_season >= w.week_of_season]
        by_upstream[w.key] = later
    return StaticPartitionMapping(by_upstream)


SEASON_TO_DATE = MultiPartitionMapping({
    "tile": DimensionPartitionMapping("tile", IdentityPartitionMapping()),
    "week": DimensionPartitionMapping("week", _weeks_up_to_mapping()),
})
"""A tile's week w reads the weekly cubes of weeks 1..w of its season, same tile."""

BY_WEEK = MultiToSingleDimensionPartitionMapping(partition_dimension_name="week")
"""A week partition reads every tile of that week."""

WEEK_TO_SEQUENCE = StaticPartitionMapping(
    {w.key: week_to_sequence_key(w.key) for w in all_weeks(SEASONS)
     if w.week_of_season >= MIN_WEEKS})
"""Week w of any season feeds the checkpoint of its week of season k (k >= 3)."""

SEQUENCE_TO_WEEKS = StaticPartitionMapping({
    k: [w.key for w in all_weeks(SEASONS) if w.week_of_season == int(k)]
    for k in sequence_partitions.get_partition_keys()})
"""Checkpoint k serves week k of every season (the weeks whose week of season is k)."""
