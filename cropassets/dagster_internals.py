"""Every private Dagster API the project uses, in one place.

Dagster 1.13 has no public form of these; they are pinned with the Dagster family in
pyproject.toml (``dagster==1.13.*``). When Dagster moves, this is the one module to check:
each name is imported here and nowhere else in ``cropassets/``.

- ``ASSET_PARTITION_RANGE_START_TAG`` / ``..._END_TAG``: the run tags of a single-run
  backfill over a partition range (``cropassets materialize`` launches such runs).
- ``AssetGraphSubset``, ``AssetKeyPartitionKey``: the asset partitions a backfill targets
  (the new-week sensor asks which are already being backfilled).
- ``BulkActionsFilter``, ``BulkActionStatus``: listing the instance's live backfills.
"""

from __future__ import annotations

from dagster._core.definitions.assets.graph.asset_graph_subset import AssetGraphSubset
from dagster._core.definitions.events import AssetKeyPartitionKey
from dagster._core.execution.backfill import BulkActionsFilter, BulkActionStatus
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

__all__ = [
    "ASSET_PARTITION_RANGE_END_TAG",
    "ASSET_PARTITION_RANGE_START_TAG",
    "AssetGraphSubset",
    "AssetKeyPartitionKey",
    "BulkActionStatus",
    "BulkActionsFilter",
]
