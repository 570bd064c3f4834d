"""Per-catalog naming: which collections hold Sentinel-1/2 and what their assets are called.

The pipeline speaks canonical band names (``blue``, ``green``, ``red``, ``nir``, ``swir16``,
``scl``, ``vv``, ``vh``); a profile maps them to one catalog's collection ids and asset keys
and says where the reflectance scale/offset come from. Pointing the platform at another
catalog is a configuration change: pick (or define) a profile.
"""

from __future__ import annotations

from dataclasses import dataclass, field

S2_BANDS = ("blue", "green", "red", "nir", "swir16")
"""Canonical Sentinel-2 reflectance bands the pipeline loads."""
S1_BANDS = ("vv", "vh")
"""Canonical Sentinel-1 polarisations the pipeline loads (linear backscatter)."""


@dataclass(frozen=True)
class CatalogProfile:
    """Collection ids, asset keys and scaling rules of one STAC catalog.

    Attributes:
        name: Profile name.
        s2_collection: Collection id of Sentinel-2 L2A.
        s1_collection: Collection id of Sentinel-1 (radiometrically terrain corrected preferred).
        s2_assets: Canonical band -> asset key (includes ``"scl"``).
        s1_assets: Canonical polarisation -> asset key.
        s2_offset_from_baseline: When an asset carries no ``raster:bands`` scale/offset, derive
            them from ``s2:processing_baseline`` (scale 1e-4, offset -0.1 from baseline 04.00).
        sign_urls: Sign asset hrefs with ``planetary_computer`` before reading.
    """

    name: str
    s2_collection: str
    s1_collection: str
    s2_assets: dict[str, str] = field(default_factory=dict)
    s1_assets: dict[str, str] = field(default_factory=dict)
    s2_offset_from_baseline: bool = True
    sign_urls: bool = False


EARTH_SEARCH = CatalogProfile(
    name="earth-search",
    s2_collection="sentinel-2-l2a",
    s1_collection="sentinel-1-grd",
    s2_assets={b: b for b in S2_BANDS} | {"scl": "scl"},
    s1_assets={"vv": "vv", "vh": "vh"},
)
PLANETARY_COMPUTER = CatalogProfile(
    name="planetary-computer",
    s2_collection="sentinel-2-l2a",
    s1_collection="sentinel-1-rtc",
    s2_assets={"blue": "B02", "green": "B03", "red": "B04", "nir": "B08", "swir16": "B11",
               "scl": "SCL"},
    s1_assets={"vv": "vv", "vh": "vh"},
    sign_urls=True,
)
DEMO = CatalogProfile(
    name="demo",
    s2_collection="sentinel-2-l2a",
    s1_collection="sentinel-1-rtc",
    s2_assets=EARTH_SEARCH.s2_assets,
    s1_assets={"vv": "vv", "vh": "vh"},
)
PROFILES = {p.name: p for p in (DEMO, EARTH_SEARCH, PLANETARY_COMPUTER)}


def get_profile(name: str) -> CatalogProfile:
    """Look up a profile by name, with an error listing the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown catalog profile {name!r}; known: {sorted(PROFILES)}") from None
