"""Every private Dagster API the project uses, in one place.

Dagster 1.13 has no public form of these; they are pinned with the Dagster family in
pyproject.toml (``dagster==1.13.*``). When Dagster moves, this is the one module to check:
each name is imported here and nowhere else in ``cropassets/``.

- ``ASSET_PARTITION_RANGE_START_TAG`` / ``..._END_TAG``: the run tags of a single-run
  backfill over a partition range (``cropassets materialize`` launches such runs).
- ``AssetGraphSubset``, ``AssetKeyPartitionKey``: the asset partitions a backfill targets
  (the new-week sensor asks which are already being backfilled).
- ``BulkActionsFilter``, ``BulkActionStatus``: listing the instance's live backfills.

And :func:`quiet_dagster_warnings`, the one filter of Dagster's beta/preview notices.
"""

from __future__ import annotations

import warnings

from dagster._core.definitions.assets.graph.asset_graph_subset import AssetGraphSubset
from dagster._core.definitions.events import AssetKeyPartitionKey
from dagster._core.execution.backfill import BulkActionsFilter, BulkActionStatus
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)


def quiet_dagster_warnings() -> None:
    """Keep Dagster's beta/preview notices (one per decorated asset) out of CLI output.

    They concern APIs this project pins on purpose (backfill policies, partition mappings,
    partitioned checks; dagster is pinned in pyproject.toml) and drown the progress lines.
    """
    warnings.filterwarnings("ignore", message=r".*is currently in (beta|preview)")


__all__ = [
    "ASSET_PARTITION_RANGE_END_TAG",
    "ASSET_PARTITION_RANGE_START_TAG",
    "AssetGraphSubset",
    "AssetKeyPartitionKey",
    "BulkActionStatus",
    "BulkActionsFilter",
    "quiet_dagster_warnings",
]
