"""What QGIS users open: ``.qml`` styles per layer and a whole-region VRT per product.

* :func:`paletted_qml` writes a QGIS 3 *paletted* raster renderer whose entries are the
  legend's class codes, names and colours (the crop band).
* :func:`pseudocolor_qml` writes a *singleband pseudocolor* renderer: an interpolated
  ramp from ``vmin`` to ``vmax`` (confidence 0-100 %, SOS day of year, observation
  counts) with the same colour stops as the web map.
* :func:`region_vrt` writes a GDAL VRT mosaic over the tiles' COGs of one product and week
  (one CRS and resolution, tiles on one pixel grid), with the sources' nodata and the
  class palette, so GDAL and QGIS open the whole region as one raster.

QGIS applies ``<name>.qml`` automatically to ``<name>.tif`` or ``<name>.vrt`` in the same
folder; the tiler names its downloads so that they pair up (``crop_T00_<week>.tif`` +
``crop_T00_<week>.qml``).
"""

from __future__ import annotations

import os
import posixpath
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path

import rasterio

from cropassets.core.legend import LegendEntry, hex_to_rgba
from cropassets.core.objstore import ObjPath, gdal_path, location

QGIS_VERSION = "3.28.0"
GDAL_TYPES = {"uint8": "Byte", "uint16": "UInt16", "int16": "Int16", "float32": "Float32"}


def _qgis_document(renderer: ET.Element) -> str:
    """A complete QML document around a ``rasterrenderer`` element."""
    qgis = ET.Element("qgis", version=QGIS_VERSION, styleCategories="AllStyleCategories",
                      hasScaleBasedVisibilityFlag="0", minScale="1e+08", maxScale="0")
    pipe = ET.SubElement(qgis, "pipe")
    pipe.append(renderer)
    ET.SubElement(pipe, "brightnesscontrast", brightness="0", contrast="0", gamma="1")
    ET.SubElement(pipe, "huesaturation", saturation="0", grayscaleMode="0",
                  colorizeOn="0", colorizeRed="255", colorizeGreen="128", colorizeBlue="128",
                  colorizeStrength="100")
    ET.SubElement(pipe, "rasterresampler", maxOversampling="2")
    ET.SubElement(qgis, "blendMode").text = "0"
    ET.indent(qgis)
    return ("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
            + ET.tostring(qgis, encoding="unicode") + "\n")


def paletted_qml(legend: Sequence[LegendEntry], band: int = 1) -> str:
    """QML of a paletted renderer of ``band``: one entry per class (code, colour, name).

    Raises:
        ValueError: An empty legend.
    """
    if not legend:
        raise ValueError("a paletted style needs at least one class")
    renderer = ET.Element("rasterrenderer", type="paletted", band=str(band), opacity="1",
                          alphaBand="-1", nodataColor="")
    ET.SubElement(renderer, "rasterTransparency")
    palette = ET.SubElement(renderer, "colorPalette")
    for e in sorted(legend, key=lambda e: e.code):
        hex_to_rgba(e.color)  # validates #rrggbb
        ET.SubElement(palette, "paletteEntry", value=str(e.code), color=e.color.lower(),
                      label=e.name, alpha="255")
    return _qgis_document(renderer)


def pseudocolor_qml(band: int, vmin: float, vmax: float, colors: Sequence[str],
                    unit: str = "") -> str:
    """QML of a singleband pseudocolor renderer: ``colors`` spread evenly over vmin..vmax.

    Args:
        band: 1-based band of the raster.
        vmin: Value of the first colour (in the band's unit).
        vmax: Value of the last colour.
        colors: At least two ``#rrggbb`` stops.
        unit: Appended to the labels (e.g. ``"%"``, ``"day of year"``).

    Raises:
        ValueError: Fewer than two colours or vmin >= vmax.
    """
    if len(colors) < 2:
        raise ValueError(f"a ramp needs at least two colours, got {len(colors)}")
    if not vmin < vmax:
        raise ValueError(f"ramp range {vmin}..{vmax} is empty")
    renderer = ET.Element("rasterrenderer", type="singlebandpseudocolor", band=str(band),
                          opacity="1", alphaBand="-1", nodataColor="",
                          classificationMin=f"{vmin:g}", classificationMax=f"{vmax:g}")
    ET.SubElement(renderer, "rasterTransparency")
    shader = ET.SubElement(ET.SubElement(renderer, "rastershader"), "colorrampshader",
                           colorRampType="INTERPOLATED", classificationMode="2", clip="0",
                           minimumValue=f"{vmin:g}", maximumValue=f"{vmax:g}",
                           labelPrecision="0")
    n = len(colors) - 1
    for i, color in enumerate(colors):
        hex_to_rgba(color)
        value = vmin + (vmax - vmin) * i / n
        ET.SubElement(shader, "item", alpha="255", value=f"{value:g}", color=color.lower(),
                      label=f"{value:g}{' ' + unit if unit else ''}")
    return _qgis_document(renderer)


def region_vrt(sources: Mapping[str, Path | ObjPath], vrt_path: Path | ObjPath | None = None,
               band_names: Sequence[str] = (),
               legend: Sequence[LegendEntry] | None = None,
               hrefs: Mapping[str, str] | None = None) -> str:
    """VRT XML mosaicking the COGs ``sources`` (tile id -> path) of one product.

    Args:
        sources: Tile id -> COG path; all on one CRS, resolution and pixel grid.
        vrt_path: Where the VRT will be written; sources are then referenced relative to
            it (``relativeToVRT="1"``). None: absolute paths.
        band_names: Band descriptions.
        legend: Colour table of band 1 (a class band), if any.
        hrefs: Tile id -> the filename written instead of the path (e.g. a ``/vsicurl/``
            URL), absolute (``relativeToVRT="0"``).

    Raises:
        ValueError: No sources, or sources on different CRSs, resolutions or grids, or with
            different band counts or types, naming the tiles.
    """
    if not sources:
        raise ValueError("a region VRT needs at least one tile")
    info = {}
    for tile, path in sorted(sources.items()):
        with rasterio.open(gdal_path(path)) as ds:
            info[tile] = (ds.crs, ds.transform, ds.width, ds.height, ds.count, ds.dtypes[0],
                          ds.nodata, ds.block_shapes[0])
    first = next(iter(info))
    crs, t0, _, _, count, dtype, nodata, _ = info[first]
    for tile, (c, t, _, _, n, d, _, _) in info.items():
        if c != crs:
            raise ValueError(f"tile {tile} is on {c}, tile {first} on {crs}: a region VRT "
                             "needs one CRS")
        if (t.a, t.e, t.b, t.d) != (t0.a, t0.e, t0.b, t0.d):
            raise ValueError(f"tile {tile} has pixel size {t.a}, {t.e}, tile {first} "
                             f"{t0.a}, {t0.e}: a region VRT needs one resolution")
        if (n, d) != (count, dtype):
            raise ValueError(f"tile {tile} has {n} bands of {d}, tile {first} {count} of "
                             f"{dtype}")
    res_x, res_y = t0.a, t0.e
    west = min(t.c for _, t, *_ in info.values())
    north = max(t.f for _, t, *_ in info.values())
    offsets = {}
    for tile, (_, t, w, h, *_rest) in info.items():
        col, row = (t.c - west) / res_x, (t.f - north) / res_y
        if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
            raise ValueError(f"tile {tile} is not on the pixel grid of tile {first}")
        offsets[tile] = (round(col), round(row), w, h)
    width = max(c + w for c, _, w, _ in offsets.values())
    height = max(r + h for _, r, _, h in offsets.values())
    root = ET.Element("VRTDataset", rasterXSize=str(width), rasterYSize=str(height))
    ET.SubElement(root, "SRS", dataAxisToSRSAxisMapping="1,2").text = crs.to_wkt()
    ET.SubElement(root, "GeoTransform").text = (
        f"{west!r}, {res_x!r}, 0.0, {north!r}, 0.0, {res_y!r}")
    gdal_type = GDAL_TYPES.get(dtype)
    if gdal_type is None:
        raise ValueError(f"data type {dtype} of the tiles has no VRT name here")
    for b in range(1, count + 1):
        band = ET.SubElement(root, "VRTRasterBand", dataType=gdal_type, band=str(b))
        if b - 1 < len(band_names):
            ET.SubElement(band, "Description").text = band_names[b - 1]
        if nodata is not None:
            ET.SubElement(band, "NoDataValue").text = f"{nodata:g}"
        if b == 1 and legend:
            ET.SubElement(band, "ColorInterp").text = "Palette"
            table = ET.SubElement(band, "ColorTable")
            colors = {e.code: hex_to_rgba(e.color) for e in legend}
            for v in range(max(256 if dtype == "uint8" else 0, max(colors) + 1)):
                r, g, bl, a = colors.get(v, (0, 0, 0, 0))
                ET.SubElement(table, "Entry", c1=str(r), c2=str(g), c3=str(bl), c4=str(a))
        else:
            ET.SubElement(band, "ColorInterp").text = "Gray"
        for tile, (col, row, w, h) in offsets.items():
            src = ET.SubElement(band, "SimpleSource")
            if hrefs is not None:
                ET.SubElement(src, "SourceFilename", relativeToVRT="0").text = hrefs[tile]
            elif vrt_path is not None:
                rel = _relpath(sources[tile], vrt_path)
                ET.SubElement(src, "SourceFilename", relativeToVRT="1").text = \
                    Path(rel).as_posix()
            else:
                ET.SubElement(src, "SourceFilename", relativeToVRT="0").text = \
                    gdal_path(location(sources[tile]).resolve())
            ET.SubElement(src, "SourceBand").text = str(b)
            by, bx = info[tile][7]
            ET.SubElement(src, "SourceProperties", RasterXSize=str(w), RasterYSize=str(h),
                          DataType=gdal_type, BlockXSize=str(bx), BlockYSize=str(by))
            ET.SubElement(src, "SrcRect", xOff="0", yOff="0", xSize=str(w), ySize=str(h))
            ET.SubElement(src, "DstRect", xOff=str(col), yOff=str(row), xSize=str(w),
                          ySize=str(h))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def _relpath(source: Path | ObjPath, vrt_path: Path | ObjPath) -> str:
    """``source`` relative to the folder of ``vrt_path`` (both local, or both in one bucket)."""
    src, vrt = location(source).resolve(), location(vrt_path).resolve()
    if isinstance(src, ObjPath) and isinstance(vrt, ObjPath):
        return posixpath.relpath(src.key, vrt.parent.key or ".")
    if isinstance(src, ObjPath) or isinstance(vrt, ObjPath):
        raise ValueError(f"{source} and {vrt_path} are not in the same store")
    return os.path.relpath(src, vrt.parent)
