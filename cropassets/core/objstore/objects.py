"""Single objects on an S3-compatible store: put, get, list, delete, with clear errors.

Every function takes a full ``s3://bucket/key`` URL and :class:`S3Options` (endpoint,
credentials, retries; built from the environment by ``cropassets.settings``). A PUT of one
object is atomic on S3 (a reader sees the old object or the new one), so these functions are
the object-store form of the local ``write_bytes_atomic``. Transient failures (connection
refused, timeouts, 5xx) are retried by the client with exponential backoff, boundedly
(``S3Options.max_retries`` within ``retry_timeout_s``); then, and for permission, credential
and missing-bucket errors at once, :class:`ObjectStoreError` names the URL and the cause.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from obstore.store import BackoffConfig, RetryConfig

S3_URL = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])(?:/(?P<key>.*))?$")


class ObjectStoreError(OSError):
    """An object store refused or could not be reached; the message names the URL."""


@dataclass(frozen=True)
class S3Options:
    """How to reach an S3-compatible store.

    Attributes:
        endpoint: ``http(s)://host:port`` of an S3-compatible server; empty: AWS.
        region: Region name (``us-east-1`` when unset).
        access_key_id, secret_access_key: Credentials; both empty: anonymous requests.
        allow_http: Allow a plain ``http://`` endpoint (local servers).
        max_retries: Retries of a transient failure before giving up.
        retry_timeout_s: Upper bound of the time spent retrying one request, seconds.
        connect_timeout_s: TCP connect timeout of one attempt, seconds.
    """

    endpoint: str = ""
    region: str = "us-east-1"
    access_key_id: str = ""
    secret_access_key: str = ""
    allow_http: bool = False
    max_retries: int = 5
    retry_timeout_s: float = 30.0
    connect_timeout_s: float = 5.0


def is_object_url(location: object) -> bool:
    """True for an ``s3://`` URL (an object-store data root or a path under one)."""
    return isinstance(location, str) and location.startswith("s3://")


def split_url(url: str) -> tuple[str, str]:
    """``(bucket, key)`` of ``s3://bucket/key``; the key without leading/trailing slashes.

    Raises:
        ValueError: not an ``s3://`` URL with a valid bucket name.
    """
    m = S3_URL.match(url)
    if not m:
        raise ValueError(f"{url!r} is not an object-store URL of the form s3://bucket/prefix "
                         "(bucket: 3-63 lower-case letters, digits, dots or hyphens)")
    return m["bucket"], (m["key"] or "").strip("/")


def join_url(url: str, *parts: str) -> str:
    """``url`` with ``parts`` appended, one slash between each."""
    out = url.rstrip("/")
    for p in parts:
        out += "/" + p.strip("/")
    return out


@lru_cache(maxsize=256)
def bucket_store(bucket: str, options: S3Options, prefix: str = "") -> Any:
    """An obstore ``S3Store`` for one bucket, keys under ``prefix`` (cached; picklable)."""
    from obstore.store import S3Store

    config: dict[str, Any] = {"region": options.region}
    if options.endpoint:
        config["endpoint"] = options.endpoint
    if options.access_key_id:
        config |= {"access_key_id": options.access_key_id,
                   "secret_access_key": options.secret_access_key}
    else:
        config["skip_signature"] = True
    backoff: BackoffConfig = {
        "init_backoff": dt.timedelta(milliseconds=100),
        "max_backoff": dt.timedelta(seconds=min(5.0, options.retry_timeout_s)), "base": 2.0}
    retry: RetryConfig = {"max_retries": options.max_retries,
                          "retry_timeout": dt.timedelta(seconds=options.retry_timeout_s),
                          "backoff": backoff}
    return S3Store(bucket, prefix=prefix or None, **config,
                   client_options={"allow_http": options.allow_http,
                                   "connect_timeout": f"{options.connect_timeout_s}s",
                                   "timeout": "120s"},
                   retry_config=retry)


def describe_error(url: str, exc: BaseException, options: S3Options) -> ObjectStoreError:
    """An :class:`ObjectStoreError` naming ``url`` and what went wrong with it."""
    from obstore import exceptions as ox

    text = str(exc)
    where = f" (endpoint {options.endpoint})" if options.endpoint else ""
    status = re.search(r"status code: (\d{3})", text)
    if "NoSuchBucket" in text:
        why = f"bucket {split_url(url)[0]!r} does not exist{where}"
    elif isinstance(exc, ox.PermissionDeniedError | ox.UnauthenticatedError) or any(
            code in text for code in ("AccessDenied", "InvalidAccessKeyId",
                                      "SignatureDoesNotMatch", "403 Forbidden")):
        who = ("no credentials are set (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) and "
               "anonymous access was refused" if not options.access_key_id else
               "check the credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) and that "
               "they may read and write here (a read-only key cannot write)")
        why = f"access denied: {who}{where}"
    elif "retries" in text and status:
        why = (f"the store answered HTTP {status[1]}{where} after {options.max_retries} "
               f"retries within {options.retry_timeout_s:g} s")
    elif "retries" in text:
        why = (f"the store could not be reached{where} after {options.max_retries} retries "
               f"within {options.retry_timeout_s:g} s")
    else:
        why = text.splitlines()[0][:300]
    return ObjectStoreError(f"object store {url}: {why}")


def _call(url: str, options: S3Options, fn: Any, *args: Any) -> Any:
    from obstore import exceptions as ox

    try:
        return fn(*args)
    except FileNotFoundError as exc:
        if "NoSuchBucket" in str(exc):
            raise describe_error(url, exc, options) from None
        raise FileNotFoundError(f"{url} does not exist") from None
    except (ox.BaseError, OSError) as exc:
        raise describe_error(url, exc, options) from None


def put_bytes(url: str, data: bytes, options: S3Options) -> int:
    """Write ``data`` as one object (atomic: readers see the old object or this one)."""
    import obstore

    bucket, key = split_url(url)
    _call(url, options, obstore.put, bucket_store(bucket, options), key, data)
    return len(data)


def get_bytes(url: str, options: S3Options) -> bytes:
    """The bytes of one object. Raises FileNotFoundError naming ``url`` when absent."""
    import obstore

    bucket, key = split_url(url)
    result = _call(url, options, obstore.get, bucket_store(bucket, options), key)
    return bytes(_call(url, options, result.bytes))


def exists(url: str, options: S3Options) -> bool:
    """Whether one object exists at ``url``."""
    import obstore

    bucket, key = split_url(url)
    try:
        _call(url, options, obstore.head, bucket_store(bucket, options), key)
    except FileNotFoundError:
        return False
    return True


def list_keys(url: str, options: S3Options) -> Iterator[str]:
    """Keys (full ``s3://`` URLs) of every object under the prefix ``url/``."""
    import obstore

    bucket, key = split_url(url)
    stream = _call(url, options, obstore.list, bucket_store(bucket, options), key + "/")
    try:
        for batch in stream:
            for meta in batch:
                yield f"s3://{bucket}/{meta['path']}"
    except Exception as exc:
        raise describe_error(url, exc, options) from None


def delete_prefix(url: str, options: S3Options) -> int:
    """Delete every object under ``url/``; returns how many."""
    import obstore

    bucket, _ = split_url(url)
    keys = [split_url(k)[1] for k in list_keys(url, options)]
    for i in range(0, len(keys), 1000):
        _call(url, options, obstore.delete, bucket_store(bucket, options), keys[i:i + 1000])
    return len(keys)


def put_file(path: str | os.PathLike[str], url: str, options: S3Options) -> int:
    """Upload a finished local file (e.g. a validated COG) as one object; returns its bytes.

    One PUT (multipart for large files, completed in one step), so readers of ``url`` see
    the old object or this one, never a part: write and validate locally, then publish.
    """
    import obstore

    bucket, key = split_url(url)
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        _call(url, options, obstore.put, bucket_store(bucket, options), key, fh)
    return size


def gdal_env(options: S3Options) -> dict[str, str]:
    """GDAL configuration that lets rasterio open ``s3://`` URLs (``/vsis3/``) of this store.

    For ``rasterio.Env(**gdal_env(options))``: endpoint without scheme and path-style
    addressing for an S3-compatible server, HTTPS unless the endpoint is ``http://``,
    unsigned requests when no key is set, and no directory listing on open. The keys
    themselves are not in it (rasterio refuses them as options): GDAL (or rasterio's boto3
    session) reads ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` from the process
    environment, where :func:`cropassets.settings.s3_options` read them too.
    """
    env = {"AWS_REGION": options.region, "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
           "GDAL_HTTP_MAX_RETRY": str(options.max_retries), "GDAL_HTTP_RETRY_DELAY": "0.5"}
    if options.endpoint:
        scheme, _, host = options.endpoint.partition("://")
        env |= {"AWS_S3_ENDPOINT": host or scheme, "AWS_VIRTUAL_HOSTING": "FALSE",
                "AWS_HTTPS": "NO" if scheme == "http" else "YES"}
    if not options.access_key_id:
        env["AWS_NO_SIGN_REQUEST"] = "YES"
    return env
