"""Per-catalog naming: which collections hold Sentinel-1/2 and what their assets are called.

The pipeline speaks canonical band names (``blue``, ``green``, ``red``, ``nir``, ``swir16``,
``scl``, ``vv``, ``vh``); a profile maps them to one catalog's collection ids and asset keys
and says what reading them needs. Pointing the platform at another catalog is a
configuration change: pick (or define) a profile.
"""

from __future__ import annotations

from dataclasses import dataclass, field

S2_BANDS = ("blue", "green", "red", "nir", "swir16")
"""Canonical Sentinel-2 reflectance bands the pipeline loads."""
S1_BANDS = ("vv", "vh")
"""Canonical Sentinel-1 polarisations the pipeline loads (linear backscatter)."""


@dataclass(frozen=True)
class CatalogProfile:
    """Collection ids, asset keys and access rules of one STAC catalog.

    Scale and offset are not a profile setting: each item says them, one rule per item
    (:func:`cropassets.core.stac.item_metadata.reflectance_scale_offset`).

    Attributes:
        name: Profile name.
        s2_collection: Collection id of Sentinel-2 L2A.
        s1_collection: Collection id of analysis-ready Sentinel-1 backscatter (RTC), or
            None where the catalog has none (``s1_note`` says why): the pipeline then runs
            on optical data and says so in every week's metadata.
        s2_assets: Canonical band -> asset key (includes ``"scl"``).
        s1_assets: Canonical polarisation -> asset key.
        sign_urls: Sign asset hrefs with the ``planetary_computer`` package before reading.
        gdal_env: GDAL options for reading this catalog's assets (unsigned S3, endpoints).
        s1_note: Why there is no ``s1_collection``.
        access: What reading needs (credentials, signing, requester-pays), for people.
    """

    name: str
    s2_collection: str
    s1_collection: str | None
    s2_assets: dict[str, str] = field(default_factory=dict)
    s1_assets: dict[str, str] = field(default_factory=dict)
    sign_urls: bool = False
    gdal_env: dict[str, str] = field(default_factory=dict)
    s1_note: str = ""
    access: str = ""


EARTH_SEARCH = CatalogProfile(
    name="earth-search",
    s2_collection="sentinel-2-c1-l2a",
    s1_collection=None,
    s2_assets={b: b for b in S2_BANDS} | {"scl": "scl"},
    gdal_env={"AWS_NO_SIGN_REQUEST": "YES", "AWS_REGION": "us-west-2"},
    s1_note=("Earth Search has no analysis-ready Sentinel-1: its sentinel-1-grd holds uint16 "
             "amplitude in radar geometry on a requester-pays bucket (s3://sentinel-s1-l1c), "
             "not calibrated, terrain-flattened backscatter. Use the planetary-computer "
             "profile (sentinel-1-rtc) for radar."),
    access="none: public COGs on s3://e84-earth-search-sentinel-data (unsigned reads)",
)
PLANETARY_COMPUTER = CatalogProfile(
    name="planetary-computer",
    s2_collection="sentinel-2-l2a",
    s1_collection="sentinel-1-rtc",
    s2_assets={"blue": "B02", "green": "B03", "red": "B04", "nir": "B08", "swir16": "B11",
               "scl": "SCL"},
    s1_assets={"vv": "vv", "vh": "vh"},
    sign_urls=True,
    access=("hrefs need a SAS token: the planetary-computer package signs them "
            "(pip install 'cropassets[planetary-computer]'; no account needed, "
            "PC_SDK_SUBSCRIPTION_KEY raises the rate limits)"),
)
CDSE = CatalogProfile(
    name="cdse",
    s2_collection="sentinel-2-l2a",
    s1_collection=None,
    s2_assets={"blue": "B02_10m", "green": "B03_10m", "red": "B04_10m", "nir": "B08_10m",
               "swir16": "B11_20m", "scl": "SCL_20m"},
    gdal_env={"AWS_S3_ENDPOINT": "eodata.dataspace.copernicus.eu", "AWS_HTTPS": "YES",
              "AWS_VIRTUAL_HOSTING": "FALSE"},
    s1_note=("the Copernicus Data Space STAC has Sentinel-1 GRD/SLC, not terrain-corrected "
             "backscatter; use the planetary-computer profile for radar"),
    access=("S3 credentials of a Copernicus Data Space account (AWS_ACCESS_KEY_ID / "
            "AWS_SECRET_ACCESS_KEY from its S3 key manager); assets are JPEG 2000 in "
            "s3://eodata"),
)
DEMO = CatalogProfile(
    name="demo",
    s2_collection="sentinel-2-l2a",
    s1_collection="sentinel-1-rtc",
    s2_assets=EARTH_SEARCH.s2_assets,
    s1_assets={"vv": "vv", "vh": "vh"},
    access="none: the synthetic world's COGs on local disk",
)
PROFILES = {p.name: p for p in (DEMO, EARTH_SEARCH, PLANETARY_COMPUTER, CDSE)}


def get_profile(name: str) -> CatalogProfile:
    """Look up a profile by name, with an error listing the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown catalog profile {name!r}; known: {sorted(PROFILES)}") from None
