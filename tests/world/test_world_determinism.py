import json
import subprocess
import sys
from pathlib import Path

import pytest

from cropassets.world import world_cli as cli
from cropassets.world.generate import generate_world

SEASONS = [{"id": "2024", "start": "2024-07-01", "weeks": 2, "role": "reference"}]



def _items_list(world: Path, collection: str) -> list[dict]:
    text = (world / "stac" / "items" / f"{collection}.ndjson").read_text()
    return [json.loads(line.replace(str(world), "WORLD")) for line in text.splitlines()]


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    root = tmp_path_factory.mktemp("det")
    a = generate_world(root / "a", seed=5, size=64, tiles=1, seasons=SEASONS, workers=1)
    b = generate_world(root / "b", seed=5, size=64, tiles=1, seasons=SEASONS, workers=2)
    c = generate_world(root / "c", seed=6, size=64, tiles=1, seasons=SEASONS, workers=1)
    return a, b, c


def test_same_seed_identical(worlds):
    a, b, _ = worlds
    for coll in ("sentinel-2-l2a", "sentinel-1-rtc"):
        ia, ib = _items_list(a, coll), _items_list(b, coll)
        assert ia == ib and ia
    rel = sorted(p.relative_to(a) for p in a.rglob("*.tif"))
    assert rel == sorted(p.relative_to(b) for p in b.rglob("*.tif"))
    for r in rel:
        assert (a / r).read_bytes() == (b / r).read_bytes(), r
    for name in ("labels/2024.geojson", "tiles.json", "seasons.json", "world.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes()


def test_different_seed_differs(worlds):
    a, _, c = worlds
    ia, ic = _items_list(a, "sentinel-2-l2a"), _items_list(c, "sentinel-2-l2a")
    assert [i["id"] for i in ia] == [i["id"] for i in ic]  # same acquisition plan
    red = "scenes/sentinel-2-l2a/{}/red.tif".format(ia[0]["id"])
    assert (a / red).read_bytes() != (c / red).read_bytes()
    assert (a / "labels/2024.geojson").read_bytes() != (c / "labels/2024.geojson").read_bytes()


def test_cli_main_is_noop_on_complete_world(world, params, capsys):
    rc = cli.main(["--out", str(world), "--seed", str(params["seed"]), "--size",
                   str(params["size"]), "--tiles", str(params["tiles"])])
    assert rc == 0
    captured = capsys.readouterr()
    assert "up to date" in captured.err and str(world) in captured.out


def test_cli_rejects_bad_size(tmp_path, capsys):
    assert cli.main(["--out", str(tmp_path / "x"), "--size", "101", "--quiet"]) == 2
    assert "even number of pixels" in capsys.readouterr().err


def test_module_entry_point_help():
    res = subprocess.run([sys.executable, "-m", "cropassets.world", "--help"],
                         capture_output=True, text=True, check=True)
    assert "--out" in res.stdout and "--tiles" in res.stdout
