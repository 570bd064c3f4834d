"""What QGIS users open: the .qml styles and the whole-region VRT, over real HTTP and GDAL."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from tiler_server import http_get

from cropassets.core.publish.manifest_record import WeekManifest
from cropassets.core.publish.week_layers import manifest_path, region_path


def _qml(tiler_url: str, path: str) -> ET.Element:
    r = http_get(f"{tiler_url}{path}")
    assert r.status == 200, r.body[:300]
    assert r.headers["content-type"].startswith("text/xml")
    assert r.body.startswith(b"<!DOCTYPE qgis")
    return ET.fromstring(r.body.split(b"\n", 1)[1])  # valid XML (the DOCTYPE line aside)


def _value_at(path: str, lon: float, lat: float, band: int) -> int:
    with rasterio.open(path) as ds:
        x, y = Transformer.from_crs("EPSG:4326", ds.crs, always_xy=True).transform(lon, lat)
        return int(next(ds.sample([(x, y)], indexes=band))[0])


def test_crop_qml_classes_and_colours_equal_the_legend(tiler_url, published):
    week = published.mapped_weeks[0]
    legend = http_get(f"{tiler_url}/api/legend?week={week}").json()
    for path in (f"/download/{week}/crop.qml", f"/download/{week}/{published.field_tile}/crop.qml"):
        doc = _qml(tiler_url, path)
        renderer = doc.find("pipe/rasterrenderer")
        assert renderer.get("type") == "paletted" and renderer.get("band") == "1"
        entries = [(int(e.get("value")), e.get("label"), e.get("color"))
                   for e in renderer.findall("colorPalette/paletteEntry")]
        assert entries == [(c["code"], c["name"], c["color"]) for c in legend["crop"]]
    # paired with the COG download: crop_<tile>_<week>.tif + crop_<tile>_<week>.qml
    r = http_get(f"{tiler_url}/download/{week}/{published.field_tile}/crop.qml")
    assert f'filename="crop_{published.field_tile}_{week}.qml"' in r.headers[
        "content-disposition"]


@pytest.mark.parametrize(("style", "band", "unit"), [("confidence", "2", "%"),
                                                     ("sos", "1", "day of year")])
def test_ramp_qml_spans_the_layer_range_with_the_map_colours(tiler_url, published, style,
                                                              band, unit):
    week = published.mapped_weeks[-1]
    ramp = http_get(f"{tiler_url}/api/legend?week={week}").json()[style]
    renderer = _qml(tiler_url, f"/download/{week}/{style}.qml").find("pipe/rasterrenderer")
    assert renderer.get("type") == "singlebandpseudocolor" and renderer.get("band") == band
    shader = renderer.find("rastershader/colorrampshader")
    assert shader.get("colorRampType") == "INTERPOLATED"
    items = shader.findall("item")
    assert [float(i.get("value")) for i in (items[0], items[-1])] == [ramp["min"], ramp["max"]]
    assert [i.get("color") for i in items] == ramp["stops"]
    assert items[0].get("label").endswith(unit)


def test_region_vrt_through_the_tiler_reads_the_field_class(tiler_url, published):
    week = published.mapped_weeks[-1]
    manifest = WeekManifest.read(manifest_path(published.root, week))
    row = http_get(f"{tiler_url}/api/weeks").json()["seasons"][0]["weeks"][-1]
    assert row["regions"]["crop"] == f"{tiler_url}/download/{week}/crop.vrt"
    assert row["styles"]["crop"] == f"{tiler_url}/download/{week}/crop.qml"
    assert row["stac"]["api"] == f"{tiler_url}/stac"
    url = f"/vsicurl/{tiler_url}/download/{week}/crop.vrt"
    lon, lat = published.field_point
    assert _value_at(url, lon, lat, 1) == published.field_class
    assert _value_at(url, lon, lat, 2) == min(100, 40 + 10 * len(published.weeks))
    with rasterio.open(url) as ds:
        assert ds.count == 2 and ds.dtypes == ("uint8", "uint8") and ds.nodata == 255
        assert ds.descriptions == ("class", "confidence")
        assert ds.colormap(1)[published.field_class][:3] == tuple(
            int(c[i:i + 2], 16) for c in [next(
                e.color for e in manifest.classes
                if e.code == published.field_class)[1:]] for i in (0, 2, 4))
        region = ds.read(1)
        # the region is every tile side by side: each tile's COG is a window of it
        for tile_row in manifest.tiles.values():
            with rasterio.open(Path(published.root) / str(tile_row.crop)) as t:
                win = rasterio.windows.from_bounds(*t.bounds, transform=ds.transform)
                np.testing.assert_array_equal(
                    region[int(round(win.row_off)):int(round(win.row_off)) + t.height,
                           int(round(win.col_off)):int(round(win.col_off)) + t.width],
                    t.read(1))
    # the VRT on disk (relative paths) reads the same
    disk = region_path(published.root, week, "crop")
    assert _value_at(str(disk), lon, lat, 1) == published.field_class


def test_stac_items_ship_the_styles(tiler_url, published):
    week = published.mapped_weeks[0]
    item = http_get(f"{tiler_url}/stac/collections/cropassets-crop/items/"
                    f"crop-{published.field_tile}-{week}").json()
    assert set(item["assets"]) == {"data", "style-crop", "style-confidence"}
    for key in ("style-crop", "style-confidence"):
        href = item["assets"][key]["href"]
        assert href.startswith(f"{tiler_url}/download/{week}/{published.field_tile}/")
        assert http_get(href).status == 200
    sos = http_get(f"{tiler_url}/stac/collections/cropassets-sos/items/"
                   f"sos-{published.field_tile}-{week}").json()
    assert set(sos["assets"]) == {"data", "style-sos"}


@pytest.mark.parametrize(("path", "names"), [
    ("/download/{week}/nope.vrt", "crop, sos"),
    ("/download/{week}/nope.qml", "crop, confidence, sos"),
    ("/download/{week}/T99/crop.qml", "tiles:"),
    ("/download/{first}/crop.vrt", "no model before week 3"),
    ("/download/{first}/crop.qml", "styles: sos"),
    ("/download/2099-01-05/crop.vrt", "published weeks"),
    ("/download/{week}/..%2F..%2Fcrop.vrt", "expected /download"),
])
def test_bad_downloads_are_404_naming_what_exists(tiler_url, published, data_root, path,
                                                  names):
    r = http_get(tiler_url + path.format(week=published.mapped_weeks[0],
                                         first=published.weeks[0]))
    assert r.status == 404, r.body[:300]
    assert names in r.json()["detail"]
    assert data_root not in r.body.decode()
