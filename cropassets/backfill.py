"""Launch and follow Dagster asset backfills through the webserver's GraphQL API.

A backfill launched here is the same object as one launched from the UI: the daemon
plans its runs (one per partition, or one per key range for assets with the single-run
backfill policy), and its progress shows under Overview > Backfills.

    from cropassets.backfill import launch_backfill, wait_backfill

    bid = launch_backfill("http://127.0.0.1:3000/graphql", ["raw_scenes", "weekly_cube"],
                          partition_range=("T00|2025-05-05", "T01|2025-05-19"))
    wait_backfill("http://127.0.0.1:3000/graphql", bid, timeout=600)

GraphQL is spoken with ``urllib`` only; the mutation and query shapes are those of
``dagster_graphql`` 1.13 (``LaunchBackfillParams``, ``PartitionBackfillOrError``).
"""

import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
"""Opener that ignores proxy settings (the webserver usually runs on loopback or a LAN)."""

TERMINAL_BACKFILL_STATUSES = frozenset(
    {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"})
"""``BulkActionStatus`` values after which a backfill launches nothing more."""


class GraphQLError(RuntimeError):
    """The GraphQL endpoint answered with errors or an error-typed result."""


def graphql(url: str, query: str, variables: Mapping[str, Any] | None = None,
            timeout: float = 60.0) -> dict[str, Any]:
    """POST one GraphQL operation; return its ``data``; raise :class:`GraphQLError` on errors."""
    body = json.dumps({"query": query, "variables": dict(variables or {})}).encode()
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with _DIRECT.open(request, timeout=timeout) as r:
            payload = json.loads(r.read())
    except urllib.error.HTTPError as e:
        raise GraphQLError(f"HTTP {e.code} from {url}: {e.read()[:2000]!r}") from e
    if payload.get("errors"):
        raise GraphQLError(json.dumps(payload["errors"], indent=1)[:4000])
    return payload["data"]


_LAUNCH_BACKFILL = """
mutation LaunchBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on Error { message }
  }
}
"""


def backfill_params(asset_keys: Sequence[str], partition_keys: Sequence[str] | None = None,
                    partition_range: tuple[str, str] | None = None,
                    all_partitions: bool = False,
                    run_config: Mapping[str, Any] | None = None,
                    title: str | None = None) -> dict[str, Any]:
    """``LaunchBackfillParams`` of an asset backfill; exactly one partition selection.

    - ``partition_range=(start, end)``: every selected asset gets that key range
      (``partitionsByAssets``). For a ``MultiPartitionsDefinition`` Dagster reads a range of
      multi keys per dimension: ``("T00|2025-05-05", "T01|2025-05-19")`` is tiles T00..T01
      x weeks 2025-05-05..2025-05-19 (the cartesian product), in definition order.
    - ``partition_keys``: exactly these keys for every selected asset (one single-key range
      each, ``partitionsByAssets``). Unlike ``assetSelection`` + ``partitionNames``, which
      gives the keys to the root assets and lets Dagster follow partition mappings
      downstream, nothing beyond the keys is targeted: with ``sos_map`` (week w reads
      weeks 1..w) the root keys of week 1 would otherwise pull in every later week.
    - ``all_partitions``: every partition of every selected asset.

    Asset keys are ``/``-separated paths (``"raw_scenes"``). ``run_config`` applies to every
    run the backfill launches (e.g. ``{"execution": {"config": {"in_process": {}}}}``).
    """
    if sum([partition_keys is not None, partition_range is not None, all_partitions]) != 1:
        raise ValueError("give exactly one of partition_keys, partition_range, all_partitions")
    keys = [{"path": key.split("/")} for key in asset_keys]
    params: dict[str, Any]
    if all_partitions:
        params = {"assetSelection": keys, "allPartitions": True}
    else:
        if partition_range is not None:
            ranges = [{"start": partition_range[0], "end": partition_range[1]}]
        else:
            ranges = [{"start": k, "end": k} for k in partition_keys or []]
            if not ranges:
                raise ValueError("partition_keys is empty")
        params = {"partitionsByAssets": [{"assetKey": key, "partitions": {"ranges": ranges}}
                                         for key in keys]}
    return _with_run_options(params, run_config, title)


def _with_run_options(params: dict[str, Any], run_config: Mapping[str, Any] | None,
                      title: str | None) -> dict[str, Any]:
    """``params`` plus the run config every run gets and the backfill's title."""
    if run_config is not None:
        params["runConfigData"] = dict(run_config)
    if title is not None:
        params["title"] = title
    return params


def _launch(graphql_url: str, params: Mapping[str, Any]) -> str:
    """Send ``launchPartitionBackfill``; the backfill id, or :class:`GraphQLError`."""
    result = graphql(graphql_url, _LAUNCH_BACKFILL,
                     {"backfillParams": dict(params)})["launchPartitionBackfill"]
    if result["__typename"] != "LaunchBackfillSuccess":
        raise GraphQLError(f"{result['__typename']}: {result.get('message')}\n"
                           f"{''.join(result.get('stack') or [])}")
    return str(result["backfillId"])


def launch_backfill(graphql_url: str, asset_keys: Sequence[str],
                    partition_keys: Sequence[str] | None = None,
                    partition_range: tuple[str, str] | None = None,
                    all_partitions: bool = False,
                    run_config: Mapping[str, Any] | None = None,
                    title: str | None = None) -> str:
    """Launch an asset backfill through GraphQL ``launchPartitionBackfill``; return its id.

    See :func:`backfill_params` for the partition selection. The daemon picks the backfill up
    on its next tick (every 30 s).
    """
    return _launch(graphql_url, backfill_params(asset_keys, partition_keys, partition_range,
                                                all_partitions, run_config, title))


_BACKFILL_STATUS = """
query Backfill($backfillId: String!) {
  partitionBackfillOrError(backfillId: $backfillId) {
    __typename
    ... on PartitionBackfill {
      id
      status
      error { message stack }
    }
    ... on Error { message }
  }
}
"""


def backfill_status(graphql_url: str, backfill_id: str) -> str:
    """The ``BulkActionStatus`` of a backfill (``REQUESTED``, ``COMPLETED_SUCCESS``...)."""
    result = graphql(graphql_url, _BACKFILL_STATUS,
                     {"backfillId": backfill_id})["partitionBackfillOrError"]
    if result["__typename"] != "PartitionBackfill":
        raise GraphQLError(f"backfill {backfill_id}: {result['__typename']}: "
                           f"{result.get('message')}")
    return str(result["status"])


def wait_backfill(graphql_url: str, backfill_id: str, timeout: float = 600.0,
                  poll: float = 2.0) -> str:
    """Poll until the backfill reaches a terminal status; return it.

    Raises :class:`TimeoutError` naming the last status when ``timeout`` seconds pass.
    """
    deadline = time.monotonic() + timeout
    while True:
        status = backfill_status(graphql_url, backfill_id)
        if status in TERMINAL_BACKFILL_STATUSES:
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(f"backfill {backfill_id} still {status} after {timeout:.0f} s")
        time.sleep(poll)


IN_PROCESS = {"execution": {"config": {"in_process": {}}}}
"""Run config that runs a backfill run's steps in its own process (not one process per
step): faster on a small machine, at the cost of step-level parallelism."""


class BackfillRequestError(ValueError):
    """An asset or partition selection that cannot become a backfill."""


def partitions_by_assets(asset_names: Sequence[str], tiles: Sequence[str] | None,
                         weeks: Sequence[str]) -> list[dict[str, Any]]:
    """``partitionsByAssets`` of a backfill: the week range (and tiles) of every asset.

    ``weeks`` are week keys in calendar order (one season or a range: contiguous); tile x
    week assets get tiles x first..last week (one range, or one range per tile when
    ``tiles`` names some), week assets first..last week, checkpoint assets (week of
    season k) every k. Unknown assets and unpartitioned ones raise
    :class:`BackfillRequestError` naming them.
    """
    from cropassets.definitions import defs
    from cropassets.partitions import (
        TILES,
        sequence_partitions,
        tile_week_partitions,
        week_partitions,
    )

    if not weeks:
        raise BackfillRequestError("the week selection is empty")
    known = {k.to_user_string(): k for k in defs.resolve_all_asset_keys()}
    unknown = [a for a in asset_names if a not in known]
    if unknown:
        raise BackfillRequestError(f"unknown assets {unknown}; the code location has "
                                   f"{sorted(known)}")
    tile_ids = list(tiles) if tiles else list(TILES)
    bad = [t for t in tile_ids if t not in TILES]
    if bad:
        raise BackfillRequestError(f"unknown tiles {bad}; the tile grid has {sorted(TILES)}")
    first, last = weeks[0], weeks[-1]
    out = []
    for name in asset_names:
        pdef = defs.get_assets_def(known[name]).partitions_def
        if pdef == tile_week_partitions:
            if tiles:
                ranges = [{"start": f"{t}|{first}", "end": f"{t}|{last}"} for t in tile_ids]
            else:
                ranges = [{"start": f"{tile_ids[0]}|{first}", "end": f"{tile_ids[-1]}|{last}"}]
        elif pdef == week_partitions:
            ranges = [{"start": first, "end": last}]
        elif pdef == sequence_partitions:
            ks = sequence_partitions.get_partition_keys()
            ranges = [{"start": ks[0], "end": ks[-1]}]
        else:
            raise BackfillRequestError(
                f"asset {name!r} is not partitioned by tile x week, week or week of season: "
                "materialize it from the UI or with `cropassets materialize`")
        out.append({"assetKey": {"path": name.split("/")}, "partitions": {"ranges": ranges}})
    return out


def launch_week_backfill(graphql_url: str, asset_names: Sequence[str],
                         tiles: Sequence[str] | None, weeks: Sequence[str],
                         run_config: Mapping[str, Any] | None = None,
                         title: str | None = None) -> str:
    """Launch a backfill of ``asset_names`` over a week range (and tiles); return its id."""
    params = {"partitionsByAssets": partitions_by_assets(asset_names, tiles, weeks)}
    return _launch(graphql_url, _with_run_options(params, run_config, title))
