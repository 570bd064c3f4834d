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
