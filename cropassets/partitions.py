"""All partition definitions of the code location.

Tiles come from the tile-grid file and weeks from the seasons file (see
:mod:`cropassets.settings`), so adding a tile or a season is a file edit. Keys of the
two-dimensional partitions read ``"<tile>|<week>"`` (Dagster orders dimensions by name),
where ``week`` is the ISO date of the week's Monday.
"""

from __future__ import annotations

from dagster import MultiPartitionsDefinition, StaticPartitionsDefinition

from cropassets.core.grid import TileSpec, load_tiles
from cropassets.core.seasons import Season, all_weeks, find_week, load_seasons
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
    return f"{find_week(SEASONS, week_key).index:02d}"


def split_tile_week(key: object) -> tuple[str, str]:
    """``(tile, week)`` of a tile x week partition key (a ``MultiPartitionKey`` or its string)."""
    dims = tile_week_partitions.get_partition_key_from_str(str(key)).keys_by_dimension
    return dims["tile"], dims["week"]
