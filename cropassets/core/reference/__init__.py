"""Reference labels.

Importing user label files, rasterising and sampling field pixels, and
the labelled training series cut from season series.
"""

from __future__ import annotations

from cropassets.core.reference.class_map import ClassMap, LabelFileError, load_class_map
from cropassets.core.reference.label_batches import LabelBatch, iter_label_batches
from cropassets.core.reference.label_files import ImportSummary, import_labels
from cropassets.core.reference.label_readers import LabelSource
from cropassets.core.reference.sampling import (
    FieldLabels,
    interior_mask,
    load_field_labels,
    rasterize_fields,
    read_field_raster,
    sample_pixels,
)
from cropassets.core.reference.training_data import labelled_series, load_npz, save_npz_atomic

__all__ = [
    "ClassMap",
    "FieldLabels",
    "ImportSummary",
    "LabelBatch",
    "LabelFileError",
    "LabelSource",
    "import_labels",
    "interior_mask",
    "iter_label_batches",
    "labelled_series",
    "load_class_map",
    "load_field_labels",
    "load_npz",
    "rasterize_fields",
    "read_field_raster",
    "sample_pixels",
    "save_npz_atomic",
]
