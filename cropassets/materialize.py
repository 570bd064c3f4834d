"""Materialize partitions through Dagster in one process, with progress lines.

``dagster asset materialize`` starts a new process per partition (seconds each); this loop
runs Dagster runs on the configured instance (``$DAGSTER_HOME``) but reuses one process, so
the runs, their logs and metadata appear in the Dagster UI. Assets with the single-run
backfill policy get one run per tile and week range, the others one run per partition.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from dagster import (
    AssetKey,
    AssetsDefinition,
    DagsterInstance,
    ExecuteInProcessResult,
    materialize,
)

from cropassets.core.seasons import all_weeks, find_week
from cropassets.dagster_internals import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    quiet_dagster_warnings,
)
from cropassets.partitions import SEASONS, TILES, tile_week_partitions, week_partitions

PID_TAG = "cropassets/pid"
"""Run tag holding the process id of the CLI loop that executes the run."""
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
"""Run config keeping Dagster's per-event console lines out of the progress output (the
events are still stored in the instance and shown in the UI)."""


def select_weeks(spec: str | None) -> list[str]:
    """Week keys of a spec: ``'START...END'``, a week, a season id, ``current``, or None.

    ``'START...END'`` is inclusive; a season id (e.g. ``"2025"``) selects all its weeks,
    ``"current"`` those of every season whose role is current, None every week.
    """
    keys = [w.key for w in all_weeks(SEASONS)]
    if not spec:
        return keys
    if spec == "current":
        return [w.key for w in all_weeks([s for s in SEASONS if s.role == "current"])]
    for season in SEASONS:
        if spec == season.id:
            return [w.key for w in all_weeks([season])]
    start, _, end = spec.partition("...")
    end = end or start
    find_week(SEASONS, start)  # raises a clear error for a week outside every season
    find_week(SEASONS, end)
    return [k for k in keys if start <= k <= end]


def materialize_partitions(asset_names: list[str], tiles: list[str] | None = None,
                           weeks: str | None = None, missing_only: bool = False,
                           workers: int = 1) -> list[str]:
    """Run each tile x week partition of the named assets; returns the failed keys.

    Partitions of one tile run in week order (a season series needs the earlier weeks'
    cubes); with ``workers`` > 1, tiles are spread over that many processes.
    """
    from cropassets.definitions import defs

    known = sorted(k.to_user_string() for k in defs.resolve_all_asset_keys())
    unknown = [n for n in asset_names if n not in known]
    if unknown:
        raise SystemExit(f"cropassets materialize: error: unknown assets {unknown}; the code "
                         f"location has {known}")
    assets = [defs.get_assets_def(AssetKey(name)) for name in asset_names]
    kinds = {type(a.partitions_def).__name__ if a.partitions_def else None for a in assets}
    if len({a.partitions_def for a in assets}) > 1:
        raise SystemExit(f"assets {asset_names} have different partitions ({kinds}); "
                         "materialize them in separate calls")
    pdef = assets[0].partitions_def
    tile_ids = tiles or list(TILES)
    for t in tile_ids:
        if t not in TILES:
            raise SystemExit(f"unknown tile {t!r}; the tile grid has {sorted(TILES)}")
    if pdef is None:
        keys: list[str | None] = [None]
    elif pdef == tile_week_partitions:
        keys = [f"{t}|{w}" for w in select_weeks(weeks) for t in tile_ids]
    elif pdef == week_partitions:
        keys = list(select_weeks(weeks))
    else:
        keys = list(pdef.get_partition_keys())
    if missing_only and pdef is not None:
        done = materialized_by_all(DagsterInstance.get(), [a.key for a in assets])
        keys = [k for k in keys if k not in done]
    if not keys:
        print("[materialize] nothing to do: every partition is materialized", file=sys.stderr)
        return []
    workers = max(1, min(workers, len(tile_ids))) if pdef == tile_week_partitions else 1
    if workers == 1:
        return _run_keys(asset_names, keys, "")
    groups = [[k for k in keys if tile_ids.index(k.split("|")[0]) % workers == i]
              for i in range(workers)]
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        futures = [pool.submit(_run_keys, asset_names, g, f"w{i} ") for i, g in
                   enumerate(groups) if g]
        return [k for f in futures for k in f.result()]


def materialized_by_all(instance: DagsterInstance, asset_keys: list[AssetKey]) -> set[str]:
    """Partition keys every one of ``asset_keys`` has materialized on ``instance``."""
    return set.intersection(*(set(instance.get_materialized_partitions(k))
                              for k in asset_keys))


def release_dead_cli_slots(instance: DagsterInstance) -> list[str]:
    """Free concurrency-pool slots held by CLI-loop runs whose process no longer exists.

    A run killed mid-step (SIGKILL, a closed terminal) never releases its pool slot, and the
    next run of a pooled asset would wait forever; the daemon's run monitoring frees such
    slots only under ``dagster dev``. Runs of this loop carry their process id as a tag, so
    a dead one is recognised, marked failed and its slots freed. Returns the run ids.
    """
    storage = instance.event_log_storage
    freed: list[str] = []
    for pool in storage.get_concurrency_keys():
        info = storage.get_concurrency_info(pool)
        run_ids = {s.run_id for s in info.claimed_slots} | {p.run_id for p in info.pending_steps}
        for run_id in sorted(run_ids - set(freed)):
            run = instance.get_run_by_id(run_id)
            pid = run.tags.get(PID_TAG) if run else None
            if run is None or pid is None or _alive(int(pid)):
                continue
            if not run.is_finished:
                instance.report_run_failed(run, "its process died (freed by cropassets)")
            storage.free_concurrency_slots_for_run(run_id)
            freed.append(run_id)
    return freed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def key_ranges(keys: list[str], partition_keys: list[str]) -> list[list[str]]:
    """``keys`` split into runs of consecutive partition keys (in the definition's order).

    ``partition_keys`` is the partitions definition's ordered key list; each returned group
    is a contiguous slice of it (a partition key range), in order.
    """
    index = {k: i for i, k in enumerate(partition_keys)}
    unknown = [k for k in keys if k not in index]
    if unknown:
        raise ValueError(f"partition keys {unknown[:3]} are not partitions of the assets")
    groups: list[list[str]] = []
    for k in sorted(set(keys), key=index.__getitem__):
        if groups and index[k] == index[groups[-1][-1]] + 1:
            groups[-1].append(k)
        else:
            groups.append([k])
    return groups


def _run_keys(asset_names: list[str], keys: list[str | None], label: str) -> list[str]:
    """Materialize ``keys`` in order, printing progress lines; returns the failed keys.

    Assets with the single-run backfill policy (``cropassets.assets._steps.SINGLE_RUN``)
    run one Dagster run per contiguous key range (for tile x week: one per tile), as a
    backfill runs them; other assets one run per partition.
    """
    quiet_dagster_warnings()  # also in worker processes (spawned: no inherited filters)
    from cropassets.assets._steps import SINGLE_RUN
    from cropassets.definitions import defs

    assets = [defs.get_assets_def(AssetKey(name)) for name in asset_names]
    instance = DagsterInstance.get()
    for run_id in release_dead_cli_slots(instance):
        print(f"[materialize] freed pool slots of dead run {run_id}", file=sys.stderr)
    pdef = assets[0].partitions_def
    if pdef is not None and all(a.backfill_policy == SINGLE_RUN for a in assets):
        batches: list[list[str | None]] = list(key_ranges(
            [str(k) for k in keys], list(pdef.get_partition_keys())))
    else:
        batches = [[k] for k in keys]
    failed: list[str] = []
    t0 = time.perf_counter()
    done = 0
    for batch in batches:
        result = _run_batch(assets, batch, instance)
        if not result.success and was_interrupted(result):
            raise KeyboardInterrupt  # Dagster recorded the run as failed; stop the loop here
        if not result.success:
            failed.extend(str(k) for k in batch)
        done += len(batch)
        if len(batches) <= 30 or done % 10 < len(batch) or batch is batches[-1] \
                or not result.success:
            rate = done / (time.perf_counter() - t0)
            what = f"{batch[0]}...{batch[-1]}" if len(batch) > 1 else str(batch[0])
            print(f"[materialize] {label}{'+'.join(asset_names)} {done}/{len(keys)} "
                  f"partitions ({rate:.2f}/s)"
                  f"{'  FAILED ' + what if not result.success else ''}",
                  file=sys.stderr, flush=True)
    return failed


def _run_batch(assets: list[AssetsDefinition], batch: list[str | None],
               instance: DagsterInstance) -> ExecuteInProcessResult:
    """One Dagster run of ``assets`` over ``batch`` (one key, or a contiguous key range)."""
    from cropassets.definitions import defs

    tags = {"cropassets/launcher": "cli-loop", PID_TAG: str(os.getpid())}
    if len(batch) > 1:
        tags |= {ASSET_PARTITION_RANGE_START_TAG: str(batch[0]),
                 ASSET_PARTITION_RANGE_END_TAG: str(batch[-1])}
    return materialize(list(defs.assets), selection=assets,
                       partition_key=batch[0] if len(batch) == 1 else None,
                       instance=instance, resources=defs.resources,
                       raise_on_error=False, tags=tags, run_config=QUIET_CONSOLE)


INTERRUPT_ERRORS = frozenset({"DagsterExecutionInterruptedError", "KeyboardInterrupt"})
"""Error classes with which Dagster records a run stopped by Ctrl-C or SIGTERM."""


def was_interrupted(result: ExecuteInProcessResult) -> bool:
    """Whether an in-process run failed because the process got SIGINT/SIGTERM.

    Dagster turns the signal into ``DagsterExecutionInterruptedError`` inside the run and
    records a failed run without raising, so a loop of runs must ask to stop after it.
    """
    for event in result.all_events:
        error = getattr(event.event_specific_data, "error", None)
        if error is not None and error.cls_name in INTERRUPT_ERRORS:
            return True
    return False
