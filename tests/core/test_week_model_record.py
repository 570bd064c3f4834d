"""The week-model record's typed record: the file's bytes unchanged, round trip, records
from before the served-model choice, refusals naming the file."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from cropassets.core.legend import class_legend
from cropassets.core.publish.crop_products import crop_cog_tags
from cropassets.core.publish.week_layers import model_summary
from cropassets.core.seasons import Season, all_weeks
from cropassets.core.week_model_record import FORMAT_VERSION, WeekModelRecord
from cropassets.resources.data_root import DataRoot

RECORDS = Path(__file__).parent / "records"
V1 = RECORDS / "week_model_v1.json"
"""A record as ``week_model`` wrote it before the typed record (json.dumps(dict, indent=1))."""
LEGACY = RECORDS / "week_model_legacy.json"
"""The first layout: before the served-model choice (the CNN2D, no forest)."""


def test_the_record_round_trips_byte_for_byte():
    text = V1.read_text()
    record = WeekModelRecord.from_json(text, source=str(V1))
    assert record.to_json() == text
    assert WeekModelRecord.from_json(record.to_json()) == record
    assert record.format_version == FORMAT_VERSION == 1
    assert "format_version" not in json.loads(text)
    # the old writer's dict, key for key and in order
    assert json.dumps(record.to_dict(), indent=1) == json.dumps(json.loads(text), indent=1)
    assert list(record.to_dict()) == list(json.loads(text))
    assert record.model_kind == "random_forest" and record.week_of_season == 3
    assert record.forest_sha256 == "cd" * 32 and record.current_season_accuracy is None


def test_data_root_reads_the_record(tmp_path):
    root = DataRoot(root=str(tmp_path))
    assert root.week_model_record("2025-05-19") is None  # before week_model ran
    path = root.week_model_path("2025-05-19")
    path.parent.mkdir(parents=True)
    path.write_bytes(V1.read_bytes())
    assert root.week_model_record("2025-05-19") == WeekModelRecord.read(V1)


def test_a_record_from_before_the_model_choice_reads_as_the_cnn():
    old = WeekModelRecord.read(LEGACY)
    assert (old.model_kind, old.model_title) == ("cnn2d", "CNN2D")
    assert old.forest is None and old.forest_sha256 is None and old.rule == ""
    assert old.cnn2d_accuracy is None and old.random_forest_accuracy is None
    assert old.accuracy == 0.75 and old.class_codes == [1, 2]
    # what the manifest and the COG tags say of it (as before the record existed)
    m = model_summary(old)
    assert (m.kind, m.title, m.accuracy, m.val_accuracy, m.week) == (
        "cnn2d", "CNN2D", 0.75, 0.75, 3)
    assert m.current_season_accuracy == 0.7 and "forest_sha256" not in m.to_dict()
    week = all_weeks([Season("2025", date(2025, 5, 5), 6, "current")])[2]
    tags = crop_cog_tags(week, old, class_legend([1, 2], ["rice", "maize"]))
    assert tags["model_kind"] == "cnn2d" and tags["model_accuracy"] == 0.75
    assert "forest_sha256" not in tags and "model_cnn2d_accuracy" not in tags


def test_the_record_modules_import_no_model_code():
    code = ("import sys, cropassets.core.week_model_record, "
            "cropassets.core.publish.manifest_record; "
            "print([m for m in ('torch', 'dagster', 'cropassets.ml') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d.update(format_version=2), r"format version 2; this library reads version 1"),
    (lambda d: d.pop("checkpoint"), r"lacks field\(s\) \['checkpoint'\]"),
    (lambda d: d.pop("knee_week"), r"lacks field\(s\) \['knee_week'\]"),
    (lambda d: d.update(colour="red"), r"unknown field\(s\) \['colour'\]"),
    (lambda d: d.update(class_codes=1), r"class_codes is not a list"),
])
def test_bad_records_are_refused_naming_the_file(edit, message):
    d = json.loads(V1.read_text())
    edit(d)
    source = "data/week_model/2025-05-19.json"
    with pytest.raises(ValueError, match=message) as err:
        WeekModelRecord.from_json(json.dumps(d), source=source)
    assert source in str(err.value)
    with pytest.raises(ValueError, match=f"{source} is not JSON"):
        WeekModelRecord.from_json("{", source=source)


def test_a_later_version_would_carry_its_number():
    record = WeekModelRecord.read(V1)
    later = replace(record, format_version=2)
    assert json.loads(later.to_json())["format_version"] == 2
    with pytest.raises(ValueError, match="format version 2"):
        WeekModelRecord.from_json(later.to_json())
