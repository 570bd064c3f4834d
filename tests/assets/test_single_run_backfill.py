"""Single-run steps: one Dagster run over a range of weeks equals one run per partition.

The chain assets (raw_scenes -> weekly_cube -> sos_map) carry a single-run
backfill policy: a backfill gives them one run per tile for a whole week range. Here the
range run (the partition-range tags a backfill run carries) is compared with the same weeks
materialized one partition per run: same files, one materialization and one evaluation of
every check per partition, each with that partition's own metadata.
"""

import filecmp
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize

from cropassets.assets._steps import SINGLE_RUN
from cropassets.assets.ingest import raw_scenes
from cropassets.assets.maps import coverage_map, week_layers, week_model
from cropassets.assets.series import weekly_cube
from cropassets.assets.sos import sos_map
from cropassets.assets.training import scalograms
from cropassets.dagster_internals import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from cropassets.partitions import SEASONS, TILES
from cropassets.resources import DataRoot, build_resources

CHAIN = [raw_scenes, weekly_cube, sos_map]
TILE = sorted(TILES)[0]
WEEKS = [w.isoformat() for w in SEASONS[-1].week_starts()[:3]]
KEYS = [f"{TILE}|{w}" for w in WEEKS]
RANGE_TAGS = {ASSET_PARTITION_RANGE_START_TAG: KEYS[0], ASSET_PARTITION_RANGE_END_TAG: KEYS[-1]}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The three weeks of one tile: once as one range run, once as three partition runs."""
    roots = {m: tmp_path_factory.mktemp(m) for m in ("range", "single")}
    with DagsterInstance.local_temp(str(tmp_path_factory.mktemp("home"))) as instance:
        def resources(mode):
            return build_resources() | {"data_root": DataRoot(root=str(roots[mode]))}

        ranged = materialize(CHAIN, instance=instance, resources=resources("range"),
                             tags=RANGE_TAGS)
        singles = [materialize(CHAIN, instance=instance, resources=resources("single"),
                               partition_key=k) for k in KEYS]
        yield {"range": ranged, "singles": singles, "roots": roots}


def test_chain_assets_use_the_single_run_policy():
    for a in CHAIN + [coverage_map, scalograms, week_layers]:
        assert a.backfill_policy == SINGLE_RUN, a.key
    # week_model skips the weeks without a model: a range run cannot skip one partition
    assert week_model.backfill_policy is None or week_model.backfill_policy != SINGLE_RUN


def test_range_run_materializes_every_partition_once(runs):
    result = runs["range"]
    assert result.success
    got = {}
    for e in result.get_asset_materialization_events():
        m = e.materialization
        got.setdefault(m.asset_key.to_user_string(), []).append(m.partition)
    for a in CHAIN:
        assert sorted(got[a.key.to_user_string()]) == KEYS, a.key


def test_range_run_metadata_is_per_partition(runs):
    by_key = {(e.materialization.asset_key.to_user_string(), e.materialization.partition):
              e.materialization.metadata for e in runs["range"].get_asset_materialization_events()}
    for i, key in enumerate(KEYS):
        assert by_key[("sos_map", key)]["weeks"].value == i + 1
        assert by_key[("sos_map", key)]["cubes_read"].value == i + 1
        tile, week = key.split("|")
        assert by_key[("sos_map", key)]["path"].value.endswith(f"{tile}/{week}.tif")
        assert by_key[("raw_scenes", key)]["week_of_season"].value == i + 1


def test_range_run_evaluates_every_check_per_partition(runs):
    ranged = {(e.asset_key.to_user_string(), e.check_name, e.partition): e
              for e in runs["range"].get_asset_check_evaluations()}
    single = {(e.asset_key.to_user_string(), e.check_name, e.partition): e
              for r in runs["singles"] for e in r.get_asset_check_evaluations()
              if e.partition is not None}
    assert set(ranged) == set(single)
    assert {k[2] for k in ranged} == set(KEYS)
    for k, e in single.items():
        assert ranged[k].passed == e.passed, k
        assert ranged[k].severity == e.severity, k
        blocking = {s.name: s.blocking for a in CHAIN for s in a.check_specs}
        assert ranged[k].blocking == blocking[k[1]], k
    fill = ranged[("sos_map", "gap_fill_complete", KEYS[-1])].metadata
    assert fill["weeks"].value == len(KEYS)


def test_range_run_writes_the_same_files_as_partition_runs(runs):
    a, b = (Path(runs["roots"][m]) for m in ("range", "single"))
    for key in KEYS:
        tile, week = key.split("|")
        cog_a, cog_b = (r / "sos_map" / tile / f"{week}.tif" for r in (a, b))
        assert cog_a.is_file() and filecmp.cmp(cog_a, cog_b, shallow=False), key
        for asset in ("weekly_cube",):
            za, zb = (r / asset / tile / f"{week}.zarr" for r in (a, b))
            files = sorted(p.relative_to(za) for p in za.rglob("*") if p.is_file())
            assert files, za
            for f in files:
                if f.name.startswith(".z") or f.name == "zarr.json":
                    continue  # metadata may hold run-specific attributes
                assert filecmp.cmp(za / f, zb / f, shallow=False), (asset, key, f)
