"""Object-store requests through obstore, with clear errors naming the ``s3://`` URL.

Stores are built once per process and (bucket, prefix, options). Transient errors
(connection refused or reset, timeouts, 5xx) are retried by obstore's client with
exponential backoff, bounded by ``StoreOptions.max_retries`` and ``retry_timeout_s``;
what still fails, and every permanent error (403, missing bucket, missing credentials), is
raised at once as :class:`ObjectStoreError` naming the URL. A missing object is a
:class:`FileNotFoundError` naming the URL.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from cropassets.core.objstore.store_options import ObjectStoreError, StoreOptions

_STORES: dict[tuple[str, str, StoreOptions], Any] = {}
_LOCK = threading.Lock()


def url_of(bucket: str, key: str = "") -> str:
    """``s3://bucket/key``."""
    return f"s3://{bucket}/{key}" if key else f"s3://{bucket}"


def store(bucket: str, options: StoreOptions, prefix: str = "") -> Any:
    """The obstore ``S3Store`` of ``bucket`` (keys relative to ``prefix``), built once.

    Raises:
        ObjectStoreError: No credentials are configured (kind ``no-credentials``).
    """
    key = (bucket, prefix, options)
    hit = _STORES.get(key)
    if hit is not None:
        return hit
    if not options.has_credentials:
        raise ObjectStoreError(url_of(bucket, prefix), "no-credentials", (
            "no credentials for the object store: set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or AWS_WEB_IDENTITY_TOKEN_FILE, container credentials, "
            "or AWS_SKIP_SIGNATURE=true for a public bucket)"))
    from obstore.store import S3Store

    config: dict[str, Any] = {"region": options.region or "us-east-1"}
    if options.endpoint:
        config["endpoint"] = options.endpoint
        config["virtual_hosted_style_request"] = False
    if options.access_key_id:
        config["access_key_id"] = options.access_key_id
        config["secret_access_key"] = options.secret_access_key
        if options.session_token:
            config["session_token"] = options.session_token
    client = {"allow_http": options.allow_http,
              "connect_timeout": timedelta(seconds=options.connect_timeout_s),
              "timeout": timedelta(seconds=options.timeout_s)}
    retry = {"max_retries": options.max_retries,
             "retry_timeout": timedelta(seconds=options.retry_timeout_s),
             "backoff": {"init_backoff": timedelta(milliseconds=100),
                         "max_backoff": timedelta(seconds=10), "base": 2}}
    made = S3Store(bucket, prefix=prefix or None, config=config,  # type: ignore[arg-type]
                   client_options=client, retry_config=retry)  # type: ignore[arg-type]
    with _LOCK:
        _STORES[key] = made
    return made


def translate(err: BaseException, bucket: str, key: str, action: str) -> BaseException:
    """The error to raise for an obstore failure of ``action`` on ``s3://bucket/key``."""
    url = url_of(bucket, key)
    text = str(err)
    first = text.strip().splitlines()[0] if text.strip() else type(err).__name__
    if isinstance(err, ObjectStoreError):  # e.g. no credentials: name the object asked for
        return ObjectStoreError(url, err.kind, err.detail)
    if "NoSuchBucket" in text:
        return ObjectStoreError(url, "no-bucket", f"{action} failed: bucket {bucket!r} does "
                                                  "not exist")
    if isinstance(err, FileNotFoundError):
        return FileNotFoundError(f"{url} does not exist")
    if isinstance(err, PermissionError) or any(
            s in text for s in ("403 Forbidden", "AccessDenied", "401 Unauthorized",
                                "InvalidAccessKeyId", "SignatureDoesNotMatch")):
        return ObjectStoreError(url, "denied", f"{action} refused by the object store (read-only "
                                               f"or wrong credentials): {first[:300]}")
    if "retries" in text or "error sending request" in text or "timed out" in text:
        return ObjectStoreError(url, "unreachable", f"{action} failed, object store "
                                                    f"unreachable: {first[:300]}")
    return ObjectStoreError(url, "error", f"{action} failed: {first[:300]}")


def is_store_error(err: BaseException) -> bool:
    """``err`` comes from obstore (raised through zarr, say) and is not translated yet."""
    return type(err).__module__.split(".")[0] == "obstore" and not isinstance(
        err, ObjectStoreError)


def _call(fn: Any, bucket: str, key: str, action: str, options: StoreOptions,
          *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(store(bucket, options), key, *args, **kwargs)
    except Exception as err:  # obstore raises its own classes and builtins
        raise translate(err, bucket, key, action) from err


def put(bucket: str, key: str, data: bytes | Path, options: StoreOptions) -> None:
    """One PUT of ``data`` (bytes, or a local file streamed): atomic for readers."""
    import obstore

    _call(obstore.put, bucket, key, "write", options, data)


def put_if_absent(bucket: str, key: str, data: bytes, options: StoreOptions) -> bool:
    """PUT only if no object is at ``key`` (``If-None-Match: *``); False if one is."""
    import obstore
    from obstore.exceptions import AlreadyExistsError, PreconditionError

    try:
        obstore.put(store(bucket, options), key, data, mode="create")
    except (AlreadyExistsError, PreconditionError):
        return False
    except Exception as err:
        raise translate(err, bucket, key, "write") from err
    return True


def get(bucket: str, key: str, options: StoreOptions) -> bytes:
    """The object's bytes (FileNotFoundError naming the URL if there is none)."""
    import obstore

    result = _call(obstore.get, bucket, key, "read", options)
    return bytes(result.bytes())


def head(bucket: str, key: str, options: StoreOptions) -> dict[str, Any] | None:
    """``{"size", "last_modified", "e_tag"}`` of the object, or None if there is none."""
    import obstore

    try:
        return dict(_call(obstore.head, bucket, key, "read", options))
    except FileNotFoundError:
        return None


def list_objects(bucket: str, prefix: str, options: StoreOptions) -> Iterator[dict[str, Any]]:
    """Every object under ``prefix/`` (recursively): dicts with ``path`` (full key), ``size``."""
    import obstore

    pre = prefix.rstrip("/") + "/" if prefix else ""
    try:
        for batch in obstore.list(store(bucket, options), prefix=pre or None):
            yield from (dict(m) for m in batch)
    except Exception as err:
        raise translate(err, bucket, prefix, "list") from err


def delete(bucket: str, keys: list[str], options: StoreOptions) -> None:
    """Delete ``keys`` (missing ones are fine)."""
    import obstore

    for start in range(0, len(keys), 500):
        part = keys[start:start + 500]
        try:
            obstore.delete(store(bucket, options), part)
        except FileNotFoundError:
            pass
        except Exception as err:
            raise translate(err, bucket, part[0], "delete") from err
