"""The knee report's typed record: round trip, versions, bad files."""

from __future__ import annotations

import json

import pytest

from cropassets.core.knee_record import FORMAT_VERSION, KneeReport, KneeRow, KneeSummary
from cropassets.resources.data_root import DataRoot


def _report() -> KneeReport:
    rows = [KneeRow(k=k, cnn=0.5 + k / 100, macro_f1=0.4, per_class_f1={"rice": 0.6},
                    rf=0.55, current=None if k == 3 else 0.5, rf_current=None,
                    served="cnn2d" if k > 3 else "random_forest", served_accuracy=0.56,
                    served_current=None) for k in (3, 4, 5)]
    knee = KneeSummary(length_weeks=4.0, length_months=0.9, length_steps=4, rule="kneedle",
                       explanation="knee of the isotonic fit", accuracy=0.54,
                       full_accuracy=0.55)
    return KneeReport(lengths_weeks=[3, 4, 5], rows=rows, knee=knee,
                      baseline_wins_at_weeks=[3], statement="The forest wins at weeks [3].",
                      served=[{"k": 3, "model": "random_forest"}], served_statement="Maps ...")


def test_the_record_round_trips_and_gives_the_knee_week(tmp_path):
    report = _report()
    again = KneeReport.from_json(report.to_json())
    assert again == report and again.knee_week == 4
    d = json.loads(report.to_json())
    assert d["format_version"] == FORMAT_VERSION
    assert d["rows"][0]["k"] == 3 and d["knee"]["length_steps"] == 4
    root = DataRoot(root=str(tmp_path))
    assert root.knee_week() is None  # before the report exists
    root.knee_path().parent.mkdir(parents=True)
    root.knee_path().write_text(report.to_json())
    assert root.knee_week() == 4


def test_files_without_a_version_read_as_version_1():
    d = json.loads(_report().to_json())
    del d["format_version"]
    assert KneeReport.from_json(json.dumps(d)).knee_week == 4


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d.update(format_version=2), "format version 2.*reads version 1"),
    (lambda d: d.pop("knee"), r"lacks field\(s\) \['knee'\] in the knee report"),
    (lambda d: d["rows"][0].pop("cnn"), r"lacks field\(s\) \['cnn'\] in row 0"),
    (lambda d: d["rows"][0].update(colour="red"), r"unknown field\(s\) \['colour'\] in row 0"),
    (lambda d: d.update(colour="red"), r"unknown field\(s\) \['colour'\] in the knee report"),
    (lambda d: d["knee"].update(length_steps="x"), "wrong type"),
])
def test_bad_reports_are_refused_naming_the_file(edit, message):
    d = json.loads(_report().to_json())
    edit(d)
    with pytest.raises(ValueError, match=message):
        KneeReport.from_json(json.dumps(d), source="data/knee_report/knee.json")
    with pytest.raises(ValueError, match="knee.json is not JSON"):
        KneeReport.from_json("{", source="data/knee_report/knee.json")
