"""Command line of cropassets.

``cropassets demo-world | init-region | import-labels | serve-stac | materialize | demo |
backfill``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from cropassets.settings import load_settings


def _cmd_demo_world(args: argparse.Namespace) -> int:
    from cropassets.world import world_cli as world_cli

    return world_cli.run(args) or 0


def _cmd_init_region(args: argparse.Namespace) -> int:
    from cropassets.core.region import RegionError, parse_season, tile_grid, write_region

    try:
        tiles = tile_grid(tuple(args.bbox), args.tile_size, args.resolution, args.max_tiles)
        seasons = [parse_season(s) for s in args.season]
        tiles_path, seasons_path = write_region(Path(args.out_dir), tiles, seasons,
                                                force=args.force)
    except RegionError as exc:
        print(f"cropassets init-region: error: {exc}", file=sys.stderr)
        return 2
    side = args.tile_size / args.resolution
    print(f"{len(tiles)} tiles of {side:g}x{side:g} px at {args.resolution:g} m in "
          f"{tiles[0]['crs']} -> {tiles_path}")
    print(f"{len(seasons)} season(s) -> {seasons_path}")
    print(f"point the code location at them: CROPASSETS_TILES={tiles_path} "
          f"CROPASSETS_SEASONS={seasons_path}")
    return 0


def _cmd_import_labels(args: argparse.Namespace) -> int:
    from cropassets.core.reference import (
        LabelFileError,
        LabelSource,
        import_labels,
        load_class_map,
    )
    from cropassets.core.seasons import SeasonError, load_seasons
    from cropassets.core.tiles import TileGridError, load_tiles

    settings = load_settings()
    try:
        seasons = {s.id: s for s in load_seasons(settings.seasons_file)}
        if args.season not in seasons:
            raise SeasonError(f"season {args.season!r} is not in {settings.seasons_file} "
                              f"(seasons: {sorted(seasons)})")
        tiles = load_tiles(settings.tiles_file)
        boxes = [t.bbox_wgs84() for t in tiles.values()]
        region = (min(b[0] for b in boxes), min(b[1] for b in boxes),
                  max(b[2] for b in boxes), max(b[3] for b in boxes))
        source = LabelSource(Path(args.file), args.id_column, args.class_column,
                             load_class_map(Path(args.class_map)) if args.class_map else None,
                             args.layer)
        out = Path(args.labels_dir or settings.labels) / f"{args.season}.geojson"
        summary = import_labels(source, out, region_bbox_wgs84=region)
    except (LabelFileError, SeasonError, TileGridError, ValueError) as exc:
        print(f"cropassets import-labels: error: {exc}", file=sys.stderr)
        return 2
    print(f"{summary.n_features} parcels, {summary.n_classes} classes -> {summary.out_path} "
          f"({summary.n_skipped} skipped, {summary.n_outside_region} outside the tiles)")
    for name, count in sorted(summary.class_counts.items()):
        print(f"  {name}: {count}")
    return 0


def _cmd_serve_stac(args: argparse.Namespace) -> int:
    from cropassets.core.stac.server import main_serve

    stac_dir = Path(args.stac_dir or load_settings().world_dir / "stac")
    main_serve(stac_dir, args.host, args.port)
    return 0


def _cmd_materialize(args: argparse.Namespace) -> int:
    from cropassets.materialize import materialize_partitions

    failed = materialize_partitions(args.assets, tiles=args.tiles, weeks=args.weeks,
                                    missing_only=args.missing, workers=args.workers)
    return 1 if failed else 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from cropassets.demo import run_demo

    return run_demo(args.host, args.map_port, None if args.no_ui else args.ui_port,
                    exit_when_done=args.exit_when_done, poll_s=args.poll)


def _cmd_backfill(args: argparse.Namespace) -> int:
    import urllib.error

    from cropassets import backfill
    from cropassets.materialize import select_weeks

    base = args.url.rstrip("/")
    weeks = select_weeks(args.weeks)
    try:
        bid = backfill.launch_week_backfill(
            f"{base}/graphql", args.assets, args.tiles, weeks,
            run_config=backfill.IN_PROCESS if args.in_process else None,
            title=args.title or f"cropassets backfill {weeks[0]}...{weeks[-1]}")
    except backfill.BackfillRequestError as exc:
        print(f"cropassets backfill: error: {exc}", file=sys.stderr)
        return 2
    except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
        print(f"cropassets backfill: error: no Dagster webserver at {base} ({exc}); start "
              "one (`make serve` or `dagster dev`) or pass --url", file=sys.stderr)
        return 2
    print(f"[backfill] {bid}: {'+'.join(args.assets)}, weeks {weeks[0]}...{weeks[-1]} "
          f"({len(weeks)}), tiles {' '.join(args.tiles) if args.tiles else 'all'}: "
          f"{base}/runs/b/{bid}", file=sys.stderr, flush=True)
    print(bid)
    if not args.wait:
        return 0
    status = backfill.wait_backfill(f"{base}/graphql", bid, timeout=args.timeout)
    print(f"[backfill] {bid}: {status}", file=sys.stderr)
    return 0 if status in ("COMPLETED", "COMPLETED_SUCCESS") else 1


def build_parser() -> argparse.ArgumentParser:
    """The ``cropassets`` argument parser."""
    parser = argparse.ArgumentParser(prog="cropassets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    world = sub.add_parser("demo-world", help="generate the synthetic Sentinel world")
    from cropassets.world import world_cli as world_cli

    world_cli.add_arguments(world)
    world.set_defaults(func=_cmd_demo_world)

    region = sub.add_parser(
        "init-region", help="write the tile grid (UTM, 10 m) and seasons of a region",
        description="Write tiles.json and seasons.json for a bounding box: square UTM "
                    "tiles aligned on multiples of the tile size, kept where they meet the "
                    "box. Existing files are kept unless --force (then copied to .bak).")
    region.add_argument("--bbox", type=float, nargs=4, required=True,
                        metavar=("W", "S", "E", "N"), help="degrees, EPSG:4326")
    region.add_argument("--season", action="append", required=True,
                        metavar="ID:START:WEEKS:ROLE",
                        help="e.g. 2024:2024-04-01:30:reference (START a Monday); repeat")
    region.add_argument("--tile-size", type=float, default=10240.0,
                        help="tile side in metres (default 10240: 1024 px)")
    region.add_argument("--resolution", type=float, default=10.0, help="metres (default 10)")
    region.add_argument("--max-tiles", type=int, default=400)
    region.add_argument("--out-dir", default="config", help="where to write (default config/)")
    region.add_argument("--force", action="store_true", help="replace existing files")
    region.set_defaults(func=_cmd_init_region)

    lab = sub.add_parser(
        "import-labels", help="import a season's reference labels from a vector file",
        description="Stream parcels with a crop class from any vector file GDAL reads "
                    "(GeoPackage, Shapefile, GeoJSON, FlatGeobuf) or GeoParquet into "
                    "<labels>/<season>.geojson (EPSG:4326; written atomically). Labels "
                    "must meet the tile grid ($CROPASSETS_TILES).")
    lab.add_argument("file", help="vector file of parcels (polygons)")
    lab.add_argument("--season", required=True, help="season id of $CROPASSETS_SEASONS")
    lab.add_argument("--id-column", required=True, help="column of parcel ids")
    lab.add_argument("--class-column", required=True, help="column of crop classes")
    lab.add_argument("--class-map", default="",
                     help='JSON {"<raw value>": {"code": 1, "name": "maize"}, ...}')
    lab.add_argument("--layer", default=None, help="layer of a multi-layer file")
    lab.add_argument("--labels-dir", default="",
                     help="output folder (default: $CROPASSETS_LABELS or the world's labels/)")
    lab.set_defaults(func=_cmd_import_labels)

    serve = sub.add_parser("serve-stac", help="serve a world's STAC catalog as a STAC API")
    serve.add_argument("--stac-dir", default="", help="catalog folder (default: world/stac)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8081)
    serve.set_defaults(func=_cmd_serve_stac)

    mat = sub.add_parser("materialize",
                         help="materialize assets for tile x week partitions through Dagster "
                              "(in one process, recorded in $DAGSTER_HOME's instance)")
    mat.add_argument("assets", nargs="+", help="asset names, e.g. raw_scenes")
    mat.add_argument("--tiles", nargs="*", default=None, help="tile ids (default: all)")
    mat.add_argument("--weeks", default=None,
                     help="week range 'START...END', one week, a season id such as "
                          "2025, or 'current' (the current season; default: all weeks)")
    mat.add_argument("--missing", action="store_true",
                     help="skip partitions already materialized")
    mat.add_argument("--workers", type=int, default=1,
                     help="processes to spread tiles over (each tile runs in week order)")
    mat.set_defaults(func=_cmd_materialize)

    demo = sub.add_parser(
        "demo", help="serve the web map and the Dagster UI, then materialize the demo season "
                     "week by week (each week appears on the map when it is published)")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--map-port", type=int, default=8080, help="web map (tiler) port")
    demo.add_argument("--ui-port", type=int, default=3000, help="Dagster UI port")
    demo.add_argument("--no-ui", action="store_true", help="do not start the Dagster UI")
    demo.add_argument("--poll", type=int, default=10,
                      help="seconds between the web map's looks for new weeks (default 10)")
    demo.add_argument("--exit-when-done", action="store_true",
                      help="stop the servers when everything is materialized")
    demo.set_defaults(func=_cmd_demo)

    bf = sub.add_parser("backfill",
                        help="launch a Dagster backfill over a week range (all tiles, or "
                             "some) on a running webserver + daemon; prints its id")
    bf.add_argument("assets", nargs="+",
                    help="asset names, upstream first, e.g. raw_scenes weekly_cube "
                         "sos_map")
    bf.add_argument("--weeks", default="current",
                    help="week range 'START...END', one week, a season id, or 'current' "
                         "(default)")
    bf.add_argument("--tiles", nargs="*", default=None, help="tile ids (default: all)")
    bf.add_argument("--url", default=load_settings().dagster_url,
                    help="Dagster webserver (default: $CROPASSETS_DAGSTER_URL or "
                         "http://127.0.0.1:3000)")
    bf.add_argument("--in-process", action="store_true",
                    help="run each backfill run's steps in its own process")
    bf.add_argument("--title", default="", help="backfill title shown in the UI")
    bf.add_argument("--wait", action="store_true",
                    help="wait for the backfill to finish; exit 1 unless it succeeded")
    bf.add_argument("--timeout", type=float, default=3600.0, help="seconds --wait waits")
    bf.set_defaults(func=_cmd_backfill)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cropassets`` command."""
    from cropassets.dagster_internals import quiet_dagster_warnings

    quiet_dagster_warnings()
    from cropassets.core.seasons import SeasonError
    from cropassets.core.tiles import TileGridError

    args = build_parser().parse_args(argv)
    t0 = time.perf_counter()
    try:
        rc = args.func(args)
    except (SeasonError, TileGridError) as exc:  # bad input: a clear line, no traceback
        print(f"cropassets {args.command}: error: {exc}", file=sys.stderr)
        return 2
    print(f"[cropassets] {args.command} finished in {time.perf_counter() - t0:.1f} s",
          file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
