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
