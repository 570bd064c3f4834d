"""Asset steps over one partition or a whole range of them (single-run backfills).

Assets with ``backfill_policy=SINGLE_RUN`` are backfilled by Dagster in one run per
contiguous range of partition keys (for tile x week: one run per tile, its weeks in order)
instead of one run per partition. Their bodies compute one partition at a time through
:func:`each_partition`, which

* in a run of one partition returns the partition's ``MaterializeResult`` as it is
  (metadata and check results attached to that materialization), and
* in a run of a range computes the partitions in key order, attaches each partition's
  metadata to its own materialization (``add_asset_metadata(partition_key=...)``) and
  records each check result as an evaluation of that partition, so the UI keeps per-
  partition metadata and check status either way.

A blocking check that fails for one partition of a range still fails the step at its end,
so downstream assets of the run do not read it (nor the other partitions of the range:
that is the price of one run per range).
"""

from collections.abc import Callable, Iterator
from typing import Any

from dagster import (
    AssetCheckEvaluation,
    AssetExecutionContext,
    BackfillPolicy,
    MaterializeResult,
    Output,
)

SINGLE_RUN = BackfillPolicy.single_run()
"""Backfill policy of the assets whose range runs in one run (docs/operations.md, "Backfills")."""


def step_partition_keys(context: AssetExecutionContext) -> list[Any]:
    """Partition keys this step materializes, in the partitions definition's order.

    For tile x week keys the order is tile-major with weeks in calendar order, so within a
    tile every earlier week of a season is computed before the later ones.
    """
    if context.has_partition_key_range:
        return list(context.partition_keys)
    return [context.partition_key]


def each_partition(context: AssetExecutionContext,
                   compute: Callable[[Any], MaterializeResult]) -> Iterator[Any]:
    """Events of a step that runs ``compute(partition_key)`` for each of its partitions.

    ``compute`` returns the ``MaterializeResult`` of one partition (metadata, check
    results); use it as ``yield from each_partition(context, one_partition)``.
    """
    keys = step_partition_keys(context)
    if not context.has_partition_key_range:
        yield compute(keys[0])
        return
    assets_def = context.assets_def
    selected = set(context.selected_asset_check_keys)
    specs = {spec.name: spec for spec in assets_def.check_specs
             if spec.asset_key == context.asset_key and spec.key in selected}
    evaluations = []
    for i, key in enumerate(keys, 1):
        context.log.info(f"partition {key} ({i}/{len(keys)})")
        result = compute(key)
        context.add_asset_metadata(dict(result.metadata or {}), partition_key=key)
        for check in result.check_results:
            spec = specs.get(check.check_name)
            if spec is None:  # check not selected in this run
                continue
            evaluations.append(AssetCheckEvaluation(
                asset_key=context.asset_key, check_name=check.check_name,
                passed=check.passed, metadata=check.metadata, severity=check.severity,
                description=check.description, blocking=spec.blocking, partition=str(key)))
    yield MaterializeResult()
    yield from evaluations
    outputs = {spec.name: name for name, spec in assets_def.node_check_specs_by_output_name.items()}
    for name in specs:
        yield Output(None, output_name=outputs[name])
