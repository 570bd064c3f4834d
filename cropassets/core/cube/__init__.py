"""Weekly data cubes.

Per-scene indices with cloud masks, weekly composites, observation coverage.
"""

from __future__ import annotations

from cropassets.core.cube.composite import (
    s1_db_stacks,
    s2_feature_stack,
    weekly_composite,
    write_weekly_composite,
)
from cropassets.core.cube.coverage import coverage_counts, read_cube_counts, write_coverage_cog
from cropassets.core.cube.indices import (
    FeatureConfigError,
    check_features,
    clear_mask,
    lee_filter,
    normalized_difference,
    to_db,
)

__all__ = [
    "FeatureConfigError",
    "check_features",
    "clear_mask",
    "coverage_counts",
    "lee_filter",
    "normalized_difference",
    "read_cube_counts",
    "s1_db_stacks",
    "s2_feature_stack",
    "to_db",
    "weekly_composite",
    "write_coverage_cog",
    "write_weekly_composite",
]
