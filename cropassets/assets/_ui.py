"""What the Dagster UI shows, shared by the asset modules: check specs and results, links.

Checks are declared on the assets (``check_specs=``) and evaluated inside the asset's step
from :mod:`cropassets.core.quality`, so a blocking check stops downstream assets of the same
run. Specs of partitioned assets carry the asset's partitions definition, so the UI keeps a
check status per partition (tile x week) instead of only the last one evaluated.
"""

import math
import warnings
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    MetadataValue,
    PartitionsDefinition,
    asset_check,
)

from cropassets.core.quality import CogContract, QualityResult, cog_files_check
from cropassets.partitions import split_tile_week
from cropassets.resources.data_root import DataRoot
from cropassets.settings import load_settings


def check_spec(asset: str, name: str, description: str, *,
               partitions_def: PartitionsDefinition | None = None,
               blocking: bool = False) -> AssetCheckSpec:
    """An asset check evaluated by the asset itself, per partition where partitioned.

    Dagster 1.13 marks ``partitions_def`` on a check spec as a preview and warns at every
    import; the feature is what per-partition check status needs, so the warning is
    silenced here, in one place (dagster is pinned in pyproject.toml).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*partitions_def on an AssetCheckSpec.*")
        return AssetCheckSpec(name, asset=asset, description=description, blocking=blocking,
                              partitions_def=partitions_def)


def _plain(value: Any) -> Any:
    """JSON-safe copy: NaN/inf -> None (the UI renders JSON, which has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def to_metadata(values: Mapping[str, Any]) -> dict[str, Any]:
    """Check or asset metadata from plain values: containers as JSON, None as null."""
    out: dict[str, Any] = {}
    for k, v in values.items():
        if isinstance(v, (Mapping, list, tuple)):
            out[k] = MetadataValue.json(_plain(v))
        elif v is None:
            out[k] = MetadataValue.null()
        else:
            out[k] = v
    return out


def check_result(name: str, result: QualityResult,
                 severity: AssetCheckSeverity = AssetCheckSeverity.ERROR) -> AssetCheckResult:
    """The Dagster result of a quality result (its own severity wins where it has one)."""
    if result.severity is not None:
        severity = AssetCheckSeverity(result.severity.upper())
    return AssetCheckResult(check_name=name, passed=bool(result.passed), severity=severity,
                            description=result.summary, metadata=to_metadata(result.metadata))


def skipped_result(name: str, reason: str) -> AssetCheckResult:
    """Result of a check whose asset wrote nothing this partition (nothing to check)."""
    return AssetCheckResult(check_name=name, passed=True, description=f"skipped: {reason}",
                            metadata={"skipped": True, "reason": reason})


def tiler_link(season: str, week: str, layer: str) -> MetadataValue:
    """Link to the tiler's web map at one season, week and layer.

    The page reads ``#season=..&week=..&layer=..`` (``tiler/static/app.js``); the base URL
    is ``CROPASSETS_TILER_URL``.
    """
    base = load_settings().tiler_url.rstrip("/")
    query = urlencode({"season": season, "week": week, "layer": layer})
    return MetadataValue.url(f"{base}/#{query}")


def cogs_on_disk(context: AssetCheckExecutionContext, data_root: DataRoot, asset: str,
                 contract: CogContract) -> AssetCheckResult:
    """Standalone check body: re-validate an asset's COGs as they are on disk now.

    In a run of one tile x week partition (the check runs with its asset), only that
    partition's file; run on its own (no partition), every ``<data>/<asset>/*/*.tif``.
    """
    op = context.op_execution_context
    if op.has_partition_key:
        tile, week = split_tile_week(op.partition_key)
        files = [data_root.partition_path(asset, tile, week, ".tif")]
    else:
        files = sorted((data_root.location / asset).glob("*/*.tif"), key=str)
    result = cog_files_check(files, contract)
    return AssetCheckResult(passed=result.passed, description=result.summary,
                            metadata=to_metadata(result.metadata))


def cogs_on_disk_check(asset_def: Any, asset: str, contract: CogContract, name: str,
                       what: str) -> AssetChecksDefinition:
    """The standalone ``<name>`` check of ``asset``: :func:`cogs_on_disk` with its contract.

    Args:
        asset_def: The asset the check belongs to.
        asset: Its folder under the data root (``crop_map``, ``sos_map``, ...).
        contract: The COG rules (the same as the blocking ``cog_valid`` check's).
        name: The check's name, e.g. ``crop_cogs_on_disk``.
        what: What the files are, for the description (``crop-map COGs``).
    """

    @asset_check(asset=asset_def, name=name, description=(
        f"Re-validates {what} already on disk (a file corrupted or replaced after it was "
        "written): in a run of one partition, that partition's file; run on its own, every "
        f"<data>/{asset}/<tile>/<week>.tif. Same rules as cog_valid."))
    def _check(context: AssetCheckExecutionContext, data_root: DataRoot) -> AssetCheckResult:
        return cogs_on_disk(context, data_root, asset, contract)

    return _check
