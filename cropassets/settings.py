"""Deployment settings, read from environment variables in this one place.

=========================== ===================================== ==============================
variable                    meaning                               default
=========================== ===================================== ==============================
CROPASSETS_DATA             data root for every asset's output:   ``<repo>/data``
                            a folder, or ``s3://bucket/prefix``
                            (an S3-compatible object store)
CROPASSETS_WORLD            demo world folder (generated)         ``$CROPASSETS_DATA/demo``
                                                                  (``<repo>/data/demo`` when
                                                                  the data root is s3://)
AWS_ENDPOINT_URL_S3,        endpoint of the object store; an      (AWS)
AWS_ENDPOINT_URL            ``http://`` one is spoken to in plain
                            HTTP (a local test server)
AWS_REGION,                 region of the bucket                  ``us-east-1``
AWS_DEFAULT_REGION
AWS_ACCESS_KEY_ID,          static credentials (or                (none: an s3:// root
AWS_SECRET_ACCESS_KEY,      AWS_WEB_IDENTITY_TOKEN_FILE,          without any credential
AWS_SESSION_TOKEN           AWS_CONTAINER_CREDENTIALS_*_URI,      source is refused)
                            AWS_SKIP_SIGNATURE=true)
CROPASSETS_S3_RETRIES       retries of a transient object-store   ``5``
                            error (refused, timeout, 5xx)
CROPASSETS_S3_RETRY_TIMEOUT seconds after which retrying stops    ``60``
CROPASSETS_S3_TIMEOUT       connect, total seconds per request    ``5,300``
CROPASSETS_S3_ORPHAN_GRACE  seconds before an unpublished Zarr    ``3600``
                            version (killed writer) is deleted by
                            the next write of its partition
CROPASSETS_TILES            tile-grid JSON file                   ``<repo>/config/tiles.json``
CROPASSETS_SEASONS          seasons JSON file                     ``<repo>/config/seasons.json``
CROPASSETS_LABELS           folder of the per-season label files  ``$CROPASSETS_WORLD/labels``
CROPASSETS_STAC_URL         STAC API root URL; empty = serve the  (empty)
                            demo world's catalog on 127.0.0.1
CROPASSETS_CATALOG_PROFILE  asset naming profile (demo,           ``demo``
                            earth-search, planetary-computer)
CROPASSETS_MAX_CLOUD        max eo:cloud_cover (%) of S2 scenes   ``90``
CROPASSETS_TRAIN_MAX_STEPS  optimiser-step budget of each         (library default)
                            checkpoint's training
CROPASSETS_DASK_SCHEDULER   where dask graphs run: empty =        (empty)
                            threads in the run process;
                            ``local`` = a LocalCluster per run;
                            else a scheduler ``tcp://host:8786``
CROPASSETS_EXECUTOR         where a run's steps execute: empty =  (empty)
                            Dagster's default executor; ``k8s`` =
                            one Kubernetes Job per step
                            (:mod:`cropassets.deployment`)
CROPASSETS_TILER_URL        base URL of the tiler's web map, for  ``http://127.0.0.1:8080``
                            links in the Dagster UI
CROPASSETS_DAGSTER_URL      Dagster webserver that ``cropassets   ``http://127.0.0.1:3000``
                            backfill`` launches backfills on
CROPASSETS_TILE_CACHE_MB    the tiler's in-process cache of       ``256``
                            rendered tiles (MB; 0 = off)
CROPASSETS_TILE_DIR         folder the tiler also writes rendered (empty: none)
                            tiles to, once (e.g. data/tile_cache)
CROPASSETS_SENSOR           ``off`` (or 0, false): the new-week   ``on``
                            sensor starts stopped
CROPASSETS_SENSOR_INTERVAL  seconds between the sensor's ticks    ``120``
CROPASSETS_SENSOR_LOOKBACK  recent published weeks it re-checks   ``4``
CROPASSETS_SENSOR_REFRESH   seconds between late-arrival checks   ``3600``
CROPASSETS_GDAL_<OPTION>    GDAL option <OPTION> for reading      (none)
                            catalog assets, over the profile's
                            (e.g. ``CROPASSETS_GDAL_AWS_REQUEST_PAYER=requester``)
XDG_CACHE_HOME              per-user cache folder (the offline    ``~/.cache``
                            STAC server's DuckDB extension links
                            go under ``cropassets/``), see
                            :func:`cache_root`
=========================== ===================================== ==============================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cropassets.core.objstore.objpath import ObjPath
from cropassets.core.objstore.store_options import StoreOptions

REPO_ROOT = Path(__file__).resolve().parents[1]
GDAL_PREFIX = "CROPASSETS_GDAL_"
"""Environment variables ``CROPASSETS_GDAL_<OPTION>`` set GDAL option ``<OPTION>``."""


@dataclass(frozen=True)
class Settings:
    """Resolved settings (paths absolute)."""

    data_root: Path | ObjPath
    world_dir: Path
    tiles_file: Path
    seasons_file: Path
    stac_url: str
    catalog_profile: str
    max_cloud_cover: float
    dask_scheduler: str = ""
    executor: str = ""
    tiler_url: str = "http://127.0.0.1:8080"
    dagster_url: str = "http://127.0.0.1:3000"
    train_max_steps: int | None = None
    labels_dir: Path | None = None
    tile_cache_mb: float = 256.0
    tile_dir: Path | None = None
    gdal_overrides: dict[str, str] = field(default_factory=dict)
    sensor_on: bool = True
    sensor_interval_s: int = 120
    sensor_lookback_weeks: int = 4
    sensor_refresh_s: int = 3600
    object_store: StoreOptions = field(default_factory=StoreOptions)

    @property
    def labels(self) -> Path:
        """Folder of the per-season label files (default: the demo world's labels/)."""
        return self.labels_dir or self.world_dir / "labels"


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from ``env`` (default: ``os.environ``)."""
    env = dict(os.environ if env is None else env)
    store = object_store_options(env)
    raw_root = env.get("CROPASSETS_DATA", "").strip()
    data_root: Path | ObjPath
    if raw_root.startswith("s3://"):
        data_root = ObjPath.from_url(raw_root, store)
        local_root = REPO_ROOT / "data"
    elif "://" in raw_root:
        raise ValueError(f"CROPASSETS_DATA={raw_root!r}: a folder or an s3://bucket/prefix "
                         "URL is supported")
    else:
        data_root = local_root = Path(raw_root or REPO_ROOT / "data").resolve()
    return Settings(
        data_root=data_root,
        object_store=store,
        world_dir=Path(env.get("CROPASSETS_WORLD") or local_root / "demo").resolve(),
        tiles_file=Path(env.get("CROPASSETS_TILES") or REPO_ROOT / "config/tiles.json"),
        seasons_file=Path(env.get("CROPASSETS_SEASONS") or REPO_ROOT / "config/seasons.json"),
        stac_url=env.get("CROPASSETS_STAC_URL", ""),
        catalog_profile=env.get("CROPASSETS_CATALOG_PROFILE", "demo"),
        max_cloud_cover=float(env.get("CROPASSETS_MAX_CLOUD", "90")),
        dask_scheduler=env.get("CROPASSETS_DASK_SCHEDULER", "").strip(),
        executor=env.get("CROPASSETS_EXECUTOR", "").strip().lower(),
        tiler_url=(env.get("CROPASSETS_TILER_URL") or "http://127.0.0.1:8080").rstrip("/"),
        dagster_url=(env.get("CROPASSETS_DAGSTER_URL") or "http://127.0.0.1:3000").rstrip("/"),
        train_max_steps=_positive_int(env, "CROPASSETS_TRAIN_MAX_STEPS"),
        labels_dir=(Path(env["CROPASSETS_LABELS"]).resolve()
                    if env.get("CROPASSETS_LABELS") else None),
        tile_cache_mb=_megabytes(env, "CROPASSETS_TILE_CACHE_MB", 256.0),
        tile_dir=(Path(env["CROPASSETS_TILE_DIR"]).absolute()
                  if env.get("CROPASSETS_TILE_DIR", "").strip() else None),
        gdal_overrides={k[len(GDAL_PREFIX):]: v for k, v in env.items()
                        if k.startswith(GDAL_PREFIX) and len(k) > len(GDAL_PREFIX)},
        sensor_on=env.get("CROPASSETS_SENSOR", "on").lower() not in ("off", "0", "false"),
        sensor_interval_s=int(env.get("CROPASSETS_SENSOR_INTERVAL", "120")),
        sensor_lookback_weeks=int(env.get("CROPASSETS_SENSOR_LOOKBACK", "4")),
        sensor_refresh_s=int(env.get("CROPASSETS_SENSOR_REFRESH", "3600")),
    )


def object_store_options(env: Mapping[str, str]) -> StoreOptions:
    """How to reach an ``s3://`` data root: the standard AWS variables and ``CROPASSETS_S3_*``.

    Raises:
        ValueError: A ``CROPASSETS_S3_*`` value is not a number of the right range.
    """
    connect, _, total = env.get("CROPASSETS_S3_TIMEOUT", "").partition(",")
    return StoreOptions(
        endpoint=(env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or "").strip(),
        region=(env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "").strip(),
        access_key_id=env.get("AWS_ACCESS_KEY_ID", "").strip(),
        secret_access_key=env.get("AWS_SECRET_ACCESS_KEY", "").strip(),
        session_token=env.get("AWS_SESSION_TOKEN", "").strip(),
        other_credentials=bool(
            env.get("AWS_WEB_IDENTITY_TOKEN_FILE") or env.get(
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") or env.get(
                "AWS_CONTAINER_CREDENTIALS_FULL_URI") or env.get(
                "AWS_SKIP_SIGNATURE", "").lower() in ("1", "true", "yes")),
        max_retries=int(_number(env, "CROPASSETS_S3_RETRIES", 5, whole=True)),
        retry_timeout_s=_number(env, "CROPASSETS_S3_RETRY_TIMEOUT", 60.0),
        connect_timeout_s=_number({"t": connect}, "t", 5.0, name="CROPASSETS_S3_TIMEOUT"),
        timeout_s=_number({"t": total}, "t", 300.0, name="CROPASSETS_S3_TIMEOUT"),
        orphan_grace_s=_number(env, "CROPASSETS_S3_ORPHAN_GRACE", 3600.0),
    )


def _number(env: Mapping[str, str], key: str, default: float, whole: bool = False,
            name: str | None = None) -> float:
    """A number >= 0 from ``env[key]`` (unset or empty: ``default``)."""
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        value = float(int(raw)) if whole else float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        kind = "a whole number" if whole else "a number"
        raise ValueError(f"{name or key} must be {kind}, 0 or more, got {raw!r}")
    return value


def cache_root(env: Mapping[str, str] | None = None) -> Path:
    """The per-user cache folder: ``$XDG_CACHE_HOME``, else ``~/.cache``.

    Read on every call (not part of :class:`Settings`), so a test or a process that changes
    the variable is followed at once.

    Args:
        env: Variables to read (default: ``os.environ``).
    """
    env = os.environ if env is None else env
    xdg = env.get("XDG_CACHE_HOME")
    return Path(xdg) if xdg else Path.home() / ".cache"


def _megabytes(env: dict[str, str], name: str, default: float) -> float:
    """A size in MB, 0 or more (unset or empty: ``default``)."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):  # also NaN
        raise ValueError(f"{name} must be a size in MB, 0 or more (0 = off), got {raw!r}")
    return value


def _positive_int(env: dict[str, str], name: str) -> int | None:
    """An optional positive integer setting (unset or empty: ``None``)."""
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{name} must be a positive integer (optimiser steps), got {raw!r}")
    return value
