"""What a real STAC item says about its data: scale/offset, CRS, dates, S1 product kind.

The public catalogs describe the same Sentinel products in different ways (checked against
the real items of Earth Search, Planetary Computer and CDSE that the tests read through
``CROPASSETS_REAL_STAC``):

* Earth Search ``sentinel-2-c1-l2a``: STAC 1.0 ``raster:bands`` per asset (scale 1e-4,
  offset -0.1 on every reflectance band), ``proj:epsg`` in the properties.
* Earth Search ``sentinel-2-l2a`` (the old collection): ``raster:bands`` too, but on items
  of processing baseline >= 04.00 the offset -0.1 is there *and* the property
  ``earthsearch:boa_offset_applied: true`` says the offset was already applied to the
  numbers; the maintainers call the flag the truth (Element84/earth-search#9), so it wins.
* Planetary Computer ``sentinel-2-l2a``: no raster extension at all; the offset follows
  from ``s2:processing_baseline`` (-0.1 from 04.00, ESA's BOA_ADD_OFFSET of -1000 DN).
* Copernicus Data Space ``sentinel-2-l2a``: STAC 1.1, asset-level ``raster:scale`` /
  ``raster:offset`` and ``proj:code`` (``"EPSG:32632"``); the baseline is
  ``processing:version``.
* Planetary Computer Sentinel-1 ``start_datetime`` is ``"2024-04-19 04:59:04.220006+00:00"``
  (not RFC 3339); ``sentinel-1-rtc`` items say ``sar:product_type: "GRD"``: the terrain
  correction is only in the collection id and the ``_rtc`` id suffix.

One rule per item (:func:`reflectance_scale_offset`), never a mix of two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pandas as pd

__all__ = ["ScaleOffset", "UnsupportedScene", "asset_crs", "item_datetime",
           "item_interval", "processing_baseline", "raster_band", "reflectance_scale_offset",
           "s1_product_kind"]

S2_SCALE = 1e-4
"""Sentinel-2 L2A quantification: DN 10000 = reflectance 1."""
S2_BOA_OFFSET = -0.1
"""BOA_ADD_OFFSET (-1000 DN) of processing baseline >= 04.00, in reflectance units."""
EARTH_SEARCH_FLAG = "earthsearch:boa_offset_applied"


class UnsupportedScene(ValueError):
    """A scene the pipeline must not use as it is (e.g. Sentinel-1 GRD digital numbers)."""


@dataclass(frozen=True)
class ScaleOffset:
    """``reflectance = DN * scale + offset`` for one asset, and the rule that decided it."""

    scale: float
    offset: float
    rule: str


def processing_baseline(item: dict[str, Any]) -> tuple[int, int] | None:
    """Sentinel-2 processing baseline as (major, minor), or None when the item has none.

    Read from ``s2:processing_baseline`` (Earth Search, Planetary Computer), then
    ``processing:version`` (Copernicus Data Space), then the ``_N0500_`` part of the id.
    """
    props = item.get("properties", {})
    for key in ("s2:processing_baseline", "processing:version"):
        value = props.get(key)
        if value is not None:
            match = re.fullmatch(r"\s*(\d+)\.(\d+)\s*", str(value))
            if match:
                return int(match[1]), int(match[2])
    match = re.search(r"_N(\d{2})(\d{2})_", str(item.get("id", "")))
    return (int(match[1]), int(match[2])) if match else None


def _baseline_offset(item: dict[str, Any]) -> float | None:
    pb = processing_baseline(item)
    if pb is None:
        return None
    return S2_BOA_OFFSET if pb >= (4, 0) else 0.0


def raster_band(asset: dict[str, Any]) -> dict[str, Any]:
    """The asset's first ``raster:bands`` entry (STAC 1.0 raster extension), ``{}`` if none."""
    return (asset.get("raster:bands") or [{}])[0] or {}


def _declared(asset: dict[str, Any]) -> tuple[float | None, float | None]:
    band = raster_band(asset)
    scale = band.get("scale", asset.get("raster:scale"))
    offset = band.get("offset", asset.get("raster:offset"))
    return (None if scale is None else float(scale)), (None if offset is None else float(offset))


def reflectance_scale_offset(item: dict[str, Any], asset_key: str) -> ScaleOffset:
    """Scale and offset that turn a Sentinel-2 L2A asset's DN into surface reflectance.

    Rules, the first that applies:

    1. ``earthsearch:boa_offset_applied`` present (Earth Search's old collection): true
       means the offset is already in the numbers (offset 0, whatever ``raster:bands``
       says); false means it is not: -0.1 from baseline 04.00, else 0.
    2. The asset declares scale and offset (``raster:bands`` of STAC 1.0, or asset-level
       ``raster:scale`` / ``raster:offset`` of STAC 1.1): those.
    3. It declares a scale only, or nothing: the declared scale (else 1e-4) and the offset
       of the processing baseline (-0.1 from 04.00, else 0).

    Raises:
        KeyError: The item has no asset ``asset_key``.
        ValueError: Nothing in the item decides the offset (no flag, no declared offset,
            no processing baseline).
    """
    item_id = item.get("id", "?")
    try:
        asset = item["assets"][asset_key]
    except KeyError:
        raise KeyError(f"item {item_id}: no asset {asset_key!r} (it has "
                       f"{sorted(item.get('assets', {}))})") from None
    scale, offset = _declared(asset)
    props = item.get("properties", {})
    if EARTH_SEARCH_FLAG in props:
        applied = bool(props[EARTH_SEARCH_FLAG])
        base = _baseline_offset(item)
        return ScaleOffset(scale if scale is not None else S2_SCALE,
                           0.0 if applied or base is None else base,
                           f"{EARTH_SEARCH_FLAG}={str(applied).lower()}")
    if scale is not None and offset is not None:
        kind = "raster:bands" if asset.get("raster:bands") else "raster:scale/raster:offset"
        return ScaleOffset(scale, offset, kind)
    base = _baseline_offset(item)
    if base is None:
        raise ValueError(
            f"item {item_id}, asset {asset_key!r}: cannot tell the reflectance offset: no "
            f"{EARTH_SEARCH_FLAG}, no declared offset and no processing baseline "
            "(s2:processing_baseline, processing:version or _Nxxxx_ in the id)")
    pb = processing_baseline(item)
    assert pb is not None  # base is not None only when the item has a baseline
    return ScaleOffset(scale if scale is not None else S2_SCALE, base,
                       f"processing baseline {pb[0]:02d}.{pb[1]:02d}")


def asset_crs(item: dict[str, Any], asset_key: str | None = None) -> str | None:
    """CRS of an asset as ``"EPSG:<code>"`` (or another ``proj:code``), None if undeclared.

    The asset's own ``proj:code`` / ``proj:epsg`` win over the item's properties; a null
    ``proj:code`` (CDSE thumbnails) counts as undeclared.
    """
    places = []
    if asset_key is not None:
        places.append(item.get("assets", {}).get(asset_key, {}))
    places.append(item.get("properties", {}))
    for where in places:
        code = where.get("proj:code")
        if code:
            return str(code)
        epsg = where.get("proj:epsg")
        if epsg is not None:
            return f"EPSG:{int(epsg)}"
    return None


def _timestamp(value: Any, item_id: str, key: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(str(value))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"item {item_id}: {key} {value!r} is not a date-time") from exc
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def item_interval(item: dict[str, Any]) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(start, end) of the acquisition in UTC.

    ``start_datetime``/``end_datetime``, else ``datetime`` for both. Accepts RFC 3339 and
    the space-separated form of Planetary Computer's Sentinel-1 items.
    """
    props = item.get("properties", {})
    item_id = str(item.get("id", "?"))
    if props.get("start_datetime") and props.get("end_datetime"):
        return (_timestamp(props["start_datetime"], item_id, "start_datetime"),
                _timestamp(props["end_datetime"], item_id, "end_datetime"))
    if not props.get("datetime"):
        raise ValueError(f"item {item_id}: neither datetime nor start/end_datetime")
    ts = _timestamp(props["datetime"], item_id, "datetime")
    return ts, ts


def item_datetime(item: dict[str, Any]) -> pd.Timestamp:
    """Acquisition time in UTC: ``datetime``, else the middle of start/end."""
    props = item.get("properties", {})
    if props.get("datetime"):
        return _timestamp(props["datetime"], str(item.get("id", "?")), "datetime")
    start, end = item_interval(item)
    return start + (end - start) / 2


def s1_product_kind(item: dict[str, Any]) -> str:
    """Sentinel-1 product kind: ``"RTC"``, ``"GRD"`` or the ``sar:product_type``.

    ``"RTC"`` is radiometrically terrain-corrected backscatter; other kinds (``"SLC"``,
    ...) are returned as the item names them.

    Planetary Computer's RTC items say ``sar:product_type: "GRD"``: the collection id
    (``sentinel-1-rtc``) or the ``_rtc`` id suffix decides.
    """
    collection = str(item.get("collection", ""))
    if "rtc" in collection.lower() or str(item.get("id", "")).lower().endswith("_rtc"):
        return "RTC"
    kind = item.get("properties", {}).get("sar:product_type")
    if kind is None:
        match = re.search(r"_(GRD|SLC|OCN)[HMF]?_", str(item.get("id", "")))
        kind = match[1] if match else "unknown"
    return str(kind).upper()
