"""Search a STAC API (the local one, Earth Search, Planetary Computer) with pystac-client.

One function, :func:`search_items`, with the semantics the pipeline needs:

* the time window is half-open, ``[start, end)``: an item acquired exactly at ``end`` belongs
  to the next window (weeks tile the season without overlap);
* a cloud-cover limit is sent as a CQL2-JSON ``filter`` (``query`` is ignored by some
  servers), and only to collections whose items carry ``eo:cloud_cover`` (a SAR collection
  filtered on it would return nothing);
* connection errors, timeouts, HTTP 429 and HTTP 5xx are retried a bounded number of times
  with exponential backoff; then, or at once on any other HTTP 4xx, :class:`StacApiError`
  is raised naming the URL and the last error.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pystac
from pystac_client import Client
from pystac_client.exceptions import APIError
from pystac_client.stac_api_io import StacApiIO
from pystac_client.warnings import PystacClientWarning
from urllib3 import Retry

CLOUD_COVER = "eo:cloud_cover"
RETRY_STATUS = frozenset({429, *range(500, 600)})
"""HTTP statuses that are retried: 429 (rate limited) and every 5xx."""

CloudLimit = float | Mapping[str, float | None] | None
"""A cloud-cover limit (percent): one number, or one per collection id."""

ItemModifier = Callable[[pystac.Item], Any]
"""Called on each found item before it is converted to a dict (e.g. URL signing)."""


class StacApiError(RuntimeError):
    """The STAC API could not be reached or answered with an error."""


class _DoublingRetry(Retry):
    """urllib3 ``Retry`` that sleeps ``backoff_factor * 2**(n-1)`` before the n-th retry.

    Stock urllib3 does not sleep before the first retry; this schedule makes the total wait
    before giving up exactly ``backoff_factor * (2**retries - 1)``.
    """

    def get_backoff_time(self) -> float:
        """Seconds to sleep before the next retry."""
        n = len(self.history)
        if n == 0:
            return 0.0
        return float(min(self.backoff_max, self.backoff_factor * 2 ** (n - 1)))


def backoff_schedule(retries: int, backoff_s: float) -> list[float]:
    """Sleeps (seconds) before each of ``retries`` retries: ``backoff_s * 2**k``."""
    return [backoff_s * 2**k for k in range(retries)]


def _stac_io(retries: int, backoff_s: float, timeout_s: float) -> StacApiIO:
    """pystac-client IO with bounded retries on connection errors, 429 and 5xx."""
    retry = _DoublingRetry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        other=retries,
        redirect=5,
        backoff_factor=backoff_s,
        backoff_max=max(60.0, backoff_s * 2 ** max(retries - 1, 0)),
        status_forcelist=RETRY_STATUS,
        allowed_methods=None,  # searches are POSTed; they are safe to repeat
        raise_on_status=False,  # hand back the last error answer, with its message
        retry_after_max=60,
    )
    return StacApiIO(timeout=timeout_s, max_retries=retry)


def _utc(dt: datetime) -> datetime:
    """``dt`` in UTC; a naive datetime is taken to be UTC already."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _rfc3339(dt: datetime) -> str:
    """UTC RFC 3339 timestamp with microseconds, ``Z`` suffix."""
    return _utc(dt).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _item_time(item: pystac.Item) -> datetime:
    """The item's ``datetime`` (``start_datetime`` for range-only items), in UTC."""
    when = item.datetime or item.common_metadata.start_datetime
    if when is None:
        raise StacApiError(f"item {item.id!r} has neither datetime nor start_datetime")
    return _utc(when)


def _error(url: str, err: Exception, retries: int) -> StacApiError:
    """StacApiError naming the URL, the HTTP status (if any) and the server's message."""
    status = getattr(err, "status_code", None)
    message = str(err).strip() or type(err).__name__
    if status is None or status in RETRY_STATUS:
        what = f"failed after {retries} retr{'y' if retries == 1 else 'ies'}"
    else:
        what = "rejected the request"
    detail = f"HTTP {status}: {message}" if status is not None else message
    return StacApiError(f"STAC API {url} {what}: {detail}")


def _open(url: str, stac_io: StacApiIO, timeout_s: float) -> Client:
    """Open the API root; ``timeout`` is given again because ``Client.open`` resets it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PystacClientWarning)
        return Client.open(url, stac_io=stac_io, timeout=timeout_s)


def _cloud_filter(limit: float) -> dict[str, Any]:
    """CQL2-JSON: ``eo:cloud_cover <= limit``."""
    return {"op": "<=", "args": [{"property": CLOUD_COVER}, float(limit)]}


def _search(
    client: Client, collection: str, cloud_limit: float | None, **kw: Any
) -> list[pystac.Item]:
    """All items of one collection matching the search (cloud filter when ``cloud_limit``)."""
    if cloud_limit is not None:
        kw.update(filter=_cloud_filter(cloud_limit), filter_lang="cql2-json")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PystacClientWarning)
        return list(client.search(method="POST", collections=[collection], **kw).items())


_HAS_CLOUD_COVER: dict[tuple[str, str], bool] = {}
"""Per (API URL, collection id): whether its items carry ``eo:cloud_cover`` (probe cache)."""


def _has_cloud_cover(client: Client, url: str, collection: str, **kw: Any) -> bool | None:
    """Whether the collection's items carry ``eo:cloud_cover``; None when no item matched.

    Decided from the first item of the unfiltered search and remembered for the process.
    """
    key = (url.rstrip("/"), collection)
    if key in _HAS_CLOUD_COVER:
        return _HAS_CLOUD_COVER[key]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PystacClientWarning)
        search = client.search(
            method="POST", collections=[collection], max_items=1, **{**kw, "limit": 1}
        )
        probe = next(iter(search.items_as_dicts()), None)
    if probe is None:
        return None
    _HAS_CLOUD_COVER[key] = CLOUD_COVER in probe.get("properties", {})
    return _HAS_CLOUD_COVER[key]


def _collection_limit(
    client: Client, url: str, collection: str, max_cloud_cover: CloudLimit, **kw: Any
) -> float | None:
    """The cloud-cover limit to apply to ``collection``, or None for no filter.

    A number applies to a collection whose items carry ``eo:cloud_cover``; a mapping is
    taken literally.
    """
    if max_cloud_cover is None:
        return None
    if isinstance(max_cloud_cover, Mapping):
        return max_cloud_cover.get(collection)
    return float(max_cloud_cover) if _has_cloud_cover(client, url, collection, **kw) else None


def _keep(item: pystac.Item, start: datetime, end: datetime, cloud_limit: float | None) -> bool:
    """Whether ``item`` lies in ``[start, end)`` and within the cloud limit (if it has one)."""
    if not start <= _item_time(item) < end:
        return False
    cloud = item.properties.get(CLOUD_COVER)
    return cloud_limit is None or cloud is None or float(cloud) <= cloud_limit


def search_items(
    url: str,
    collections: Sequence[str],
    bbox: tuple[float, float, float, float],
    start: datetime,
    end: datetime,
    max_cloud_cover: CloudLimit = None,
    retries: int = 3,
    backoff_s: float = 0.5,
    timeout_s: float = 30,
    modifier: ItemModifier | None = None,
    page_size: int = 100,
) -> list[dict[str, Any]]:
    """Items of ``collections`` intersecting ``bbox`` and acquired in ``[start, end)``.

    One POST search is run per collection (servers such as stac-fastapi-geoparquet only sort
    and page correctly within one collection).

    Args:
        url: Root URL of the STAC API.
        collections: Collection ids to search.
        bbox: (west, south, east, north) in WGS84 degrees.
        start: Start of the window, inclusive. Naive datetimes are taken as UTC.
        end: End of the window, exclusive: an item at exactly ``end`` is not returned.
        max_cloud_cover: Largest ``eo:cloud_cover`` (percent) to accept. A number applies to
            every collection whose items carry ``eo:cloud_cover`` (found by probing one item
            of the unfiltered search, once per process and collection; e.g. Sentinel-2 but
            not Sentinel-1). A mapping gives the limit per collection id; collections
            missing from it or mapped to None are not filtered, and no probe is made.
            None: no cloud filter.
        retries: Retries of each HTTP request on connection errors, timeouts, 429 and 5xx.
        backoff_s: Sleep before the first retry; it doubles before each further one.
        timeout_s: Connect and read timeout of each HTTP request.
        modifier: Called with each :class:`pystac.Item` before conversion, e.g.
            ``planetary_computer.sign_inplace``; if it returns an Item, that one is used.
        page_size: Items per page requested from the server.

    Returns:
        Item dicts (``item.to_dict()``) sorted by (datetime, id).

    Raises:
        StacApiError: The API was unreachable or kept failing after the retries (message
            names the URL and the last error), or it rejected the request (HTTP 4xx).
        ValueError: ``end`` is not after ``start``.
    """
    t0, t1 = _utc(start), _utc(end)
    if t1 <= t0:
        raise ValueError(f"empty time window: start {t0} is not before end {t1}")
    kw: dict[str, Any] = {
        "bbox": list(bbox),
        # STAC intervals are closed: stop 1 µs before `end`, then re-check exactly below.
        "datetime": f"{_rfc3339(t0)}/{_rfc3339(t1 - timedelta(microseconds=1))}",
        "limit": page_size,
    }
    found: list[pystac.Item] = []
    stac_io = _stac_io(retries, backoff_s, timeout_s)
    try:
        client = _open(url, stac_io, timeout_s)
        for collection in dict.fromkeys(collections):
            cloud_limit = _collection_limit(client, url, collection, max_cloud_cover, **kw)
            items = _search(client, collection, cloud_limit, **kw)
            found.extend(it for it in items if _keep(it, t0, t1, cloud_limit))
    except APIError as err:
        raise _error(url, err, retries) from err
    except (OSError, ValueError, pystac.STACError) as err:
        raise StacApiError(f"STAC API {url} gave an unusable answer: {err}") from err
    finally:
        stac_io.session.close()
    return [_to_dict(it, modifier) for it in sorted(found, key=lambda it: (_item_time(it), it.id))]


def _to_dict(item: pystac.Item, modifier: ItemModifier | None) -> dict[str, Any]:
    """Apply ``modifier`` (if any) and convert to a dict."""
    if modifier is not None:
        result = modifier(item)
        if isinstance(result, pystac.Item):
            item = result
    return item.to_dict()
