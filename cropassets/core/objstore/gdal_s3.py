"""GDAL's ``/vsis3/`` configuration from the same :class:`StoreOptions` as obstore's.

GDAL does not read ``AWS_ENDPOINT_URL``; it wants ``AWS_S3_ENDPOINT`` (host:port),
``AWS_HTTPS=NO`` for plain HTTP and ``AWS_VIRTUAL_HOSTING=FALSE`` for path-style requests
to a non-AWS endpoint. The options are set process-wide (``CPLSetConfigOption``), so every
thread (TiTiler's, Dask's) and every ``rasterio.Env`` sees them; ``rasterio.Env`` options
of a block still win for that block.

``CPL_VSIL_CURL_NON_CACHED`` names the bucket: GDAL's per-process cache of remote file
headers and blocks is skipped there, so a COG replaced by a new PUT is read anew on the
next open instead of mixing cached blocks of the old object with the new one.
"""

from __future__ import annotations

import threading

from cropassets.core.objstore.store_options import StoreOptions

_DONE: set[tuple[StoreOptions, str]] = set()
_LOCK = threading.Lock()


def gdal_options(options: StoreOptions, bucket: str | None = None) -> dict[str, str]:
    """GDAL configuration options reaching the store of ``options`` (``bucket``: not cached)."""
    out = {
        "AWS_REGION": options.region or "us-east-1",
        "AWS_HTTPS": "NO" if options.allow_http else "YES",
        "GDAL_HTTP_MAX_RETRY": str(options.max_retries),
        "GDAL_HTTP_RETRY_DELAY": "0.5",
        "GDAL_HTTP_CONNECTTIMEOUT": str(max(1, round(options.connect_timeout_s))),
        "GDAL_HTTP_TIMEOUT": str(max(1, round(options.timeout_s))),
    }
    if options.endpoint:
        out["AWS_S3_ENDPOINT"] = options.endpoint_host
        out["AWS_VIRTUAL_HOSTING"] = "FALSE"
    if options.access_key_id:
        out["AWS_ACCESS_KEY_ID"] = options.access_key_id
        out["AWS_SECRET_ACCESS_KEY"] = options.secret_access_key
        if options.session_token:
            out["AWS_SESSION_TOKEN"] = options.session_token
    if bucket:
        out["CPL_VSIL_CURL_NON_CACHED"] = f"/vsis3/{bucket}/"
    return out


def configure_gdal(options: StoreOptions, bucket: str) -> None:
    """Set :func:`gdal_options` process-wide, once per (options, bucket)."""
    key = (options, bucket)
    if key in _DONE:
        return
    from rasterio.env import get_gdal_config, set_gdal_config

    with _LOCK:
        opts = gdal_options(options, bucket)
        non_cached = str(get_gdal_config("CPL_VSIL_CURL_NON_CACHED") or "")
        prefixes = [p for p in non_cached.split(":") if p]
        if opts["CPL_VSIL_CURL_NON_CACHED"] not in prefixes:
            prefixes.append(opts["CPL_VSIL_CURL_NON_CACHED"])
        opts["CPL_VSIL_CURL_NON_CACHED"] = ":".join(prefixes)
        for name, value in opts.items():
            set_gdal_config(name, value)
        _DONE.add(key)
