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


def test_same_geometry_and_rotation_between_seasons(world, model):
    a, b = _load(world, "2024"), _load(world, "2025")
    ga = {f["properties"]["field_id"]: f for f in a["features"]}
    gb = {f["properties"]["field_id"]: f for f in b["features"]}
    assert ga.keys() == gb.keys()
    assert all(ga[i]["geometry"] == gb[i]["geometry"] for i in ga)
    # rotation is a property of the true crops (the labels also carry errors, see below)
    first, second = model.seasons[0].code, model.seasons[1].code
    crop = [i for i in ga if first[i] in CROP_CODES]
    changed = sum(first[i] != second[i] for i in crop)
    assert 0.06 <= changed / len(crop) <= 0.25


def test_a_few_percent_of_crop_labels_are_wrong(world, model):
    """Reference labels like real ones: ~7 % of crop fields name another crop; the rest and
    every non-crop parcel are right; world.json counts the errors; deterministic."""
    counts = json.loads((world / "world.json").read_text())["counts"]["label_errors"]
    n_wrong_all = n_crop_all = 0
    for sm in model.seasons:
        fc = _load(world, sm.season.id)
        n_wrong = 0
        for f in fc["features"]:
            p = f["properties"]
            true = int(sm.code[p["field_id"]])
            if true not in CROP_CODES:
                assert p["class_code"] == true
                continue
            n_crop_all += 1
            assert p["class_code"] in CROP_CODES
            n_wrong += p["class_code"] != true
        assert counts[sm.season.id] == n_wrong
        n_wrong_all += n_wrong
    assert 0.03 <= n_wrong_all / n_crop_all <= 0.12


def test_sos_follows_planting(world):
    for f in _load(world, "2024")["features"]:
        p = f["properties"]
        if p["sos"] is None:
            continue
        lag = (dt.date.fromisoformat(p["sos"]) - dt.date.fromisoformat(p["sowing"])).days
        if p["class_name"] in ("rice", "maize", "cassava"):
            assert 5 <= lag <= 45, p


def test_sensor_psf_mixes_pixels_at_edges_only():
    """The Gaussian PSF makes mixed pixels next to a field edge and leaves interiors alone."""
    from cropassets.world.sentinel2 import PSF_SIGMA_PX, sensor_psf

    surface = np.zeros((5, 16, 16), dtype=np.float32)
    surface[:, :, 8:] = 0.4  # a vertical edge between columns 7 and 8
    out = sensor_psf(surface)
    assert out.shape == surface.shape and out.dtype == np.float32
    edge = out[0, 8, 6:10]
    assert 0.0 < edge[1] < 0.2 < edge[2] < 0.4  # both sides of the edge are mixed
    np.testing.assert_allclose(out[:, :, :5], 0.0, atol=1e-6)
    np.testing.assert_allclose(out[:, :, 11:], 0.4, atol=1e-6)
    assert np.allclose(out.sum(axis=2), surface.sum(axis=2), rtol=1e-5)  # reflectance kept
    assert PSF_SIGMA_PX > 0
