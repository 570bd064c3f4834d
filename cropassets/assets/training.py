"""Training assets: labelled samples per week, CNN2D checkpoints per sequence length, knee.

torch, scikit-learn and matplotlib are imported inside the asset bodies that use them: every
run process imports the code location, and most runs (ingest, cubes, series, SOS) need none
of them (about 3 s of start-up each).
"""

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetIn,
    MaterializeResult,
    MetadataValue,
    Nothing,
    asset,
)

from cropassets.assets._steps import SINGLE_RUN, each_partition
from cropassets.assets._ui import check_result, check_spec
from cropassets.core import quality
from cropassets.core.knee_record import KneeReport, KneeRow, KneeSummary
from cropassets.core.reference.training_data import labelled_series, load_npz, save_npz_atomic
from cropassets.core.seasons import find_week
from cropassets.core.storage import write_bytes_atomic
from cropassets.core.timeseries.smoothing import smooth_series
from cropassets.deployment import GPU_OP_TAGS, GPU_POOL
from cropassets.partitions import (
    BY_WEEK,
    MAX_WEEKS,
    SEASONS,
    TILES,
    WEEK_TO_SEQUENCE,
    sequence_partitions,
    week_partitions,
)
from cropassets.resources.data_root import DataRoot
from cropassets.resources.reference_labels import ReferenceLabels
from cropassets.resources.series_settings import SeriesSettings
from cropassets.resources.torch_device import TorchDevice


@asset(
    partitions_def=week_partitions,
    group_name="training",
    backfill_policy=SINGLE_RUN,
    dagster_type=Nothing,
    ins={"weekly_cube": AssetIn(
        dagster_type=Nothing,
        partition_mapping=BY_WEEK)},
    kinds={"numpy"},
    check_specs=[check_spec("scalograms", "class_coverage", (
        f"Every class of the season's labels has at least {quality.MIN_SAMPLES_PER_CLASS} "
        "sampled pixels this week (warns: a class with few samples trains and evaluates "
        "poorly). Metadata: samples per class."), partitions_def=week_partitions)],
    description=(
        "Labelled pixels of this week's season, sampled per field (interior pixels, at most "
        "`per_field` per field and `per_class` per class, whole fields kept), with their "
        "weekly composites of weeks 1..w of every tile (sample, feature, week; lineage "
        "draws the cubes of week w only), class codes and field ids for splitting by field. "
        "Reference seasons train; the current season's held-back "
        "labels only evaluate. Metadata shows example CWT scalograms and the median NDVI "
        "profile of each class (with its inter-quartile band); the CNN "
        "input scalograms are recomputed from these series by the same prepare function "
        "at training and at inference."
    ),
)
def scalograms(context: AssetExecutionContext, data_root: DataRoot,
               reference_labels: ReferenceLabels, series_settings: SeriesSettings) -> Iterator[Any]:
    """Sample labelled pixels of every tile for each week of the step."""
    yield from each_partition(context, lambda key: _scalograms(
        str(key), data_root, reference_labels, series_settings))


def _scalograms(week_key: str, data_root: DataRoot, reference_labels: ReferenceLabels,
                series_settings: SeriesSettings) -> MaterializeResult:
    """Sample labelled pixels of every tile for one week."""
    from cropassets.core.plots import class_profiles_png, markdown_image, scalogram_examples_png
    from cropassets.ml.cwt import default_scales  # torch: imported when run
    from cropassets.ml.scalograms import cwt_magnitude

    week = find_week(SEASONS, week_key)
    t0 = time.perf_counter()
    label_file = reference_labels.find(week.season.id)
    path = data_root.samples_path(week.key)
    if label_file is None and week.season.role != "reference":
        # the normal case for a current season: nothing to sample, nothing to evaluate
        stale = path.exists()
        path.unlink(missing_ok=True)  # samples of labels since removed would mislead
        return MaterializeResult(metadata={
            "season": week.season.id,
            "role": week.season.role,
            "week_of_season": week.week_of_season,
            "samples": 0,
            "labels": f"none for season {week.season.id} (current season: maps are made "
                      "without them; with labels, accuracy metadata is added)",
            "removed_stale_samples": stale,
        }, check_results=[AssetCheckResult(
            check_name="class_coverage", passed=True,
            description=f"no labels for season {week.season.id}: nothing sampled")])
    if label_file is None:
        label_file = reference_labels.path(week.season.id)  # raises: reference seasons need labels
    upto = [w.key for w in week.weeks_to_date()]
    paths = {t: [data_root.weekly_cube_path(t, w) for w in upto] for t in TILES}
    data = labelled_series(paths, TILES, label_file, reference_labels.per_field,
                           reference_labels.per_class, seed=0)
    nbytes = save_npz_atomic(path, **data, role=np.array(week.season.role),
                             season=np.array(week.season.id))
    names = dict(zip(data["class_codes"].tolist(), data["class_names"].tolist(), strict=True))
    meta = {
        "path": MetadataValue.path(str(path)),
        "season": week.season.id,
        "role": week.season.role,
        "week_of_season": week.week_of_season,
        "samples": int(len(data["labels"])),
        "fields": int(len(np.unique(data["field_ids"]))),
        "samples_per_class": MetadataValue.json(
            {names[int(c)]: int((data["labels"] == c).sum()) for c in np.unique(data["labels"])}),
        "bytes": nbytes,
    }
    if week.week_of_season >= 3:
        pick = np.concatenate([np.flatnonzero(data["labels"] == c)[:2]
                               for c in np.unique(data["labels"])])
        smooth = smooth_series(data["series"][pick], series_settings.cutoff,
                               series_settings.order)
        smooth = np.nan_to_num(smooth, nan=0.0)
        mags = cwt_magnitude(smooth, default_scales(week.week_of_season))
        png = scalogram_examples_png(mags, data["labels"][pick], names,
                                     list(data["features"]), per_class=2)
        meta["example_scalograms"] = MetadataValue.md(markdown_image(png, "scalograms"))
    feats = [str(f) for f in data["features"]]
    if "ndvi" in feats and len(data["labels"]):
        png = class_profiles_png(data["series"][:, feats.index("ndvi")], data["labels"], names)
        meta["ndvi_profiles"] = MetadataValue.md(markdown_image(png, "NDVI per class"))
    meta["seconds"] = round(time.perf_counter() - t0, 2)
    coverage = quality.class_coverage(data["labels"], names)
    return MaterializeResult(metadata=meta, check_results=[
        check_result("class_coverage", coverage, AssetCheckSeverity.WARN)])


def _pool(files: list[Path]) -> dict[str, np.ndarray]:
    """Concatenate sample files of several reference seasons into one training set.

    Field ids are kept as they are: the same parcel in two seasons is one group, which a
    split never cuts (:func:`cropassets.ml.splits.split_fields`), whatever crop it carried
    in each season.
    """
    parts = [load_npz(f) for f in files]
    keys = ("series", "labels", "field_ids")
    pooled = {k: np.concatenate([p[k] for p in parts]) for k in keys}
    for k in ("features", "class_codes", "class_names"):
        pooled[k] = parts[0][k]
    return pooled


@asset(
    partitions_def=sequence_partitions,
    group_name="training",
    pool=GPU_POOL,
    op_tags=GPU_OP_TAGS,
    ins={"scalograms": AssetIn(dagster_type=Nothing, partition_mapping=WEEK_TO_SEQUENCE)},
    kinds={"pytorch"},
    check_specs=[check_spec("cnn2d_checkpoint", "accuracy_floor", (
        f"Overall accuracy of the served model (CNN2D, random forest or both, whichever "
        f"maps week k) >= {quality.MIN_VALIDATION_ACCURACY} on the validation fields and "
        f">= {quality.MIN_CURRENT_SEASON_ACCURACY} on the current season's held-back labels "
        "(where there are any). ERROR from the knee week on (read from knee_report; before "
        "it exists, for the full-season checkpoint only), WARN for earlier k. Floors: "
        "constants in cropassets/core/quality/."), partitions_def=sequence_partitions)],
    description=(
        "CNN2D trained on the reference seasons' labelled series truncated to their first k "
        "weeks (k = this partition), exactly as inference at week k sees them; split by "
        "field, early stopping on validation accuracy. Stores weights, architecture, features, "
        "scales, normalisation, classes, metrics and versions. Also reports accuracy on the "
        "current season's held-back labels and fits a random forest baseline on the same "
        "split, kept beside the checkpoint (k<k>.rf.joblib); the model served for week k "
        "(metrics['served']) is the one of higher validation accuracy, ties to the CNN2D, "
        "or the mean of both models' probabilities when it beats both. Confusion matrices "
        "as an image."
    ),
)
def cnn2d_checkpoint(context: AssetExecutionContext, data_root: DataRoot,
                     torch_device: TorchDevice, series_settings: SeriesSettings
                     ) -> MaterializeResult:
    """Train and evaluate the model of one sequence length."""
    from cropassets.core.plots import confusion_png, markdown_image
    from cropassets.ml.pair import fit_pair
    from cropassets.ml.predict import evaluate
    from cropassets.ml.recipe import SeriesRecipe
    from cropassets.ml.served import save_served, select_served
    from cropassets.ml.train_config import TrainConfig

    k = int(context.partition_key)
    t_start = time.perf_counter()
    weeks = sorted(context.asset_partition_keys_for_input("scalograms"))
    ref = [data_root.samples_path(w) for w in weeks
           if find_week(SEASONS, w).season.role == "reference"]
    cur = [data_root.samples_path(w) for w in weeks
           if find_week(SEASONS, w).season.role == "current"
           and data_root.samples_path(w).exists()]
    missing = [p for p in ref if not p.exists()]
    if missing:
        raise FileNotFoundError(f"reference samples missing for k={k}: {missing}")
    data = _pool(ref)
    names = dict(zip(data["class_codes"].tolist(), data["class_names"].tolist(), strict=True))
    t0 = time.perf_counter()
    test = _pool(cur) if cur else None
    # fp32 training on every device (TrainConfig.precision says why bf16 is opt-in); on the CPU the
    # forest grows in a second thread while the CNN trains (fit_pair)
    recipe = SeriesRecipe(k, cutoff=series_settings.cutoff, order=series_settings.order)
    config = TrainConfig(seed=torch_device.seed)
    if torch_device.train_max_steps is not None:  # else the library's step budget
        config = replace(config, max_steps=int(torch_device.train_max_steps))
    ckpt, rf = fit_pair(data["series"], data["labels"], data["field_ids"], recipe,
                        class_names=names, features=[str(f) for f in data["features"]],
                        config=config, device=torch_device.device,
                        test=(test["series"], test["labels"]) if test else None,
                        log=context.log.info)
    t_train = time.perf_counter() - t0
    ckpt.metrics["baseline_rf"] = rf.metrics
    if test is not None:
        ckpt.metrics["current_season"] = evaluate(ckpt, test["series"], test["labels"],
                                                  device=torch_device.device)
        ckpt.metrics["baseline_rf_current_season"] = rf.test_metrics
    # both models are kept; the checkpoint records which one maps week k (written last,
    # so a checkpoint always finds the forest it names)
    served = select_served(ckpt, rf.fitted, data["series"], data["labels"],
                           data["field_ids"], device=torch_device.device,
                           test=(test["series"], test["labels"]) if test else None)
    path, rf_path = save_served(ckpt, rf.fitted, served,
                                data_root.checkpoint_path(context.partition_key))
    scores = ", ".join(f"{name} {served[key]:.4f}" for name, key in (
        ("CNN2D", "cnn2d_val_accuracy"), ("random forest", "random_forest_val_accuracy"),
        ("combination", "combination_val_accuracy")) if served.get(key) is not None)
    context.log.info(f"k={k}: serving {served['model']} (validation accuracy {scores})")
    m = ckpt.metrics
    cur_acc = m.get("current_season", {}).get("overall_accuracy")
    matrices = {"validation fields": m["confusion"]}
    if "current_season" in m:
        matrices["current season"] = m["current_season"]["confusion"]
    png = confusion_png(matrices, [str(n) for n in ckpt.class_names])
    # the floors hold for what is served: the maps of week k come from that model
    served_cur = served["current_season_accuracy"]
    floor = quality.accuracy_floor(k, float(served["val_accuracy"]), served_cur,
                                   data_root.knee_week(), MAX_WEEKS)
    return MaterializeResult(check_results=[check_result("accuracy_floor", floor)], metadata={
        "path": MetadataValue.path(str(path)),
        "week_of_season": k,
        "overall_accuracy": float(m["overall_accuracy"]),
        "macro_f1": float(m["macro_f1"]),
        "current_season_accuracy": float(cur_acc) if cur_acc is not None else float("nan"),
        "rf_overall_accuracy": float(rf.metrics["overall_accuracy"]),
        "served_model": served["model"],
        "served_overall_accuracy": float(served["val_accuracy"]),
        "served_current_season_accuracy": (float(served_cur) if served_cur is not None
                                           else float("nan")),
        "served_rule": served["rule"],
        "forest_path": MetadataValue.path(str(rf_path)),
        "per_class_f1": MetadataValue.json(m["per_class_f1"]),
        "confusion": MetadataValue.json(m["confusion"]),
        "train_samples": int(len(data["labels"])),
        "fit_seconds": round(t_train, 1),  # CNN2D + forest (side by side on the CPU)
        "seconds": round(time.perf_counter() - t_start, 1),
        "device": str(torch_device.device),
        "confusion_matrices": MetadataValue.md(markdown_image(png, "confusion matrices")),
    })


@asset(
    group_name="training",
    ins={"cnn2d_checkpoint": AssetIn(dagster_type=Nothing)},
    kinds={"json"},
    check_specs=[check_spec("knee_report", "knee_found", (
        "A knee week (minimum season length) exists and lies within the trained sequence "
        "lengths; maps before it are flagged preliminary."))],
    description=(
        "Accuracy (overall, macro-F1, per class) against sequence length over all trained "
        "weeks, for the CNN2D and the random-forest baseline on the same field splits, the "
        "served model of each week (the better of the two on validation), and on the "
        "current season's held-back labels; the knee (kneed, concave increasing, "
        "with the documented fallback) gives the minimum season length in weeks and months."
    ),
)
def knee_report(context: AssetExecutionContext, data_root: DataRoot) -> MaterializeResult:
    """Collect checkpoint metrics, find the knee, write JSON + PNG."""
    from cropassets.core.plots import knee_png, markdown_image
    from cropassets.ml import find_knee
    from cropassets.ml.checkpoint import Checkpoint
    from cropassets.ml.served import KIND_TITLES, served_record

    t0 = time.perf_counter()
    rows: list[KneeRow] = []
    for k in sequence_partitions.get_partition_keys():
        p = data_root.checkpoint_path(k)
        if p.exists():
            ck = Checkpoint.load(p)
            m = ck.metrics
            served = served_record(ck)
            rows.append(KneeRow(
                k=int(k), cnn=m["overall_accuracy"], macro_f1=m["macro_f1"],
                per_class_f1=m["per_class_f1"], rf=m["baseline_rf"]["overall_accuracy"],
                current=m.get("current_season", {}).get("overall_accuracy"),
                rf_current=(m.get("baseline_rf_current_season") or {}).get("overall_accuracy"),
                served=served["model"], served_accuracy=served["val_accuracy"],
                served_current=served.get("current_season_accuracy")))
    if len(rows) < 3:
        raise ValueError(f"knee_report needs checkpoints for >= 3 lengths, found {len(rows)}")
    lengths = [r.k for r in rows]
    knee = find_knee(lengths, [r.cnn for r in rows])
    rf_wins = [r.k for r in rows if r.rf > r.cnn]
    current = [r.current for r in rows]
    by_kind = {kind: [r.k for r in rows if r.served == kind] for kind in KIND_TITLES}
    report = KneeReport(
        lengths_weeks=lengths, rows=rows,
        knee=KneeSummary(length_weeks=knee.length_weeks, length_months=knee.length_months,
                         length_steps=knee.length_steps, rule=knee.rule,
                         explanation=knee.explanation, accuracy=knee.accuracy,
                         full_accuracy=knee.full_accuracy),
        baseline_wins_at_weeks=rf_wins,
        statement=(f"The random forest baseline beats the CNN2D at weeks {rf_wins}."
                   if rf_wins else "The CNN2D matches or beats the random forest baseline "
                   "at every length."),
        served=[{"k": r.k, "model": r.served, "val_accuracy": r.served_accuracy,
                 "current_season_accuracy": r.served_current,
                 "cnn2d_val_accuracy": r.cnn, "random_forest_val_accuracy": r.rf}
                for r in rows],
        served_statement="Maps are made by " + "; ".join(
            f"the {KIND_TITLES[kind]} at weeks {ks}" for kind, ks in by_kind.items() if ks)
            + " (higher validation accuracy; ties to the CNN2D).",
    )
    data_root.knee_path().parent.mkdir(parents=True, exist_ok=True)
    png = knee_png(lengths, [r.cnn for r in rows], [r.rf for r in rows],
                   knee.length_steps, current if all(c is not None for c in current) else None,
                   served=[r.served_accuracy for r in rows],
                   served_kinds=[r.served for r in rows])
    write_bytes_atomic(data_root.knee_path(".png"), png)
    write_bytes_atomic(data_root.knee_path(), report.to_json().encode())
    found = quality.knee_check(knee.length_steps, lengths, knee.rule)
    return MaterializeResult(check_results=[check_result("knee_found", found)], metadata={
        "knee_week": knee.length_steps,
        "knee_months": round(knee.length_months, 1),
        "knee_rule": knee.rule,
        "accuracy_at_knee": float(knee.accuracy),
        "full_season_accuracy": float(knee.full_accuracy),
        "baseline_statement": report.statement,
        "served_statement": report.served_statement,
        "served_models": MetadataValue.json({str(r.k): r.served for r in rows}),
        "plot": MetadataValue.md(markdown_image(png, "accuracy vs sequence length")),
        "report": MetadataValue.path(str(data_root.knee_path())),
        "seconds": round(time.perf_counter() - t0, 2),
    })
