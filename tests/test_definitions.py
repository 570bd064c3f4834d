from dagster import AssetKey, MultiPartitionsDefinition

from cropassets.definitions import defs
from cropassets.partitions import SEASONS, TILES


def test_definitions_load_with_tile_week_partitions():
    graph = defs.resolve_asset_graph()
    assert AssetKey("raw_scenes") in graph.get_all_asset_keys()
    pdef = defs.get_assets_def("raw_scenes").partitions_def
    assert isinstance(pdef, MultiPartitionsDefinition)
    assert [d.name for d in pdef.partitions_defs] == ["tile", "week"]
    keys = pdef.get_partition_keys()
    assert len(keys) == len(TILES) * sum(s.weeks for s in SEASONS)
    assert f"{next(iter(TILES))}|{SEASONS[0].start.isoformat()}" in keys


def test_code_location_imports_without_torch_sklearn_matplotlib():
    """Every run process imports the code location; only model and plot steps need these."""
    import subprocess
    import sys

    code = ("import sys, cropassets.definitions; "
            "print(sorted(m for m in ('torch', 'sklearn', 'matplotlib') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_coverage_map_is_a_tile_week_asset_week_layers_reads():
    """Lineage: coverage_map reads the weekly cubes of weeks 1..w; week_layers reads it."""
    from cropassets.assets.maps import BY_WEEK
    from cropassets.partitions import SEASON_TO_DATE, tile_week_partitions
    from cropassets.sensors import new_week_sensor

    graph = defs.resolve_asset_graph()
    cov = defs.get_assets_def("coverage_map")
    assert cov.partitions_def == tile_week_partitions
    assert cov.group_names_by_key[AssetKey("coverage_map")] == "maps"
    assert graph.get(AssetKey("coverage_map")).parent_keys == {AssetKey("weekly_cube")}
    assert cov.get_partition_mapping(AssetKey("weekly_cube")) == SEASON_TO_DATE
    assert AssetKey("week_layers") in graph.get(AssetKey("coverage_map")).child_keys
    layers = defs.get_assets_def("week_layers")
    assert layers.get_partition_mapping(AssetKey("coverage_map")) == BY_WEEK
    assert {c.name for c in cov.check_specs} == {"cog_valid"}
    checks = {k.name for k in defs.resolve_asset_graph().asset_check_keys
              if k.asset_key == AssetKey("coverage_map")}
    assert checks == {"cog_valid", "coverage_cogs_on_disk"}
    # week w of a tile reads the cubes of weeks 1..w of that tile
    week = SEASONS[0].week_starts()[2].isoformat()
    tile = next(iter(TILES))
    parents = graph.get_parents_partitions(AssetKey("coverage_map"), f"{tile}|{week}")
    assert {p.partition_key for p in parents.parent_partitions} == {
        f"{tile}|{w.isoformat()}" for w in SEASONS[0].week_starts()[:3]}
    assert AssetKey("coverage_map") in new_week_sensor.asset_selection.resolve(graph)


def test_no_season_series_sos_map_reads_the_cubes_of_weeks_1_to_w():
    """Issue 16: the smoothed series is not stored; SOS reads weekly cubes 1..w itself."""
    from cropassets.partitions import SEASON_TO_DATE, tile_week_partitions

    graph = defs.resolve_asset_graph()
    assert AssetKey("season_series") not in graph.get_all_asset_keys()
    sos = defs.get_assets_def("sos_map")
    assert sos.partitions_def == tile_week_partitions
    assert graph.get(AssetKey("sos_map")).parent_keys == {AssetKey("weekly_cube")}
    assert sos.get_partition_mapping(AssetKey("weekly_cube")) == SEASON_TO_DATE
    assert {s.name: s.blocking for s in sos.check_specs}["gap_fill_complete"]
    assert graph.get(AssetKey("scalograms")).parent_keys == {AssetKey("weekly_cube")}
    tile = next(iter(TILES))
    for season in SEASONS:
        starts = [w.isoformat() for w in season.week_starts()]
        for i, week in enumerate(starts):
            parents = graph.get_parents_partitions(AssetKey("sos_map"), f"{tile}|{week}")
            assert {p.partition_key for p in parents.parent_partitions} == {
                f"{tile}|{w}" for w in starts[:i + 1]}
