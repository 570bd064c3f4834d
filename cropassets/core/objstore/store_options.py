"""How to reach an object store: endpoint, credentials, retry budget (no I/O, no env here).

:func:`cropassets.settings.load_settings` builds :class:`StoreOptions` from the standard AWS
variables (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ...) and ``CROPASSETS_S3_*``; the
object travels with every :class:`~cropassets.core.objstore.objpath.ObjPath`, so a Dask
worker that unpickles a path can open the store without reading its own environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit


class ObjectStoreError(OSError):
    """An object-store request failed for good; the message names the ``s3://`` URL.

    ``kind`` says why: ``unreachable`` (connection refused / timed out / 5xx after the
    bounded retries), ``denied`` (403 / 401: read-only or wrong credentials),
    ``no-bucket``, ``no-credentials``, ``error`` (anything else).
    """

    def __init__(self, url: str, kind: str, detail: str) -> None:
        super().__init__(f"{url}: {detail}")
        self.url = url
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True)
class StoreOptions:
    """Connection options of an S3-compatible store (picklable; secrets kept out of repr).

    Attributes:
        endpoint: Endpoint URL (``http://127.0.0.1:9000``); empty = AWS's own.
        region: Region name (``us-east-1`` when empty).
        access_key_id / secret_access_key / session_token: Static credentials.
        other_credentials: The environment names another credential source that the
            client resolves itself (web identity token file, container credentials, or
            anonymous access with ``AWS_SKIP_SIGNATURE``).
        max_retries: Retries of a transient error (connection refused or reset, timeout,
            5xx) with exponential backoff; 0 = none.
        retry_timeout_s: Give up retrying after this long.
        connect_timeout_s / timeout_s: Per-request connect and total timeouts.
        orphan_grace_s: Zarr versions that never became current (a writer killed
            mid-write) are deleted by the next write of that partition once older than
            this; a concurrent writer younger than it is left alone.
    """

    endpoint: str = ""
    region: str = ""
    access_key_id: str = field(default="", repr=False)
    secret_access_key: str = field(default="", repr=False)
    session_token: str = field(default="", repr=False)
    other_credentials: bool = False
    max_retries: int = 5
    retry_timeout_s: float = 60.0
    connect_timeout_s: float = 5.0
    timeout_s: float = 300.0
    orphan_grace_s: float = 3600.0

    @property
    def allow_http(self) -> bool:
        """Plain HTTP only when the endpoint says ``http://`` (a local test server)."""
        return self.endpoint.lower().startswith("http://")

    @property
    def has_credentials(self) -> bool:
        """Static keys are set, or the environment names another credential source."""
        return bool(self.access_key_id and self.secret_access_key) or self.other_credentials

    @property
    def endpoint_host(self) -> str:
        """``host:port`` of the endpoint (GDAL's ``AWS_S3_ENDPOINT``); empty for AWS."""
        if not self.endpoint:
            return ""
        parts = urlsplit(self.endpoint if "://" in self.endpoint else f"https://{self.endpoint}")
        return parts.netloc + parts.path.rstrip("/")
