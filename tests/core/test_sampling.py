"""Labelled pixel sampling: per-field/per-class budgets, interior pixels, label rasterization."""

import json

import numpy as np
import pytest
import rasterio

from cropassets.core.reference.sampling import (
    FieldLabels,
    interior_mask,
    load_field_labels,
    rasterize_fields,
    sample_pixels,
)
from cropassets.core.tiles import load_tiles
from cropassets.resources.series_settings import SeriesSettings
from cropassets.settings import load_settings


def test_budgets_and_whole_fields():
    fields = np.repeat(np.repeat(np.arange(1, 17).reshape(4, 4), 10, 0), 10, 1)  # 16 fields
    labels = FieldLabels({f: 1 + (f % 2) for f in range(1, 17)}, {1: "a", 2: "b"})
    idx, fids = sample_pixels(fields, labels, per_field=5, per_class=20, seed=1)
    assert np.array_equal(fields.ravel()[idx], fids)
    counts = {c: sum(1 for f in fids if labels.class_of_field[int(f)] == c) for c in (1, 2)}
    assert counts == {1: 20, 2: 20}  # 4 whole fields x 5 pixels per class
    assert max(np.bincount(fids)) == 5
    assert interior_mask(fields).ravel()[idx].all()  # no mixed edge pixels
    again, _ = sample_pixels(fields, labels, per_field=5, per_class=20, seed=1)
    assert np.array_equal(idx, again)


def test_rasterized_labels_match_the_truth_raster():
    world = load_settings().world_dir
    tile = next(iter(load_tiles(world / "tiles.json").values()))
    burned = rasterize_fields(world / "labels/2024.geojson", tile)
    with rasterio.open(world / "labels/fields" / f"{tile.id}.tif") as src:
        truth = src.read(1)
    assert (burned == truth).mean() > 0.99
    labels = load_field_labels(world / "labels/2024.geojson")
    doc = json.loads((world / "labels/2024.geojson").read_text())
    assert len(labels.class_of_field) == len(doc["features"])


def test_unproducible_feature_is_a_configuration_error():
    with pytest.raises(ValueError, match="'ndvi2' is not a known feature"):
        SeriesSettings(features=["ndvi", "ndvi2"])
