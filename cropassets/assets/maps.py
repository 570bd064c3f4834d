"""Maps: the model of each calendar week, crop-type COGs per tile and week, week layers.

The model code (torch) is imported inside the bodies of week_model and crop_map, so runs
that need no model (coverage_map, week_layers, and every other asset of the code location)
start without it.
"""

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
from cropassets.assets._ui import (
    check_result,
    check_spec,
    cogs_on_disk_check,
    skipped_result,
    tiler_link,
    to_metadata,
)
from cropassets.core import quality
from cropassets.core.legend import class_legend
from cropassets.core.publish.product_stac import write_week_items
from cropassets.core.publish.week_layers import model_summary, radar_summary, write_week_layer
from cropassets.core.reference.sampling import load_field_labels, rasterize_fields
from cropassets.core.seasons import find_week
from cropassets.core.storage import write_bytes_atomic
from cropassets.deployment import GPU_OP_TAGS, GPU_POOL
from cropassets.partitions import (
    BY_WEEK,
    MIN_WEEKS,
    SEASON_TO_DATE,
    SEASONS,
    SEQUENCE_TO_WEEKS,
    TILES,
    split_tile_week,
    tile_week_partitions,
    week_partitions,
)
from cropassets.resources.data_root import DataRoot
from cropassets.resources.reference_labels import ReferenceLabels
from cropassets.resources.torch_device import TorchDevice

NO_MODEL_REASON = f"no model before week {MIN_WEEKS} of the season"
PRODUCT_ASSETS = {"crop": "crop_map", "sos": "sos_map", "coverage": "coverage_map"}
"""Product of the week layer -> the tile x week asset whose COG week_layers publishes."""
PRODUCT_COGS = {"crop": quality.CROP_COG, "sos": quality.SOS_COG,
                "coverage": quality.COVERAGE_COG}
"""What each published COG must be (validated again before publishing)."""


def _num(v: float | None) -> float:
    """A metadata number (NaN for None)."""
    return float("nan") if v is None else float(v)


def _ingest_attrs(data_root: DataRoot, tile_id: str, week_key: str) -> dict[str, Any]:
    """What ``raw_scenes`` recorded for a tile-week (radar status, skipped scenes)."""
    from cropassets.core.storage import open_zarr

    path = data_root.raw_scenes_path(tile_id, week_key)
    try:
        return dict(open_zarr(path).attrs)
    except FileNotFoundError:
        return {}


def reference_label_file(reference_labels: ReferenceLabels) -> Path:
    """Labels of the first reference season that has them (the classes a model learns).

    Raises:
        FileNotFoundError: No reference season has labels, naming the folder.
    """
    for season in SEASONS:
        if season.role == "reference" and (path := reference_labels.find(season.id)) is not None:
            return path
    raise FileNotFoundError(
        f"no reference season has labels in {reference_labels.labels_dir} (expected "
        f"{[s.id + '.geojson' for s in SEASONS if s.role == 'reference']})")


@asset(
    partitions_def=week_partitions,
    group_name="maps",
    ins={"cnn2d_checkpoint": AssetIn(dagster_type=Nothing, partition_mapping=SEQUENCE_TO_WEEKS),
         "knee_report": AssetIn(dagster_type=Nothing)},
    output_required=False,
    kinds={"json"},
    check_specs=[check_spec("week_model", "knee_known", (
        "The knee report existed when the model was recorded, so the preliminary flag "
        "(week of season < knee) is meaningful; without it every map is flagged "
        "preliminary (warns). Weeks without a model pass as skipped."),
        partitions_def=week_partitions)],
    description=(
        "Which model maps this calendar week: what the checkpoint of its week of season k "
        "serves (the CNN2D, the random forest or their combination, whichever won on "
        "validation: model_kind), its SHA-256 (and the forest's), the served model's "
        "validation and current-season accuracy beside both models' validation scores, the "
        "classes, the knee week and whether maps of this week are preliminary (k < knee). "
        "Weeks 1-2 of a season have no model: nothing is materialized and no crop map is "
        "made. <data>/week_model/<week>.json"
    ),
)
def week_model(context: AssetExecutionContext, data_root: DataRoot):
    """Record the checkpoint that serves one calendar week."""
    from cropassets.ml.served import load_served
    from cropassets.ml.tile_predict import model_record  # torch: imported when run

    week = find_week(SEASONS, context.partition_key)
    t0 = time.perf_counter()
    if week.week_of_season < MIN_WEEKS:
        context.log.info(f"week {week.key} is week {week.week_of_season} of season "
                         f"{week.season.id}: {NO_MODEL_REASON}; nothing to record")
        yield skipped_result("knee_known", NO_MODEL_REASON)
        return
    ck_path = data_root.checkpoint_path(f"{week.week_of_season:02d}")
    if not ck_path.exists():
        raise FileNotFoundError(f"checkpoint k={week.week_of_season:02d} for week {week.key} "
                                f"has not been trained: {ck_path}")
    served = load_served(ck_path, n_steps=week.week_of_season)
    knee = data_root.knee_week()
    record = model_record(week, served, data_root.location, knee)
    cur = record.current_season_accuracy
    path = data_root.week_model_path(week.key)
    write_bytes_atomic(path, record.to_json().encode())
    knee_known = AssetCheckResult(
        check_name="knee_known", passed=knee is not None, severity=AssetCheckSeverity.WARN,
        description=(f"knee week {knee}: week {week.week_of_season} is "
                     f"{'preliminary' if record.preliminary else 'final'}" if knee is not None
                     else "no knee report yet: maps of this week are flagged preliminary"),
        metadata={"knee_week": knee if knee is not None else -1,
                  "week_of_season": week.week_of_season})
    yield MaterializeResult(check_results=[knee_known], metadata={
        "path": MetadataValue.path(str(path)),
        "week_of_season": week.week_of_season,
        "checkpoint": record.checkpoint,
        "model_kind": record.model_kind,
        "accuracy": record.accuracy,
        "cnn2d_accuracy": _num(record.cnn2d_accuracy),
        "random_forest_accuracy": _num(record.random_forest_accuracy),
        "current_season_accuracy": float(cur) if cur is not None else float("nan"),
        "knee_week": knee if knee is not None else -1,
        "preliminary": record.preliminary,
        "seconds": round(time.perf_counter() - t0, 3),
    })


@asset(
    partitions_def=tile_week_partitions,
    group_name="maps",
    pool=GPU_POOL,
    op_tags=GPU_OP_TAGS,
    ins={"week_model": AssetIn(dagster_type=Nothing, partition_mapping=BY_WEEK),
         "weekly_cube": AssetIn(dagster_type=Nothing, partition_mapping=SEASON_TO_DATE)},
    output_required=False,
    kinds={"cog", "pytorch"},
    check_specs=[
        check_spec("crop_map", "cog_valid", (
            "The file on disk is a valid COG (rio-cogeo cog_validate), every block decodes, "
            "uint8 with nodata 255 on both bands, two bands (docs/CONTRACTS.md). Blocking: "
            "week_layers publishes it. Weeks without a model pass as skipped."),
            partitions_def=tile_week_partitions, blocking=True),
        check_spec("crop_map", "class_values", (
            "Band 1 holds only legend class codes, band 2 confidences of 0-100, and nodata "
            "(255) is set on both bands at the same pixels. Blocking."),
            partitions_def=tile_week_partitions, blocking=True),
    ],
    description=(
        "Crop type of every pixel of the tile at this week: the weekly composites of weeks "
        "1..w, gap-filled, smoothed, then the model week_model names for week of season w "
        "(CWT + CNN2D, the random forest, or both), streamed in batches. "
        "COG uint8, band 1 class code (palette = legend, nodata 255 where nothing was ever "
        "observed), band 2 confidence 0-100; mode overviews; tags name season, weeks, model "
        "(model_kind), "
        "knee and the preliminary flag. Weeks without a model make no map. "
        "<data>/crop_map/<tile>/<week>.tif"
    ),
)
def crop_map(context: AssetExecutionContext, data_root: DataRoot, reference_labels: ReferenceLabels,
             torch_device: TorchDevice):
    """Predict and write the crop map of one tile x week."""
    from cropassets.core.publish.crop_products import (
        class_shares,
        crop_cog_tags,
        map_accuracy,
        write_crop_cog,
    )
    from cropassets.core.stac.scenes import radar_weeks
    from cropassets.ml.tile_predict import (  # torch: imported when run
        load_record_model,
        predict_tile,
    )

    keys = context.partition_key.keys_by_dimension
    week = find_week(SEASONS, keys["week"])
    tile = TILES[keys["tile"]]
    t_start = time.perf_counter()
    record = data_root.week_model_record(week.key) if week.week_of_season >= MIN_WEEKS else None
    if record is None:
        reason = (NO_MODEL_REASON if week.week_of_season < MIN_WEEKS
                  else "week_model not materialized")
        context.log.info(f"no crop map for {keys['tile']} {week.key}: {reason}")
        yield skipped_result("cog_valid", reason)
        yield skipped_result("class_values", reason)
        return
    served = load_record_model(data_root.location, record)
    cubes = [data_root.weekly_cube_path(tile.id, w.key)
             for w in week.weeks_to_date()]
    t0 = time.perf_counter()
    cls, conf = predict_tile(cubes, served, device=torch_device.device)
    seconds = time.perf_counter() - t0
    legend = class_legend(record.class_codes, record.class_names)
    path = data_root.crop_map_path(tile.id, week.key)
    radar, no_radar = radar_weeks({w.key: _ingest_attrs(data_root, tile.id, w.key).get("radar")
                                   for w in week.weeks_to_date()})
    write_crop_cog(path, cls, conf, tile.crs, tile.transform, legend,
                   tags=crop_cog_tags(week, record, legend) | {
                       "radar": radar, "weeks_without_radar": json.dumps(no_radar)})
    meta = {
        "path": MetadataValue.path(str(path)),
        "preliminary": record.preliminary,
        "model_week": record.week_of_season,
        "model_kind": served.kind,
        "nodata_share": float((cls == 255).mean()),
        "mean_confidence": float(conf[conf != 255].mean()) if (conf != 255).any() else 0.0,
        "class_areas": MetadataValue.json(class_shares(cls, legend, tile.resolution ** 2)),
        "pixels_per_second": round(cls.size / seconds),
        "predict_seconds": round(seconds, 2),
        "map": tiler_link(week.season.id, week.key, "crop"),
        "radar": radar,
        "weeks_without_radar": MetadataValue.json(no_radar),
    }
    label_file = reference_labels.find(week.season.id)  # the current season usually has none
    if label_file is not None:
        fields = load_field_labels(label_file)
        acc = map_accuracy(cls, rasterize_fields(label_file, tile), fields.class_of_field)
        meta["accuracy_vs_labels"] = acc["overall_accuracy"]
        meta["labelled_pixels"] = acc["labelled_pixels"]
    meta["seconds"] = round(time.perf_counter() - t_start, 2)
    checks = [check_result("cog_valid", quality.cog_check(path, quality.CROP_COG)),
              check_result("class_values", quality.crop_values_check(
                  cls, conf, [e.code for e in legend]))]
    yield MaterializeResult(metadata=meta, check_results=checks)


crop_cogs_on_disk = cogs_on_disk_check(crop_map, "crop_map", quality.CROP_COG,
                                       "crop_cogs_on_disk", "crop-map COGs")


@asset(
    partitions_def=tile_week_partitions,
    group_name="maps",
    backfill_policy=SINGLE_RUN,
    dagster_type=Nothing,
    ins={"weekly_cube": AssetIn(dagster_type=Nothing, partition_mapping=SEASON_TO_DATE)},
    kinds={"cog"},
    check_specs=[check_spec("coverage_map", "cog_valid", (
        "The file on disk is a valid COG (rio-cogeo cog_validate), every block decodes, "
        "uint16 with nodata 65535 on all three bands (docs/CONTRACTS.md). Blocking: "
        "week_layers publishes it."), partitions_def=tile_week_partitions, blocking=True)],
    description=(
        "Observation coverage of every pixel of the tile at this week, from the n_obs of the "
        "weekly cubes 1..w: band 1 clear optical observations since the season start, band 2 "
        "clear optical observations in week w, band 3 radar (Sentinel-1) observations in "
        "week w. Every week of a season, model or not. COG uint16, nodata 65535; tags name "
        "season, week, clear_optical_season_max and radar_present. "
        "<data>/coverage_map/<tile>/<week>.tif"
    ),
)
def coverage_map(context: AssetExecutionContext, data_root: DataRoot) -> Iterator[Any]:
    """Count and write the coverage COG of each tile x week of the step."""
    yield from each_partition(context, lambda key: _coverage_map(key, data_root))


def _coverage_map(key: object, data_root: DataRoot) -> MaterializeResult:
    """Count and write the coverage COG of one tile x week from its weekly cubes 1..w.

    Raises:
        FileNotFoundError: A weekly cube of weeks 1..w is missing, naming them.
    """
    from cropassets.core.cube.coverage import coverage_counts, read_cube_counts, write_coverage_cog

    tile_id, week_key = split_tile_week(key)
    week = find_week(SEASONS, week_key)
    tile = TILES[tile_id]
    t0 = time.perf_counter()
    cubes = [data_root.weekly_cube_path(tile_id, w.key)
             for w in week.weeks_to_date()]
    missing = [str(c) for c in cubes if not c.exists()]
    if missing:
        raise FileNotFoundError(f"coverage of {tile_id} {week.key} needs the weekly cubes of "
                                f"weeks 1..{week.week_of_season}; missing: {missing}")
    counts = coverage_counts(read_cube_counts(c) for c in cubes)  # one cube at a time
    path = data_root.coverage_map_path(tile_id, week.key)
    write_coverage_cog(path, counts, tile.crs, tile.transform,
                       {"season": week.season.id, "week": week.key,
                        "week_of_season": week.week_of_season})
    season, week_clear, radar = counts
    return MaterializeResult(
        check_results=[check_result("cog_valid", quality.cog_check(path, quality.COVERAGE_COG))],
        metadata={
            "path": MetadataValue.path(str(path)),
            "week_of_season": week.week_of_season,
            "mean_clear_optical_season": round(float(season.mean()), 3),
            "max_clear_optical_season": int(season.max()),
            "never_clear_share": round(float((season == 0).mean()), 4),
            "mean_clear_optical_week": round(float(week_clear.mean()), 3),
            "radar_present": bool(radar.any()),
            "radar_share": round(float((radar > 0).mean()), 4),
            "map": tiler_link(week.season.id, week.key, "coverage"),
            "seconds": round(time.perf_counter() - t0, 2),
        })


coverage_cogs_on_disk = cogs_on_disk_check(
    coverage_map, "coverage_map", quality.COVERAGE_COG, "coverage_cogs_on_disk", "coverage COGs")


@asset(
    partitions_def=week_partitions,
    group_name="maps",
    backfill_policy=SINGLE_RUN,
    dagster_type=Nothing,
    ins={"crop_map": AssetIn(dagster_type=Nothing, partition_mapping=BY_WEEK),
         "sos_map": AssetIn(dagster_type=Nothing, partition_mapping=BY_WEEK),
         "coverage_map": AssetIn(dagster_type=Nothing, partition_mapping=BY_WEEK)},
    kinds={"json"},
    check_specs=[check_spec("week_layers", "published_cogs_valid", (
        "Every crop, SOS and coverage COG found for the week is validated before publishing "
        "(valid COG, the product's dtype and nodata); an invalid one is left out of the "
        "manifest, so the tiler never serves it, and fails this check. Metadata lists "
        "invalid files and tiles missing a layer."), partitions_def=week_partitions)],
    description=(
        "What the tiler serves for this week: one MosaicJSON per product over every tile's "
        "COG (crop: class + confidence bands; SOS) and a manifest with the week, its season, "
        "the knee week, the preliminary flag, model accuracy, the legend and per-tile files; "
        "mosaics are written before the manifest, each atomically. A week without a model "
        "publishes its SOS and coverage layers and lists the crop layer as not available; "
        "a product some tile lacks is named with the reason in the manifest's "
        "layers_missing. Then one STAC "
        "item per product and tile (projection, raster, classification extensions), "
        "validated, in a collection per product. "
        "<data>/week_layers/<week>.json, <data>/stac/<collection>/<item>.json"
    ),
)
def week_layers(context: AssetExecutionContext, data_root: DataRoot,
                reference_labels: ReferenceLabels) -> Iterator[Any]:
    """Publish each week of the step, all tiles, for the tiler."""
    yield from each_partition(context, lambda key: _week_layers(
        context, str(key), data_root, reference_labels))


def _layers_missing(files: dict[str, dict[str, Path | None]], invalid: dict[str, Any],
                    data_root: DataRoot, week_key: str) -> dict[str, str]:
    """Why a product is not published for some tiles: product -> reason naming them.

    The crop layer of a week without a model has its own ``reason`` in the manifest and is
    listed here only when some tiles have a crop map and others do not.
    """
    out = {}
    for product, asset_name in PRODUCT_ASSETS.items():
        lacking = [t for t, f in files.items() if f[product] is None]
        if not lacking or (product == "crop" and len(lacking) == len(files)):
            continue
        why = {t: "invalid COG" if str(data_root.partition_path(
            asset_name, t, week_key, ".tif")) in invalid else f"{asset_name} not materialized"
               for t in lacking}
        out[product] = "; ".join(f"{r}: {', '.join(t for t in lacking if why[t] == r)}"
                                 for r in dict.fromkeys(why.values()))
    return out


def _week_layers(context: AssetExecutionContext, week_key: str, data_root: DataRoot,
                 reference_labels: ReferenceLabels) -> MaterializeResult:
    """Publish one week of all tiles for the tiler."""
    week = find_week(SEASONS, week_key)
    t0 = time.perf_counter()
    files = {}
    for t in TILES:
        paths = {p: data_root.partition_path(a, t, week.key, ".tif")
                 for p, a in PRODUCT_ASSETS.items()}
        files[t] = {p: f if f.exists() else None for p, f in paths.items()}
    checked = {p: quality.cog_files_check([f[p] for f in files.values() if f[p]], contract)
               for p, contract in PRODUCT_COGS.items()}
    invalid = {k: v for r in checked.values() for k, v in r.metadata["invalid_files"].items()}
    for f in files.values():  # never publish a file the tiler could not serve
        for product in PRODUCT_ASSETS:
            if f[product] is not None and str(f[product]) in invalid:
                context.log.warning(f"not publishing {f[product]}: {invalid[str(f[product])]}")
                f[product] = None
    missing = _layers_missing(files, invalid, data_root, week.key)
    record = data_root.week_model_record(week.key)
    if record is not None:
        legend = class_legend(record.class_codes, record.class_names)
    else:  # no model for this week yet: the classes of the reference labels
        names = load_field_labels(reference_label_file(reference_labels)).class_names
        legend = class_legend(sorted(names), [names[c] for c in sorted(names)])
    model = None if record is None else model_summary(record)
    reason = NO_MODEL_REASON if record is None else (
        "" if any(f["crop"] for f in files.values()) else "crop maps not materialized yet")
    ingest = {t: {w.key: _ingest_attrs(data_root, t, w.key) for w in week.weeks_to_date()}
              for t in TILES}
    manifest = write_week_layer(
        data_root.location, week, files, {t: s.bbox_wgs84() for t, s in TILES.items()}, legend,
        record.knee_week if record else data_root.knee_week(), model, reason=reason,
        radar=radar_summary({t: {wk: a.get("radar") for wk, a in by_week.items()}
                             for t, by_week in ingest.items()}),
        incomplete_weeks=[wk for by_week in ingest.values() for wk, a in by_week.items()
                          if a.get("skipped_scenes", 0) > 0], missing=missing)
    stac_items = write_week_items(data_root.location, manifest)
    valid = AssetCheckResult(
        check_name="published_cogs_valid", passed=not invalid,
        description="; ".join(f"{p}: {r.summary}" for p, r in checked.items()) + (
            "; invalid files left out of the manifest" if invalid else ""),
        metadata=to_metadata({
            **{f"{p}_files": r.metadata["files"] for p, r in checked.items()},
            "invalid_files": invalid,
            **{f"tiles_without_{p}": [t for t, f in files.items() if not f[p]]
               for p in PRODUCT_ASSETS}}))
    links = {f"map_{layer}": tiler_link(week.season.id, week.key, layer)
             for layer in ("crop", "confidence", "sos", "coverage")
             if manifest.has_layer(layer)}
    return MaterializeResult(check_results=[valid], metadata={
        "manifest": MetadataValue.path(str(data_root.manifest_path(week.key))),
        "crop_available": manifest.layers.crop,
        "sos_available": manifest.layers.sos,
        "coverage_available": manifest.layers.coverage,
        "layers_missing": MetadataValue.json(missing),
        "tiles_with_crop_map": sum(1 for f in files.values() if f["crop"]),
        "preliminary": manifest.preliminary,
        "reason": manifest.reason,
        "stac_items": MetadataValue.json(stac_items),
        **links,
        "seconds": round(time.perf_counter() - t0, 2),
    })
