"""An independent XYZ client, GDAL's WMS driver (TMS mini-driver), reads the served tiles.

The tiles are opened as one EPSG:3857 raster at the layer's native zoom (as QGIS would
show the XYZ URL), and the pixel at a known field must have the legend colour of the
field's true class, which the COG on disk holds at the same place.
"""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from rasterio.windows import Window
from tiler_server import http_get

from cropassets.core.legend import hex_to_rgba

HALF_WORLD = 20037508.342789244


def wms_xml(url_template: str, level: int) -> str:
    """GDAL_WMS description of an XYZ layer (no <Cache>: every read goes to the server)."""
    return f"""<GDAL_WMS>
  <Service name="TMS"><ServerUrl>{url_template}</ServerUrl></Service>
  <DataWindow>
    <UpperLeftX>{-HALF_WORLD}</UpperLeftX><UpperLeftY>{HALF_WORLD}</UpperLeftY>
    <LowerRightX>{HALF_WORLD}</LowerRightX><LowerRightY>{-HALF_WORLD}</LowerRightY>
    <TileLevel>{level}</TileLevel><TileCountX>1</TileCountX><TileCountY>1</TileCountY>
    <YOrigin>top</YOrigin>
  </DataWindow>
  <Projection>EPSG:3857</Projection>
  <BlockSizeX>256</BlockSizeX><BlockSizeY>256</BlockSizeY>
  <BandsCount>4</BandsCount>
  <ZeroBlockHttpCodes>204,404</ZeroBlockHttpCodes>
  <ZeroBlockOnServerException>false</ZeroBlockOnServerException>
  <MaxConnections>4</MaxConnections>
  <Timeout>30</Timeout>
</GDAL_WMS>"""


@pytest.fixture
def direct_http(monkeypatch):
    """curl (inside GDAL) must not send loopback requests to a proxy."""
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")


def test_gdal_wms_reads_the_true_class_colour(tiler_url, published, tmp_path, direct_http):
    week = published.mapped_weeks[-1]
    tj = http_get(f"{tiler_url}/layers/crop/{week}/WebMercatorQuad/tilejson.json").json()
    template = tj["tiles"][0].replace("{z}", "${z}").replace("{x}", "${x}").replace("{y}",
                                                                                   "${y}")
    xml = tmp_path / "crop.xml"
    xml.write_text(wms_xml(template, tj["maxzoom"]))
    lon, lat = published.field_point
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True).transform(lon, lat)
    legend = {c["code"]: c["color"] for c in http_get(f"{tiler_url}/api/legend").json()["crop"]}
    want = hex_to_rgba(legend[published.field_class])

    with rasterio.Env(GDAL_DEFAULT_WMS_CACHE_PATH=str(tmp_path / "no-cache"),
                      GDAL_HTTP_TIMEOUT="30"), rasterio.open(xml) as ds:
        assert ds.driver == "WMS" and ds.count == 4 and ds.crs.to_epsg() == 3857
        assert ds.width == 256 * 2 ** tj["maxzoom"]
        row, col = ds.index(x, y)
        block = ds.read(window=Window(col - 2, row - 2, 5, 5))  # (band, y, x)
    assert tuple(int(v) for v in block[:, 2, 2]) == want
    # the field is several pixels wide: its neighbours show the same class
    assert (np.all(block.reshape(4, -1).T == want, axis=1)).sum() >= 20
    assert not (tmp_path / "no-cache").exists()

    # ... and the published COG holds that class at the same point
    cog = published.root / "crop_map" / published.field_tile / f"{week}.tif"
    with rasterio.open(cog) as src:
        ux, uy = Transformer.from_crs("EPSG:4326", src.crs, always_xy=True).transform(lon, lat)
        assert int(next(src.sample([(ux, uy)], indexes=1))[0]) == published.field_class


def test_gdal_wms_gets_empty_blocks_outside_the_data(tiler_url, published, tmp_path,
                                                     direct_http):
    week = published.mapped_weeks[0]
    url = (f"{tiler_url}/layers/crop/{week}/tiles/WebMercatorQuad/${{z}}/${{x}}/${{y}}.png")
    xml = tmp_path / "crop.xml"
    xml.write_text(wms_xml(url, 14))
    with rasterio.open(xml) as ds:
        block = ds.read(window=Window(0, 0, 256, 256))  # tile 14/0/0: 204 from the server
    assert block.shape == (4, 256, 256) and not block.any()
