"""The demo world's items, as the live STAC API returns them, validate against the STAC
core JSON schemas (shipped with pystac, so no schema is downloaded)."""

from datetime import UTC, datetime

import pytest
from jsonschema import Draft7Validator
from pystac.validation.local_validator import VERSION, get_local_schema_cache
from referencing import Registry, Resource

from cropassets.core.stac.search import search_items
from cropassets.core.stac.server import serve
from cropassets.settings import load_settings


def _validator() -> Draft7Validator:
    cache = get_local_schema_cache()
    registry = Registry().with_resources(
        (uri, Resource.from_contents(schema)) for uri, schema in cache.items())
    item_uri = f"https://schemas.stacspec.org/v{VERSION}/item-spec/json-schema/item.json"
    return Draft7Validator(cache[item_uri], registry=registry)


def test_demo_items_from_the_api_validate_as_stac():
    world = load_settings().world_dir
    validator = _validator()
    with serve(world / "stac") as server:
        items = search_items(server.url, ["sentinel-2-l2a", "sentinel-1-rtc"],
                             (-180, -90, 180, 90), datetime(2000, 1, 1, tzinfo=UTC),
                             datetime(2100, 1, 1, tzinfo=UTC))
    assert len(items) > 20
    for item in items:
        errors = sorted(validator.iter_errors(item), key=str)
        assert not errors, f"{item['id']}: {errors[0].message}"
    # a broken item is caught by the same validator (the check can fail)
    broken = dict(items[0])
    broken.pop("geometry")
    with pytest.raises(AssertionError):
        assert not list(validator.iter_errors(broken))
