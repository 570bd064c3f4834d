"""Every private Dagster API the project uses, in one place.

Dagster 1.13 has no public form of these; they are pinned with the Dagster family in
pyproject.toml (``dagster==1.13.*``). When Dagster moves, this is the one module to check:
each name is imported here and nowhere else in ``cropassets/``.

- ``ASSET_PARTITION_RANGE_START_TAG`` / ``..._END_TAG``: the run tags of a single-run
  backfill over a partition range (``cropassets materialize`` launches such runs).
- ``AssetGraphSubset``, ``AssetKeyPartitionKey``: the asset partitions a backfill targets
  (the new-week sensor asks which are already being backfilled).
- ``BulkActionsFilter``, ``BulkActionStatus``: listing the instance's live backfills.
- ``InstanceRef``, ``process_config``, ``resolve_to_config_type``: checking an instance
  file (``deploy/k8s/dagster-instance.yaml``) against Dagster's schema and each configured
  class's own (run launcher, storage, compute logs) without opening the instance, which
  would connect to its database and cluster (``tests/test_deploy_config.py``).

And :func:`quiet_dagster_warnings`, the one filter of Dagster's beta/preview notices.
"""

from __future__ import annotations

import warnings

from dagster._config import process_config, resolve_to_config_type
from dagster._core.definitions.assets.graph.asset_graph_subset import AssetGraphSubset
from dagster._core.definitions.events import AssetKeyPartitionKey
from dagster._core.execution.backfill import BulkActionsFilter, BulkActionStatus
from dagster._core.instance.ref import InstanceRef
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
    "InstanceRef",
    "process_config",
    "quiet_dagster_warnings",
    "resolve_to_config_type",
]
