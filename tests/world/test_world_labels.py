import datetime as dt
import json

import numpy as np

from cropassets.world.config import CLASS_NAMES, CROP_CODES


def _load(world, season):
    return json.loads((world / "labels" / f"{season}.geojson").read_text())


def test_labels_geojson_properties(world):
    seasons = {s["id"]: s for s in json.loads((world / "seasons.json").read_text())["seasons"]}
    for sid, s in seasons.items():
        fc = _load(world, sid)
        assert fc["type"] == "FeatureCollection" and len(fc["features"]) > 50
        start = dt.date.fromisoformat(s["start"])
        end = start + dt.timedelta(days=7 * s["weeks"])
        n_crop = n_sos = 0
        for f in fc["features"]:
            p = f["properties"]
            assert {"field_id", "class_code", "class_name", "season", "sos", "sos_doy",
                    "sowing"} <= p.keys()
            assert isinstance(p["field_id"], int) and p["season"] == sid
            assert p["class_name"] == CLASS_NAMES[p["class_code"]]
            ring = np.array(f["geometry"]["coordinates"][0])
            assert f["geometry"]["type"] == "Polygon" and (ring[0] == ring[-1]).all()
            assert 100.0 < ring[:, 0].min() < 100.3 and 14.4 < ring[:, 1].min() < 14.7
            if p["class_code"] in CROP_CODES:
                n_crop += 1
                assert p["sowing"] is not None
                if p["sos"] is not None:
                    n_sos += 1
                    sos = dt.date.fromisoformat(p["sos"])
                    assert start <= sos < end
                    assert p["sos_doy"] == sos.timetuple().tm_yday
            else:
                assert p["sos"] is None and p["sos_doy"] is None and p["sowing"] is None
        assert n_sos >= 0.95 * n_crop


def test_same_geometry_and_rotation_between_seasons(world):
    a, b = _load(world, "2024"), _load(world, "2025")
    ga = {f["properties"]["field_id"]: f for f in a["features"]}
    gb = {f["properties"]["field_id"]: f for f in b["features"]}
    assert ga.keys() == gb.keys()
    assert all(ga[i]["geometry"] == gb[i]["geometry"] for i in ga)
    crop = [i for i in ga if ga[i]["properties"]["class_code"] in CROP_CODES]
    changed = sum(ga[i]["properties"]["class_code"] != gb[i]["properties"]["class_code"]
                  for i in crop)
    assert 0.06 <= changed / len(crop) <= 0.25


def test_sos_follows_planting(world):
    for f in _load(world, "2024")["features"]:
        p = f["properties"]
        if p["sos"] is None:
            continue
        lag = (dt.date.fromisoformat(p["sos"]) - dt.date.fromisoformat(p["sowing"])).days
        if p["class_name"] in ("rice", "maize", "cassava"):
            assert 5 <= lag <= 45, p
