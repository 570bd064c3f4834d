"""Import of user label files (GPKG, Shapefile, GeoJSON, FlatGeobuf, GeoParquet) into the
internal per-season label GeoJSON (EPSG:4326, field_id/class_code/class_name/source_id)."""

import json
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pyproj
import pytest
import shapely
from pyogrio.raw import write

from cropassets.core.reference.class_map import LabelFileError, load_class_map
from cropassets.core.reference.label_batches import iter_label_batches
from cropassets.core.reference.label_files import ImportSummary, import_labels
from cropassets.core.reference.label_readers import LabelSource
from cropassets.core.reference.sampling import FieldLabels, load_field_labels

UTM = "EPSG:32631"  # UTM 31N: the parcels lie near 3.0 E, 45.15 N (Auvergne)
X0, Y0 = 500_000.0, 5_000_000.0
CLASS_MAP = {"MAIS": (1, "maize"), "BLE": (2, "wheat"), "COLZA": (3, "rapeseed")}
_ABSENT = object()


def parcels_utm() -> list[shapely.Geometry]:
    """Four parcels in EPSG:32631 metres: square, square with hole, two-part, pentagon."""
    square = shapely.box(X0, Y0, X0 + 100, Y0 + 100)
    holed = shapely.Polygon(
        [(X0 + 200, Y0), (X0 + 300, Y0), (X0 + 300, Y0 + 100), (X0 + 200, Y0 + 100)],
        holes=[[(X0 + 240, Y0 + 40), (X0 + 240, Y0 + 60), (X0 + 260, Y0 + 60),
                (X0 + 260, Y0 + 40)]])
    multi = shapely.MultiPolygon([shapely.box(X0, Y0 + 200, X0 + 50, Y0 + 250),
                                  shapely.box(X0 + 70, Y0 + 200, X0 + 120, Y0 + 250)])
    penta = shapely.Polygon([(X0 + 200, Y0 + 200), (X0 + 280, Y0 + 210), (X0 + 300, Y0 + 260),
                             (X0 + 240, Y0 + 300), (X0 + 190, Y0 + 250)])
    return [square, holed, multi, penta]


IDS = [101, 102, 103, 104]
RAW = ["MAIS", "BLE", "MAIS", "COLZA"]
EXPECTED = FieldLabels({101: 1, 102: 2, 103: 1, 104: 3}, {1: "maize", 2: "wheat", 3: "rapeseed"})


def to_lonlat(geoms, crs=UTM):
    t = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    return shapely.transform(np.asarray(geoms, dtype=object),
                             lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))


def to_lambert93(geoms):
    t = pyproj.Transformer.from_crs(UTM, "EPSG:2154", always_xy=True)
    return shapely.transform(np.asarray(geoms, dtype=object),
                             lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))


def write_ogr(path, geoms, ids, classes, crs=UTM, geometry_type="Unknown", id_name="pid",
              class_name="crop"):
    wkb = np.array([None if g is None else shapely.to_wkb(g) for g in geoms], dtype=object)
    ids = np.array(ids, dtype=object if any(isinstance(i, str) for i in ids) else np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "crs was not provided" for the no-CRS case
        write(str(path), wkb, [ids, np.array(classes, dtype=object)], [id_name, class_name],
              crs=crs, geometry_type=geometry_type)
    return Path(path)


def write_geojson(path, geoms_lonlat, ids, classes):
    feats = [{"type": "Feature",
              "properties": {"pid": i, "crop": c},
              "geometry": None if g is None else json.loads(shapely.to_geojson(g))}
             for g, i, c in zip(geoms_lonlat, ids, classes, strict=True)]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    return path


def write_geoparquet(path, geoms, ids, classes, crs=_ABSENT):
    table = pa.table({"pid": ids, "crop": pa.array(classes, pa.string()),
                      "geometry": pa.array(list(shapely.to_wkb(np.asarray(geoms))),
                                           pa.binary())})
    col = {"encoding": "WKB", "geometry_types": ["Polygon", "MultiPolygon"]}
    if crs is not _ABSENT:
        col["crs"] = None if crs is None else pyproj.CRS(crs).to_json_dict()
    geo = {"version": "1.1.0", "primary_column": "geometry", "columns": {"geometry": col}}
    pq.write_table(table.replace_schema_metadata({b"geo": json.dumps(geo).encode()}), path)
    return path


def features(path):
    return json.loads(Path(path).read_text())["features"]


def assert_same_content(a, b, tol=1e-9):
    # sorted: a FlatGeobuf with a spatial index stores its features in Hilbert order
    fa, fb = (sorted(features(p), key=lambda f: f["properties"]["field_id"]) for p in (a, b))
    assert [f["properties"] for f in fa] == [f["properties"] for f in fb]
    for x, y in zip(fa, fb, strict=True):
        gx = shapely.normalize(shapely.from_geojson(json.dumps(x["geometry"])))
        gy = shapely.normalize(shapely.from_geojson(json.dumps(y["geometry"])))
        assert gx.geom_type == gy.geom_type
        assert shapely.equals_exact(gx, gy, tolerance=tol), (x["properties"], gx, gy)


# ---------------------------------------------------------------- formats and coordinates


def test_all_formats_import_to_the_same_internal_file(tmp_path):
    utm = parcels_utm()
    lonlat = to_lonlat(utm)
    srcs = {
        "gpkg": write_ogr(tmp_path / "in.gpkg", utm, IDS, RAW),
        # the Shapefile in Lambert-93: a second reprojection path to the same lon/lat
        "shp": write_ogr(tmp_path / "in.shp", to_lambert93(utm), IDS, RAW, crs="EPSG:2154",
                         geometry_type="Polygon"),
        "fgb": write_ogr(tmp_path / "in.fgb", utm, IDS, RAW),
        "geojson": write_geojson(tmp_path / "in.geojson", lonlat, IDS, RAW),
        "parquet": write_geoparquet(tmp_path / "in.parquet", utm, IDS, RAW, crs=UTM),
    }
    outs = {}
    for fmt, path in srcs.items():
        out = tmp_path / "out" / f"{fmt}.geojson"
        summary = import_labels(LabelSource(path, "pid", "crop", class_map=CLASS_MAP), out)
        assert summary.n_features == 4 and summary.n_skipped == 0, fmt
        assert summary.field_ids_from_source
        assert summary.class_counts == {"maize": 2, "wheat": 1, "rapeseed": 1}
        assert summary.n_classes == 3
        assert load_field_labels(out) == EXPECTED, fmt
        outs[fmt] = out
    for fmt in ("shp", "fgb", "geojson", "parquet"):
        assert_same_content(outs["gpkg"], outs[fmt])

    feats = features(outs["gpkg"])
    assert [set(f["properties"]) for f in feats] == [
        {"field_id", "class_code", "class_name", "source_id"}] * 4
    assert [f["properties"]["source_id"] for f in feats] == ["101", "102", "103", "104"]
    assert [f["geometry"]["type"] for f in feats] == [
        "Polygon", "Polygon", "MultiPolygon", "Polygon"]
    assert len(feats[1]["geometry"]["coordinates"]) == 2  # the hole survived
    w, s, e, n = shapely.total_bounds(lonlat)
    assert np.allclose(summary.bounds_wgs84, (w, s, e, n), atol=1e-9)
    for f in feats:  # RFC 7946: exterior rings counter-clockwise
        g = shapely.from_geojson(json.dumps(f["geometry"]))
        for part in getattr(g, "geoms", [g]):
            assert part.exterior.is_ccw and not any(r.is_ccw for r in part.interiors)


def test_utm_corner_lands_where_pyproj_puts_it(tmp_path):
    corner = (X0 + 100, Y0 + 100)  # NE corner of the square parcel
    ref = pyproj.Transformer.from_crs(UTM, "EPSG:4326", always_xy=True).transform(*corner)
    assert 2.99 < ref[0] < 3.01 and 45.1 < ref[1] < 45.2  # sanity: lon first
    src = write_ogr(tmp_path / "in.gpkg", parcels_utm(), IDS, RAW)
    import_labels(LabelSource(src, "pid", "crop"), tmp_path / "out.geojson")
    ring = np.asarray(features(tmp_path / "out.geojson")[0]["geometry"]["coordinates"][0])
    assert np.abs(ring - np.array(ref)).sum(axis=1).min() < 1e-12


def test_batches_are_streamed_and_reprojected(tmp_path):
    src = write_ogr(tmp_path / "in.gpkg", parcels_utm() * 3, list(range(1, 13)), RAW * 3)
    batches = list(iter_label_batches(LabelSource(src, "pid", "crop"), batch_size=5))
    assert [len(b) for b in batches] == [5, 5, 2]
    assert batches[0].source_ids.tolist() == ["1", "2", "3", "4", "5"]
    assert batches[0].raw_classes.tolist() == ["MAIS", "BLE", "MAIS", "COLZA", "MAIS"]
    b = shapely.bounds(batches[0].geometries)
    assert (b[:, 0] > 2.99).all() and (b[:, 3] < 45.2).all()


def test_geoparquet_crs_default_and_missing(tmp_path):
    lonlat = to_lonlat(parcels_utm())
    src = write_geoparquet(tmp_path / "crs84.parquet", lonlat, IDS, RAW)  # no crs: CRS84
    import_labels(LabelSource(src, "pid", "crop", CLASS_MAP), tmp_path / "a.geojson")
    gpkg = write_ogr(tmp_path / "in.gpkg", parcels_utm(), IDS, RAW)
    import_labels(LabelSource(gpkg, "pid", "crop", CLASS_MAP), tmp_path / "b.geojson")
    assert_same_content(tmp_path / "a.geojson", tmp_path / "b.geojson")

    bad = write_geoparquet(tmp_path / "nocrs.parquet", lonlat, IDS, RAW, crs=None)
    with pytest.raises(LabelFileError, match="nocrs.parquet.*no CRS"):
        import_labels(LabelSource(bad, "pid", "crop"), tmp_path / "c.geojson")


def test_shapefile_without_crs_is_an_error(tmp_path):
    src = write_ogr(tmp_path / "noprj.shp", parcels_utm(), IDS, RAW, crs=None,
                    geometry_type="Polygon")
    with pytest.raises(LabelFileError, match="noprj.shp.*no CRS"):
        import_labels(LabelSource(src, "pid", "crop"), tmp_path / "out.geojson")
    assert not (tmp_path / "out.geojson").exists()


def test_unreadable_and_missing_files_name_the_path(tmp_path):
    junk = tmp_path / "labels.txt"
    junk.write_text("field,crop\n1,maize\n")
    junk_csv = tmp_path / "notes.xyz"
    junk_csv.write_bytes(b"\x00\x01garbage")
    for path in (junk_csv, tmp_path / "nope.gpkg", tmp_path / "bad.parquet"):
        if path.suffix == ".parquet":
            path.write_bytes(b"PAR1 not really")
        with pytest.raises(LabelFileError, match=path.name):
            import_labels(LabelSource(path, "id", "crop"), tmp_path / "out.geojson")
    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"id": [1], "crop": ["a"]}), plain)
    with pytest.raises(LabelFileError, match="plain.parquet.*geo"):
        import_labels(LabelSource(plain, "id", "crop"), tmp_path / "out.geojson")


def test_gpkg_fid_and_geojson_feature_id_can_be_the_id(tmp_path):
    gpkg = write_ogr(tmp_path / "in.gpkg", parcels_utm(), IDS, RAW)
    s = import_labels(LabelSource(gpkg, "fid", "crop"), tmp_path / "a.geojson")
    assert s.field_ids_from_source
    assert sorted(load_field_labels(tmp_path / "a.geojson").class_of_field) == [1, 2, 3, 4]
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": fid, "properties": {"crop": c},
         "geometry": json.loads(shapely.to_geojson(g))}
        for fid, c, g in zip((7, 9, 11, 13), RAW, to_lonlat(parcels_utm()), strict=True)]}
    (tmp_path / "f.geojson").write_text(json.dumps(doc))
    import_labels(LabelSource(tmp_path / "f.geojson", "id", "crop"), tmp_path / "b.geojson")
    assert sorted(load_field_labels(tmp_path / "b.geojson").class_of_field) == [7, 9, 11, 13]


# ---------------------------------------------------------------- ids and classes


def test_string_ids_get_sequential_field_ids_and_keep_source_id(tmp_path):
    lonlat = to_lonlat(parcels_utm())
    for ids in (["FR-001", "FR-002", "x7", "FR-000"], [1, 2, 3, "abc"], ["1", "2", "042", "3"],
                [1, 2, 3, 0], [1, 2, 3, 2**32]):
        src = write_geojson(tmp_path / "in.geojson", lonlat, ids, RAW)
        s = import_labels(LabelSource(src, "pid", "crop", CLASS_MAP), tmp_path / "out.geojson")
        assert not s.field_ids_from_source, ids
        props = [f["properties"] for f in features(tmp_path / "out.geojson")]
        assert [p["field_id"] for p in props] == [1, 2, 3, 4]
        assert [p["source_id"] for p in props] == [str(i) for i in ids]
    src = write_geojson(tmp_path / "in.geojson", lonlat, ["12", "7", 3, 2**32 - 1], RAW)
    s = import_labels(LabelSource(src, "pid", "crop", CLASS_MAP), tmp_path / "out.geojson")
    assert s.field_ids_from_source
    assert [f["properties"]["field_id"] for f in features(tmp_path / "out.geojson")] == [
        12, 7, 3, 2**32 - 1]


def test_duplicate_ids_are_an_error(tmp_path):
    src = write_geojson(tmp_path / "in.geojson", to_lonlat(parcels_utm()),
                        ["a", "b", "a", "b"], RAW)
    with pytest.raises(LabelFileError, match=r"2 duplicate id\(s\).*'a'.*'b'"):
        import_labels(LabelSource(src, "pid", "crop"), tmp_path / "out.geojson")


def test_class_map_file_maps_raw_strings(tmp_path):
    cmap_path = tmp_path / "classes.json"
    cmap_path.write_text(json.dumps({"MAIS": {"code": 4, "name": "maize"},
                                     "BLE": {"code": 7, "name": "wheat"},
                                     "BLE_DUR": {"code": 7, "name": "wheat"},
                                     "COLZA": {"code": 9, "name": "rapeseed"}}))
    cmap = load_class_map(cmap_path)
    assert cmap == {"MAIS": (4, "maize"), "BLE": (7, "wheat"), "BLE_DUR": (7, "wheat"),
                    "COLZA": (9, "rapeseed")}
    src = write_ogr(tmp_path / "in.gpkg", parcels_utm(), IDS, ["MAIS", "BLE", "BLE_DUR", "COLZA"])
    s = import_labels(LabelSource(src, "pid", "crop", cmap), tmp_path / "out.geojson")
    assert s.class_counts == {"maize": 1, "wheat": 2, "rapeseed": 1} and s.n_classes == 3
    assert load_field_labels(tmp_path / "out.geojson") == FieldLabels(
        {101: 4, 102: 7, 103: 7, 104: 9}, {4: "maize", 7: "wheat", 9: "rapeseed"})

    src = write_ogr(tmp_path / "in2.gpkg", parcels_utm() * 2, range(1, 9),
                    ["MAIS", "ORGE", "TOURNESOL", "ORGE"] * 2)
    with pytest.raises(LabelFileError) as err:
        import_labels(LabelSource(src, "pid", "crop", cmap), tmp_path / "out.geojson")
    msg = str(err.value)
    assert "classes.json" in msg and "in2.gpkg" in msg and "'crop'" in msg
    assert "'ORGE' (4 features)" in msg and "'TOURNESOL' (2 features)" in msg
    assert "MAIS" not in msg


@pytest.mark.parametrize("entries, match", [
    ({"A": {"code": 0, "name": "x"}}, "entry 'A'.*outside 1..254"),
    ({"A": {"code": 255, "name": "x"}}, "entry 'A'.*outside 1..254"),
    ({"A": {"code": "1", "name": "x"}}, "entry 'A'.*must be an int"),
    ({"A": {"code": True, "name": "x"}}, "entry 'A'.*must be an int"),
    ({"A": {"code": 1}}, "entry 'A'.*name missing"),
    ({"A": {"code": 1, "name": ""}}, "entry 'A'.*non-empty"),
    ({"A": 3}, "entry 'A'.*expected"),
    ({"A": {"code": 1, "name": "x"}, "B": {"code": 1, "name": "y"}},
     "entry 'B'.*code 1 is named 'y' here but 'x' in entry 'A'"),
    ({"A": {"code": 1, "name": "x"}, "B": {"code": 2, "name": "x"}},
     "entry 'B'.*name 'x' has code 2"),
    ([1, 2], "non-empty JSON object"),
])
def test_bad_class_map_entries_are_named(tmp_path, entries, match):
    path = tmp_path / "cm.json"
    path.write_text(json.dumps(entries))
    with pytest.raises(LabelFileError, match=f"cm.json.*{match}"):
        load_class_map(path)


def test_class_map_file_missing_or_not_json(tmp_path):
    with pytest.raises(LabelFileError, match="nope.json not found"):
        load_class_map(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(LabelFileError, match="bad.json is not readable JSON"):
        load_class_map(tmp_path / "bad.json")


def test_classes_without_a_map(tmp_path):
    lonlat = to_lonlat(parcels_utm())
    src = write_geojson(tmp_path / "a.geojson", lonlat, IDS, [11, 3, 11, 20])
    s = import_labels(LabelSource(src, "pid", "crop"), tmp_path / "a_out.geojson")
    assert load_field_labels(tmp_path / "a_out.geojson") == FieldLabels(
        {101: 11, 102: 3, 103: 11, 104: 20}, {3: "3", 11: "11", 20: "20"})
    assert s.class_counts == {"3": 1, "11": 2, "20": 1}
    src = write_geojson(tmp_path / "b.geojson", lonlat, IDS, RAW)
    import_labels(LabelSource(src, "pid", "crop"), tmp_path / "b_out.geojson")
    assert load_field_labels(tmp_path / "b_out.geojson") == FieldLabels(
        {101: 3, 102: 1, 103: 3, 104: 2}, {1: "BLE", 2: "COLZA", 3: "MAIS"})
    src = write_geojson(tmp_path / "c.geojson", lonlat, IDS, [1110, 0, 1110, 45])  # > 254, 0
    import_labels(LabelSource(src, "pid", "crop"), tmp_path / "c_out.geojson")
    assert load_field_labels(tmp_path / "c_out.geojson") == FieldLabels(
        {101: 3, 102: 1, 103: 3, 104: 2}, {1: "0", 2: "45", 3: "1110"})


def test_null_geometry_and_null_class_are_skipped_and_counted(tmp_path):
    utm = parcels_utm()
    geoms = [utm[0], None, utm[2], shapely.Polygon(), utm[3]]
    src = write_ogr(tmp_path / "in.gpkg", geoms, [1, 2, 3, 4, 5],
                    ["MAIS", "BLE", None, "BLE", "COLZA"])
    s = import_labels(LabelSource(src, "pid", "crop", CLASS_MAP), tmp_path / "out.geojson")
    assert (s.n_features, s.n_skipped) == (2, 3)
    assert load_field_labels(tmp_path / "out.geojson").class_of_field == {1: 1, 5: 3}


# ---------------------------------------------------------------- errors


def test_missing_column_lists_the_columns_the_file_has(tmp_path):
    src = write_ogr(tmp_path / "in.gpkg", parcels_utm(), IDS, RAW, id_name="PARCEL_ID",
                    class_name="CODE_CULTU")
    with pytest.raises(LabelFileError) as err:
        import_labels(LabelSource(src, "parcel_id", "CODE_CULTU"), tmp_path / "out.geojson")
    msg = str(err.value)
    assert "in.gpkg" in msg and "id_column='parcel_id'" in msg
    assert "'PARCEL_ID'" in msg and "'CODE_CULTU'" in msg and "class_column" not in msg
    pq_src = write_geoparquet(tmp_path / "in.parquet", parcels_utm(), IDS, RAW, crs=UTM)
    with pytest.raises(LabelFileError, match=r"class_column='culture'.*\['pid', 'crop', "):
        import_labels(LabelSource(pq_src, "pid", "culture"), tmp_path / "out.geojson")


def test_non_polygon_geometry_is_an_error(tmp_path):
    utm = parcels_utm()
    geoms = [utm[0], shapely.LineString([(X0, Y0), (X0 + 10, Y0 + 10)]), shapely.Point(X0, Y0)]
    src = write_ogr(tmp_path / "in.gpkg", geoms, ["p1", "road-7", "well"], ["MAIS"] * 3)
    with pytest.raises(LabelFileError, match="in.gpkg.*'road-7' has a LineString geometry"):
        import_labels(LabelSource(src, "pid", "crop"), tmp_path / "out.geojson")


def test_labels_outside_the_region_are_an_error(tmp_path):
    src = write_ogr(tmp_path / "in.gpkg", parcels_utm(), IDS, RAW)
    with pytest.raises(LabelFileError) as err:
        import_labels(LabelSource(src, "pid", "crop"), tmp_path / "out.geojson",
                      region_bbox_wgs84=(100.0, 10.0, 101.0, 11.0))
    msg = str(err.value)
    assert "labels in no tile" in msg and "in.gpkg" in msg
    assert "(100.0, 10.0, 101.0, 11.0)" in msg and "(2.99999" in msg
    assert not (tmp_path / "out.geojson").exists()
    assert list(tmp_path.iterdir()) == [src]
    # a region covering part of the parcels is fine; the others are counted
    lon, lat = to_lonlat([shapely.Point(X0 + 50, Y0 + 50)])[0].coords[0]
    s = import_labels(LabelSource(src, "pid", "crop"), tmp_path / "out.geojson",
                      region_bbox_wgs84=(lon - 1e-4, lat - 1e-4, lon + 1e-4, lat + 1e-4))
    assert (s.n_features, s.n_outside_region) == (4, 3)
    with pytest.raises(ValueError, match="west < east"):
        import_labels(LabelSource(src, "pid", "crop"), tmp_path / "out.geojson",
                      region_bbox_wgs84=(3.0, 45.0, 2.0, 46.0))


def test_wrong_crs_gives_a_lonlat_range_error(tmp_path):
    # UTM metres declared as EPSG:4326
    src = write_ogr(tmp_path / "in.gpkg", parcels_utm(), IDS, RAW, crs="EPSG:4326")
    with pytest.raises(LabelFileError, match="'101' is outside the lon/lat range"):
        import_labels(LabelSource(src, "pid", "crop"), tmp_path / "out.geojson")


# ---------------------------------------------------------------- atomicity and streaming


def _many_squares(n, size=10.0):
    i = np.arange(n)
    x = X0 + (i % 500) * 20.0
    y = Y0 + (i // 500) * 20.0
    return shapely.box(x, y, x + size, y + size)


def _dir_snapshot(d):
    return sorted(p.name for p in d.iterdir())


@pytest.mark.parametrize("bad", ["class", "geometry"])
def test_failed_import_leaves_the_old_file_untouched(tmp_path, bad):
    n = 3000
    geoms = list(_many_squares(n))
    classes = ["MAIS", "BLE", "COLZA"] * (n // 3)
    if bad == "class":
        classes[-5] = "SOJA"  # in the last batch: caught by the first (id/class) pass
    else:
        geoms[-5] = shapely.Point(X0, Y0)  # in the last batch: caught while writing
    (tmp_path / "src").mkdir()
    src = write_ogr(tmp_path / "src" / "in.gpkg", geoms, range(1, n + 1), classes)
    out_dir = tmp_path / "labels"
    out_dir.mkdir()
    out = out_dir / "2025.geojson"
    old = b'{"type":"FeatureCollection","features":[]}\n'
    out.write_bytes(old)
    with pytest.raises(LabelFileError, match="'SOJA'" if bad == "class" else "Point"):
        import_labels(LabelSource(src, "pid", "crop", CLASS_MAP), out, batch_size=500)
    assert out.read_bytes() == old
    assert _dir_snapshot(out_dir) == ["2025.geojson"]
    # and a good import replaces it whole, leaving no temp file either
    good = write_ogr(tmp_path / "src" / "good.gpkg", parcels_utm(), IDS, RAW)
    import_labels(LabelSource(good, "pid", "crop", CLASS_MAP), out, batch_size=500)
    assert load_field_labels(out) == EXPECTED
    assert _dir_snapshot(out_dir) == ["2025.geojson"]


def test_large_file_streams_with_bounded_memory(tmp_path):
    n = 25_000
    classes = np.array(["MAIS", "BLE", "COLZA", "ORGE", "TOURNESOL"], dtype=object)[
        np.arange(n) % 5]
    src = write_ogr(tmp_path / "big.gpkg", _many_squares(n), np.arange(1, n + 1), classes,
                    geometry_type="Polygon")
    out = tmp_path / "big.geojson"
    t0 = time.perf_counter()
    tracemalloc.start()
    try:
        summary = import_labels(LabelSource(src, "pid", "crop"), out, batch_size=1000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    elapsed = time.perf_counter() - t0
    assert isinstance(summary, ImportSummary)
    assert summary.n_features == n and summary.field_ids_from_source
    assert summary.class_counts == {"BLE": 5000, "COLZA": 5000, "MAIS": 5000, "ORGE": 5000,
                                    "TOURNESOL": 5000}

    # for scale: what holding all features at once as parsed JSON takes
    tracemalloc.start()
    try:
        doc = json.loads(out.read_text())
        _, whole = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(doc["features"]) == n
    del doc
    print(f"\nimport peak {peak / 2**20:.1f} MiB in {elapsed:.2f} s; whole file as JSON "
          f"{whole / 2**20:.1f} MiB; output {out.stat().st_size / 2**20:.1f} MiB")
    assert peak < 10 * 2**20
    assert peak < whole / 4
    assert load_field_labels(out).class_of_field[n] == 5  # TOURNESOL, codes by sorted name


def test_float_ids_and_classes_compare_as_integers(tmp_path):
    src = write_geoparquet(tmp_path / "f.parquet", parcels_utm(), [101.0, 102.0, 103.0, 104.0],
                           ["x"] * 4, crs=UTM)
    table = pq.read_table(src)
    table = table.set_column(1, "crop", pa.array([4.0, 2.0, 4.0, None]))
    pq.write_table(table.replace_schema_metadata(table.schema.metadata), src)
    s = import_labels(LabelSource(src, "pid", "crop"), tmp_path / "out.geojson")
    assert s.field_ids_from_source and (s.n_features, s.n_skipped) == (3, 1)
    assert load_field_labels(tmp_path / "out.geojson") == FieldLabels(
        {101: 4, 102: 2, 103: 4}, {2: "2", 4: "4"})


def test_several_layers_need_a_layer_name(tmp_path):
    path = tmp_path / "multi.gpkg"
    write_ogr(path, parcels_utm(), IDS, RAW)  # layer "multi"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write(str(path), np.array(shapely.to_wkb(parcels_utm()[:2]), dtype=object),
              [np.array([1, 2]), np.array(["BLE", "BLE"], dtype=object)], ["pid", "crop"],
              crs=UTM, geometry_type="Polygon", layer="season_2025")
    with pytest.raises(LabelFileError, match=r"multi.gpkg: 2 layers .*LabelSource.layer"):
        import_labels(LabelSource(path, "pid", "crop"), tmp_path / "out.geojson")
    s = import_labels(LabelSource(path, "pid", "crop", layer="season_2025"),
                      tmp_path / "out.geojson")
    assert s.class_counts == {"BLE": 2}
    with pytest.raises(LabelFileError, match="layer 'nope' not found.*season_2025"):
        import_labels(LabelSource(path, "pid", "crop", layer="nope"), tmp_path / "out.geojson")
